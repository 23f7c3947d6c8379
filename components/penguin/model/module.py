"""Trainer and Tuner module file for the penguin pipeline (species from body measurements).

Hyperparameters: hidden `units`, hidden `layers`, `learning_rate`. The Tuner searches a small
space with KerasTuner RandomSearch; without a Tuner the Trainer uses DEFAULT_HPARAMS.
"""

from __future__ import annotations

import keras_tuner
from tfx import v1 as tfx

from components.common import keras_classifier as kc

LABEL_KEY = "species"
LABEL_VOCABULARY = "species"
BATCH_SIZE = 32
DEFAULT_HPARAMS = {"units": 16, "layers": 2, "learning_rate": 0.01}
TUNER_MAX_TRIALS = 3
SEED = 42


def _search_space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [8, 16, 32], default=DEFAULT_HPARAMS["units"])
    hp.Int("layers", 1, 2, default=DEFAULT_HPARAMS["layers"])
    hp.Choice("learning_rate", [0.003, 0.01, 0.03], default=DEFAULT_HPARAMS["learning_rate"])
    return hp


def _n_classes(tf_transform_output) -> int:
    return tf_transform_output.vocabulary_size_by_name(LABEL_VOCABULARY)


def build_model(tf_transform_output, hparams: dict):
    """The classifier for these hyperparameters (also used by the unit tests)."""
    return kc.build_classifier(
        tf_transform_output,
        LABEL_KEY,
        _n_classes(tf_transform_output),
        units=int(hparams["units"]),
        layers=int(hparams["layers"]),
        lr=float(hparams["learning_rate"]),
    )


def _datasets(fn_args, tf_transform_output):
    def make(files):
        return kc.input_fn(files, fn_args.data_accessor, tf_transform_output, LABEL_KEY, BATCH_SIZE)

    return make(fn_args.train_files), make(fn_args.eval_files)


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """A small RandomSearch over units/layers/learning rate."""
    tf_transform_output = kc.load_transform_output(fn_args.transform_graph_path)
    kc.keras.utils.set_random_seed(SEED)
    tuner = keras_tuner.RandomSearch(
        lambda hp: build_model(tf_transform_output, hp.values),
        max_trials=TUNER_MAX_TRIALS,
        hyperparameters=_search_space(),
        allow_new_entries=False,
        objective=keras_tuner.Objective("val_sparse_categorical_accuracy", "max"),
        directory=fn_args.working_dir,
        project_name="penguin_tuning",
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
    """Trains with the tuned (or default) hyperparameters and exports the serving model."""
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
    kc.export(
        model,
        tf_transform_output,
        LABEL_KEY,
        kc.class_names_from_vocabulary(tf_transform_output, LABEL_VOCABULARY),
        fn_args.serving_model_dir,
    )
