"""Fixtures for module-file tests: load module files by path, as TFX does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


def load_module_file(relative: str):
    path = COMPONENTS / relative
    spec = importlib.util.spec_from_file_location(path.parent.name + "_module", path)
    module = importlib.util.module_from_spec(spec)
    # Registered like an imported module so Beam can pickle its functions by reference.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def penguin_transform():
    return load_module_file("penguin/transform/module.py")


@pytest.fixture(scope="session")
def penguin_model():
    return load_module_file("penguin/model/module.py")
