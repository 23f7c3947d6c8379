"""Shared Keras (tf_keras) plumbing for Beamline's tabular module files: one small MLP over the
transformed features, with the head, loss, metrics and signatures of its task (binary,
multiclass or regression; `beamline.metrics` names the tasks and the metrics that judge them).

Keras story: the project runs with TF_USE_LEGACY_KERAS=1, so `tf.keras` is tf_keras 2.16 in
KerasTuner 1.3.5, Trainer, TFMA and serving alike. Module files import Keras through here.

Exported SavedModel signatures, classifiers (binary and multiclass):
- `serving_default`: raw feature values, one named input per feature (JSON clients call it
  without building tf.Examples) -> `scores` [batch, n_classes], `classes` [batch, n_classes]
  (binary: two columns, the negative class then the positive one).
- `classification`: serialized tf.Example `inputs` -> `classes`, `scores`; its method name is
  set to TF Serving's classify method so `:classify` works on real TF Serving too.
- `serving_examples`: serialized tf.Example -> `scores` (binary: `probabilities` [batch, 1] of
  the positive class), what TFMA evaluates.
Regression:
- `serving_default`: raw feature values -> `outputs` [batch] (a predict answers one number per
  instance);
- `regression`: serialized tf.Example `inputs` -> `outputs` [batch], TF Serving's regress method;
- `serving_examples`: serialized tf.Example -> `outputs`.
Both: `transform_features`: serialized tf.Example -> transformed features, label included
(TFMA's preprocessing function, so metrics see the label as training did).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

if not os.environ.get("TF_USE_LEGACY_KERAS"):
    raise RuntimeError(
        "Beamline's model modules need TF_USE_LEGACY_KERAS=1 set before TensorFlow is imported "
        "(tf_keras 2.16 is the project's Keras); run them through `beamline run`."
    )

keras = tf.keras

# The task names, as beamline.metrics spells them (module files import only this package).
BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# Label batches read to find a regression label's mean and spread (the output layer's scale).
LABEL_MOMENT_BATCHES = 50
TRANSFORMED_SUFFIX = "_xf"
# The Trainer's steps are split into up to this many epochs of equal length (the same total, so
# the same model): each epoch's loss and metrics, train and validation, give a learning curve.
MAX_EPOCHS = 10
# The per-epoch record in the Trainer's ModelRun directory; beamline/lineage/epochs.py reads it
# (module files import nothing of the framework, so the name is spelled in both places).
HISTORY_FILE = "history.json"
# The custom_config key of the hyperparameters a run fixes (`beamline run --set`; set by
# components/tabular_pipeline.py, spelled in both places like HISTORY_FILE).
FIXED_HYPERPARAMETERS_KEY = "hyperparameters"


def fixed_hyperparameters(fn_args) -> dict:
    """The hyperparameters this run fixes (`beamline run --set`), from the component's
    custom_config; {} when it fixes none."""
    config = getattr(fn_args, "custom_config", None) or {}
    return dict(config.get(FIXED_HYPERPARAMETERS_KEY) or {})


def input_fn(file_pattern, data_accessor, tf_transform_output, label_key: str, batch_size: int):
    """A repeating dataset of (transformed features, label) batches."""
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key),
        tf_transform_output.transformed_metadata.schema,
    ).repeat()


def model_inputs(tf_transform_output, label_key: str) -> tuple[dict, list]:
    """Keras inputs for every transformed feature, and the encoded tensors to concatenate.

    Integer features (vocabulary indices) are one-hot encoded with their vocabulary size + 1
    OOV bucket; float features pass through.
    """
    spec = tf_transform_output.transformed_feature_spec()
    inputs, encoded = {}, []
    for name in sorted(spec):
        if name == label_key:
            continue
        feature = spec[name]
        inputs[name] = keras.layers.Input(shape=(1,), name=name, dtype=feature.dtype)
        if feature.dtype == tf.int64:
            vocab = name[: -len(TRANSFORMED_SUFFIX)]
            depth = tf_transform_output.vocabulary_size_by_name(vocab) + 1
            encoded.append(
                keras.layers.CategoryEncoding(num_tokens=depth, output_mode="one_hot")(
                    inputs[name]
                )
            )
        else:
            encoded.append(inputs[name])
    return inputs, encoded


def build_network(
    tf_transform_output, label_key: str, task: str, n_classes: int, units: int, layers: int,
    lr: float, label_moments: tuple[float, float] = (0.0, 1.0),
):
    """A small MLP over the transformed features with the task's head, loss and metrics.

    Regression predicts in the label's own units: the last layer's output is scaled by the
    training labels' spread and shifted by their mean, so the network learns a z-score.
    """
    inputs, encoded = model_inputs(tf_transform_output, label_key)
    x = keras.layers.concatenate(encoded)
    for _ in range(layers):
        x = keras.layers.Dense(units, activation="relu")(x)
    if task == BINARY:
        outputs = keras.layers.Dense(1, activation="sigmoid", name="probabilities")(x)
        loss = keras.losses.BinaryCrossentropy()
        metrics = [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy()]
    elif task == REGRESSION:
        mean, std = label_moments
        z = keras.layers.Dense(1, name="z")(x)
        outputs = keras.layers.Rescaling(std, offset=mean, name="outputs")(z)
        loss = keras.losses.MeanSquaredError()
        metrics = [keras.metrics.RootMeanSquaredError(), keras.metrics.MeanAbsoluteError()]
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="scores")(x)
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy()]
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=metrics)
    return model


def raw_serving_features(tf_transform_output) -> dict:
    """Raw features the transform graph uses (one per `<name>_xf` output) and their specs."""
    raw_spec = tf_transform_output.raw_feature_spec()
    used = [
        name[: -len(TRANSFORMED_SUFFIX)]
        for name in tf_transform_output.transformed_feature_spec()
        if name.endswith(TRANSFORMED_SUFFIX)
    ]
    return {name: raw_spec[name] for name in sorted(used)}


def _dense_to_raw(value, spec):
    """A [batch] request tensor in the shape the transform graph parses this feature to."""
    if isinstance(spec, tf.io.FixedLenFeature):
        return tf.reshape(value, [-1, 1])
    batch = tf.shape(value, out_type=tf.int64)[0]
    indices = tf.stack([tf.range(batch), tf.zeros([batch], tf.int64)], axis=1)
    return tf.SparseTensor(indices, value, tf.stack([batch, tf.constant(1, tf.int64)]))


def export(model, tf_transform_output, label_key: str, class_names: list[str], out_dir: str,
           task: str = MULTICLASS):
    """Saves `model` with the task's signatures (see module docstring)."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_features = raw_serving_features(tf_transform_output)
    full_raw_spec = tf_transform_output.raw_feature_spec()
    example_spec = {k: v for k, v in full_raw_spec.items() if k != label_key}
    classes = tf.constant(class_names or [""])

    def _output_from_raw(raw):
        transformed = model.tft_layer(raw)
        transformed.pop(label_key, None)
        return model(transformed)

    def _scores(output):
        # Binary: the positive class's probability as the second of two columns.
        return tf.concat([1.0 - output, output], axis=1) if task == BINARY else output

    def _classes_for(scores):
        return tf.tile(tf.expand_dims(classes, 0), [tf.shape(scores)[0], 1])

    def _answer(output):
        if task == REGRESSION:
            return {"outputs": tf.reshape(output, [-1])}
        scores = _scores(output)
        return {"scores": scores, "classes": _classes_for(scores)}

    raw_signature = {
        name: tf.TensorSpec([None], spec.dtype, name=name) for name, spec in raw_features.items()
    }

    @tf.function(input_signature=[raw_signature])
    def serve_raw(features):
        raw = {k: _dense_to_raw(features[k], raw_features[k]) for k in raw_features}
        return _answer(_output_from_raw(raw))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def from_examples(inputs):
        return _answer(_output_from_raw(tf.io.parse_example(inputs, example_spec)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        output = _output_from_raw(tf.io.parse_example(examples, example_spec))
        key = {BINARY: "probabilities", REGRESSION: "outputs"}.get(task, "scores")
        return {key: output}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, full_raw_spec))

    example_api, method = (
        ("regression", REGRESS_METHOD) if task == REGRESSION
        else ("classification", CLASSIFY_METHOD)
    )
    model.save(
        out_dir,
        save_format="tf",
        signatures={
            "serving_default": serve_raw,
            example_api: from_examples,
            "serving_examples": serve_examples,
            "transform_features": transform_features,
        },
    )
    set_method_name(out_dir, example_api, method)


