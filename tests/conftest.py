"""Shared test set-up: the project's TensorFlow environment before anything imports TF."""

from __future__ import annotations

from beamline.settings import apply_tf_environment

apply_tf_environment()
