"""Shared Keras (tf_keras) plumbing for Beamline's classifier module files.

Keras story: the project runs with TF_USE_LEGACY_KERAS=1, so `tf.keras` is tf_keras 2.16 in
KerasTuner 1.3.5, Trainer, TFMA and serving alike. Module files import Keras through here.

Exported SavedModel signatures:
- `serving_default`: raw feature values, one named input per feature (JSON clients call it
  without building tf.Examples) -> `scores` [batch, n_classes], `classes` [batch, n_classes].
- `classification`: serialized tf.Example `inputs` -> `classes`, `scores`; its method name is
  set to TF Serving's classify method so `:classify` works on real TF Serving too.
- `serving_examples`: serialized tf.Example -> `scores` (what TFMA evaluates).
- `transform_features`: serialized tf.Example -> transformed features, label included (TFMA's
  preprocessing function, so metrics use the same label vocabulary as training).
"""

from __future__ import annotations

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

CLASSIFY_METHOD = "tensorflow/serving/classify"
TRANSFORMED_SUFFIX = "_xf"


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


def build_classifier(
    tf_transform_output, label_key: str, n_classes: int, units: int, layers: int, lr: float
):
    """A small MLP over the transformed features with a softmax over n_classes."""
    inputs, encoded = model_inputs(tf_transform_output, label_key)
    x = keras.layers.concatenate(encoded)
    for _ in range(layers):
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="scores")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
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


def export(model, tf_transform_output, label_key: str, class_names: list[str], out_dir: str):
    """Saves `model` with Beamline's four signatures (see module docstring)."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_features = raw_serving_features(tf_transform_output)
    full_raw_spec = tf_transform_output.raw_feature_spec()
    example_spec = {k: v for k, v in full_raw_spec.items() if k != label_key}
    classes = tf.constant(class_names)

    def _scores_from_raw(raw):
        transformed = model.tft_layer(raw)
        transformed.pop(label_key, None)
        return model(transformed)

    def _classes_for(scores):
        return tf.tile(tf.expand_dims(classes, 0), [tf.shape(scores)[0], 1])

    raw_signature = {
        name: tf.TensorSpec([None], spec.dtype, name=name) for name, spec in raw_features.items()
    }

    @tf.function(input_signature=[raw_signature])
    def serve_raw(features):
        raw = {k: _dense_to_raw(features[k], raw_features[k]) for k in raw_features}
        scores = _scores_from_raw(raw)
        return {"scores": scores, "classes": _classes_for(scores)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(inputs):
        scores = _scores_from_raw(tf.io.parse_example(inputs, example_spec))
        return {"classes": _classes_for(scores), "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        return {"scores": _scores_from_raw(tf.io.parse_example(examples, example_spec))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, full_raw_spec))

    model.save(
        out_dir,
        save_format="tf",
        signatures={
            "serving_default": serve_raw,
            "classification": classify,
            "serving_examples": serve_examples,
            "transform_features": transform_features,
        },
    )
    set_method_name(out_dir, "classification", CLASSIFY_METHOD)


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
    """What a classifier module file chooses; the shared tuner_fn/run_fn do the rest."""

    name: str
    label_key: str
    search_space: dict  # hyperparameter -> list of choices; the first-listed default is used
    defaults: dict
    batch_size: int = 32
    tuner_max_trials: int = 3
    seed: int = 42
    # Class names: a Transform vocabulary (label indices follow it) or a fixed list.
    label_vocabulary: str | None = None
    class_names: tuple[str, ...] = ()

    def n_classes(self, tf_transform_output) -> int:
        if self.label_vocabulary:
            return tf_transform_output.vocabulary_size_by_name(self.label_vocabulary)
        return len(self.class_names)

    def names(self, tf_transform_output) -> list[str]:
        if self.label_vocabulary:
            return class_names_from_vocabulary(tf_transform_output, self.label_vocabulary)
        return list(self.class_names)


def build_model(spec: ModelSpec, tf_transform_output, hparams: dict):
    """The classifier for these hyperparameters (`units`, `layers`, `learning_rate`)."""
    return build_classifier(
        tf_transform_output,
        spec.label_key,
        spec.n_classes(tf_transform_output),
        units=int(hparams["units"]),
        layers=int(hparams["layers"]),
        lr=float(hparams["learning_rate"]),
    )


def _datasets(spec: ModelSpec, fn_args, tf_transform_output):
    def make(files):
        return input_fn(
            files, fn_args.data_accessor, tf_transform_output, spec.label_key, spec.batch_size
        )

    return make(fn_args.train_files), make(fn_args.eval_files)


def search_space(spec: ModelSpec):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, choices in spec.search_space.items():
        hp.Choice(name, list(choices), default=spec.defaults[name])
    return hp


def tuner_fn(spec: ModelSpec, fn_args):
    """A small KerasTuner RandomSearch over the spec's search space (TFX's Tuner contract)."""
    import keras_tuner
    from tfx.components.tuner.component import TunerFnResult

    tf_transform_output = load_transform_output(fn_args.transform_graph_path)
    keras.utils.set_random_seed(spec.seed)
    tuner = keras_tuner.RandomSearch(
        lambda hp: build_model(spec, tf_transform_output, hp.values),
        max_trials=spec.tuner_max_trials,
        hyperparameters=search_space(spec),
        allow_new_entries=False,
        objective=keras_tuner.Objective("val_sparse_categorical_accuracy", "max"),
        directory=fn_args.working_dir,
        project_name=f"{spec.name}_tuning",
        seed=spec.seed,
    )
    train, evaluation = _datasets(spec, fn_args, tf_transform_output)
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train,
            "validation_data": evaluation,
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
        },
    )


def run_fn(spec: ModelSpec, fn_args) -> None:
    """Trains with the tuned (or default) hyperparameters and exports the serving model."""
    import keras_tuner

    tf_transform_output = load_transform_output(fn_args.transform_output)
    hparams = dict(spec.defaults)
    if fn_args.hyperparameters:
        hparams.update(keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values)
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec, tf_transform_output, hparams)
    train, evaluation = _datasets(spec, fn_args, tf_transform_output)
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        verbose=0,
    )
    export(
        model,
        tf_transform_output,
        spec.label_key,
        spec.names(tf_transform_output),
        fn_args.serving_model_dir,
    )