def set_method_name(saved_model_dir: str, signature: str, method_name: str) -> None:
    """TF2 saves every signature as predict; TF Serving's Classify API needs the classify method."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(saved_model_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        meta_graph.signature_def[signature].method_name = method_name
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "wb") as f:
        f.write(saved_model.SerializeToString())
    tf.io.gfile.rename(tmp, path, overwrite=True)


def class_names_from_vocabulary(tf_transform_output, vocabulary: str) -> list[str]:
    """Class names in label-index order (the vocabulary file's order)."""
    return [
        v.decode("utf-8") if isinstance(v, bytes) else str(v)
        for v in tf_transform_output.vocabulary_by_name(vocabulary)
    ]


def load_transform_output(transform_graph_path: str):
    return tft.TFTransformOutput(transform_graph_path)


@dataclass(frozen=True)
class ModelSpec:
    """What a module file chooses; the shared tuner_fn/run_fn do the rest."""

    name: str
    label_key: str
    search_space: dict  # hyperparameter -> list of choices; the first-listed default is used
    defaults: dict
    batch_size: int = 32
    tuner_max_trials: int = 3
    seed: int = 42
    # Class names: a Transform vocabulary (label indices follow it) or a fixed list (binary:
    # the negative class, then the positive one).
    label_vocabulary: str | None = None
    class_names: tuple[str, ...] = ()
    task: str = MULTICLASS

    def n_classes(self, tf_transform_output) -> int:
        if self.task == REGRESSION:
            return 1
        if self.label_vocabulary:
            return tf_transform_output.vocabulary_size_by_name(self.label_vocabulary)
        return len(self.class_names)

    def names(self, tf_transform_output) -> list[str]:
        if self.task == REGRESSION:
            return []
        if self.label_vocabulary:
            return class_names_from_vocabulary(tf_transform_output, self.label_vocabulary)
        return list(self.class_names)

    @property
    def objective(self) -> tuple[str, str]:
        """The Tuner's validation metric and direction: the task's blessing metric."""
        return {
            BINARY: ("val_auc", "max"),
            REGRESSION: ("val_root_mean_squared_error", "min"),
        }.get(self.task, ("val_sparse_categorical_accuracy", "max"))


def build_model(spec: ModelSpec, tf_transform_output, hparams: dict,
                label_moments: tuple[float, float] = (0.0, 1.0)):
    """The network for these hyperparameters (`units`, `layers`, `learning_rate`)."""
    return build_network(
        tf_transform_output,
        spec.label_key,
        spec.task,
        spec.n_classes(tf_transform_output),
        units=int(hparams["units"]),
        layers=int(hparams["layers"]),
        lr=float(hparams["learning_rate"]),
        label_moments=label_moments,
    )


def _datasets(spec: ModelSpec, fn_args, tf_transform_output):
    def make(files):
        return input_fn(
            files, fn_args.data_accessor, tf_transform_output, spec.label_key, spec.batch_size
        )

    return make(fn_args.train_files), make(fn_args.eval_files)


def label_moments(spec: ModelSpec, train) -> tuple[float, float]:
    """Mean and standard deviation of the training labels (regression's output scale); (0, 1)
    for classifiers."""
    if spec.task != REGRESSION:
        return 0.0, 1.0
    labels = tf.concat(
        [tf.reshape(tf.cast(y, tf.float64), [-1]) for _, y in train.take(LABEL_MOMENT_BATCHES)],
        axis=0,
    )
    mean, std = float(tf.reduce_mean(labels)), float(tf.math.reduce_std(labels))
    return mean, std if std > 0 else 1.0


def search_space(spec: ModelSpec, fixed: dict | None = None):
    """The spec's search space; a hyperparameter in `fixed` is KerasTuner's `Fixed` at that
    value (every trial uses it), as a KerasTuner user fixes one while searching the others."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, choices in spec.search_space.items():
        if fixed and name in fixed:
            hp.Fixed(name, fixed[name])
        else:
            hp.Choice(name, list(choices), default=spec.defaults[name])
    return hp


def tuner_fn(spec: ModelSpec, fn_args):
    """A small KerasTuner RandomSearch over the spec's search space (TFX's Tuner contract)."""
    import keras_tuner
    from tfx.components.tuner.component import TunerFnResult

    tf_transform_output = load_transform_output(fn_args.transform_graph_path)
    keras.utils.set_random_seed(spec.seed)
    train, evaluation = _datasets(spec, fn_args, tf_transform_output)
    moments = label_moments(spec, train)
    tuner = keras_tuner.RandomSearch(
        lambda hp: build_model(spec, tf_transform_output, hp.values, moments),
        max_trials=spec.tuner_max_trials,
        hyperparameters=search_space(spec, fixed_hyperparameters(fn_args)),
        allow_new_entries=False,
        objective=keras_tuner.Objective(*spec.objective),
        directory=fn_args.working_dir,
        project_name=f"{spec.name}_tuning",
        seed=spec.seed,
    )
    # Each trial's steps split into epochs as the Trainer splits its own: the same model, and a
    # validation after every epoch, so every trial has a learning curve (Beamline's Tuner
    # records it) and KerasTuner scores the trial by its best epoch.
    epochs, steps = epoch_split(fn_args.train_steps)
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train,
            "validation_data": evaluation,
            "epochs": epochs,
            "steps_per_epoch": steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


def epoch_split(total_steps: int | None, max_epochs: int = MAX_EPOCHS) -> tuple[int, int | None]:
    """(epochs, steps per epoch) covering exactly `total_steps`: the most epochs, up to
    `max_epochs`, that divide it evenly (a prime number of steps stays one epoch). A repeating
    dataset keeps its iterator across epochs, so the batches, and the model, are the ones a
    single epoch of `total_steps` sees; only the validation runs after every epoch."""
    if not total_steps:
        return 1, None
    total = int(total_steps)
    epochs = next(e for e in range(min(max_epochs, total), 0, -1) if total % e == 0)
    return epochs, total // epochs


def _finite(value) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def write_json(path: str, data: dict) -> None:
    """`data` as JSON at `path` (any filesystem tf.io.gfile reaches), replaced in one rename so a
    reader never sees half a file."""
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True))
    tf.io.gfile.rename(tmp, path, overwrite=True)


class EpochHistory(keras.callbacks.Callback):
    """Writes every finished epoch's logs (loss and metrics, `val_` ones from the validation) to
    `path`, the whole file again after each epoch, so the curve grows while training runs."""

    def __init__(self, path: str, steps_per_epoch: int | None, validation_steps: int | None):
        super().__init__()
        self.path = path
        self.steps_per_epoch = steps_per_epoch
        self.validation_steps = validation_steps
        self.metrics: dict[str, list[float | None]] = {}

    def on_epoch_end(self, epoch, logs=None):
        for name, value in sorted((logs or {}).items()):
            self.metrics.setdefault(name, []).append(_finite(value))
        write_json(self.path, {
            "epochs": epoch + 1,
            "steps_per_epoch": self.steps_per_epoch,
            "validation_steps": self.validation_steps,
            "metrics": self.metrics,
        })


def hyperparameters_for(spec: ModelSpec, fn_args) -> dict:
    """What the Trainer trains with: the spec's defaults, over them the Tuner's choice (or an
    imported one), over that the run's fixed ones: an explicit `--set` always wins."""
    import keras_tuner

    hparams = dict(spec.defaults)
    if getattr(fn_args, "hyperparameters", None):
        hparams.update(keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values)
    hparams.update(fixed_hyperparameters(fn_args))
    return hparams


def run_fn(spec: ModelSpec, fn_args) -> None:
    """Trains and exports the serving model; each epoch's loss and metrics go to
    `history.json` in the ModelRun directory. Hyperparameters: the spec's defaults, over them
    the Tuner's choice, over that the run's fixed ones (`beamline run --set`)."""
    tf_transform_output = load_transform_output(fn_args.transform_output)
    hparams = hyperparameters_for(spec, fn_args)
    keras.utils.set_random_seed(spec.seed)
    train, evaluation = _datasets(spec, fn_args, tf_transform_output)
    model = build_model(spec, tf_transform_output, hparams, label_moments(spec, train))
    epochs, steps = epoch_split(fn_args.train_steps)
    callbacks = []
    if getattr(fn_args, "model_run_dir", None):
        tf.io.gfile.makedirs(fn_args.model_run_dir)
        history = os.path.join(fn_args.model_run_dir, HISTORY_FILE)
        callbacks.append(EpochHistory(history, steps, fn_args.eval_steps))
    model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        callbacks=callbacks,
        verbose=0,
    )
    export(
        model,
        tf_transform_output,
        spec.label_key,
        spec.names(tf_transform_output),
        fn_args.serving_model_dir,
        spec.task,
    )
