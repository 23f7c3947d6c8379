"""Fixtures shared by the framework's tests."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def record_factory_restored():
    """Logging's record factory as it was: masking secrets (beamline.redaction) replaces it for
    the whole process."""
    saved = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(saved)
