"""Trainer and Tuner module file for the taxi pipeline (binary: big tip or not)."""

from __future__ import annotations

import keras_tuner
from tfx import v1 as tfx

from components.common import keras_classifier as kc

LABEL_KEY = "big_tip"
CLASS_NAMES = ["small_tip", "big_tip"]
BATCH_SIZE = 128
DEFAULT_HPARAMS = {"units": 32, "layers": 2, "learning_rate": 0.003}
TUNER_MAX_TRIALS = 2
SEED = 42


def _search_space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [16, 32, 64], default=DEFAULT_HPARAMS["units"])
    hp.Int("layers", 1, 3, default=DEFAULT_HPARAMS["layers"])
    hp.Choice("learning_rate", [0.001, 0.003, 0.01], default=DEFAULT_HPARAMS["learning_rate"])
    return hp


def build_model(tf_transform_output, hparams: dict):
    return kc.build_classifier(
        tf_transform_output,
        LABEL_KEY,
        len(CLASS_NAMES),
        units=int(hparams["units"]),
        layers=int(hparams["layers"]),
        lr=float(hparams["learning_rate"]),
    )


def _datasets(fn_args, tf_transform_output):
    def make(files):
        return kc.input_fn(files, fn_args.data_accessor, tf_transform_output, LABEL_KEY, BATCH_SIZE)

    return make(fn_args.train_files), make(fn_args.eval_files)


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    tf_transform_output = kc.load_transform_output(fn_args.transform_graph_path)
    kc.keras.utils.set_random_seed(SEED)
    tuner = keras_tuner.RandomSearch(
        lambda hp: build_model(tf_transform_output, hp.values),
        max_trials=TUNER_MAX_TRIALS,
        hyperparameters=_search_space(),
        allow_new_entries=False,
        objective=keras_tuner.Objective("val_sparse_categorical_accuracy", "max"),
        directory=fn_args.working_dir,
        project_name="taxi_tuning",
        seed=SEED,
    )
    train, evaluation = _datasets(fn_args, tf_transform_output)
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train,
            "validation_data": evaluation,
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
        },
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    tf_transform_output = kc.load_transform_output(fn_args.transform_output)
    hparams = dict(DEFAULT_HPARAMS)
    if fn_args.hyperparameters:
        hparams.update(keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values)
    kc.keras.utils.set_random_seed(SEED)
    model = build_model(tf_transform_output, hparams)
    train, evaluation = _datasets(fn_args, tf_transform_output)
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        verbose=0,
    )
    kc.export(model, tf_transform_output, LABEL_KEY, CLASS_NAMES, fn_args.serving_model_dir)
