"""Trainer and Tuner module file for the penguin pipeline (species from body measurements).

Hyperparameters: hidden `units`, hidden `layers`, `learning_rate`. The Tuner searches a small
space with KerasTuner RandomSearch; without a Tuner the Trainer uses the defaults.
"""

from __future__ import annotations

from beamline_components.common import keras_tabular as kc

LABEL_KEY = "species"
SPEC = kc.ModelSpec(
    name="penguin",
    label_key=LABEL_KEY,
    label_vocabulary="species",
    search_space={"units": [8, 16, 32], "layers": [1, 2], "learning_rate": [0.003, 0.01, 0.03]},
    defaults={"units": 16, "layers": 2, "learning_rate": 0.01},
    batch_size=32,
    tuner_max_trials=3,
)
DEFAULT_HPARAMS = SPEC.defaults


def build_model(tf_transform_output, hparams: dict):
    """The classifier for these hyperparameters (also used by the unit tests)."""
    return kc.build_model(SPEC, tf_transform_output, hparams)


def tuner_fn(fn_args):
    return kc.tuner_fn(SPEC, fn_args)


def run_fn(fn_args) -> None:
    kc.run_fn(SPEC, fn_args)
