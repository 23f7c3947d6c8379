"""Shared test set-up: the project's TensorFlow environment before anything imports TF."""

from __future__ import annotations

import os

from beamline.settings import TF_ENVIRONMENT

for _key, _value in TF_ENVIRONMENT.items():
    os.environ.setdefault(_key, _value)
