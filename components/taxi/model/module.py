"""Trainer and Tuner module file for the taxi pipeline (binary: big tip or not)."""

from __future__ import annotations

from beamline_components.common import keras_tabular as kc

LABEL_KEY = "big_tip"
SPEC = kc.ModelSpec(
    name="taxi",
    label_key=LABEL_KEY,
    class_names=("small_tip", "big_tip"),
    search_space={
        "units": [16, 32, 64],
        "layers": [1, 2, 3],
        "learning_rate": [0.001, 0.003, 0.01],
    },
    defaults={"units": 32, "layers": 2, "learning_rate": 0.003},
    batch_size=128,
    tuner_max_trials=2,
)
DEFAULT_HPARAMS = SPEC.defaults


def build_model(tf_transform_output, hparams: dict):
    return kc.build_model(SPEC, tf_transform_output, hparams)


def tuner_fn(fn_args):
    return kc.tuner_fn(SPEC, fn_args)


def run_fn(fn_args) -> None:
    kc.run_fn(SPEC, fn_args)
