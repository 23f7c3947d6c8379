"""Transform module file for the penguin pipeline: imputation, scaling, vocabularies.

Missing measurements (absent features: the CSV's "NA") are imputed with the training mean
before z-scoring; missing categories become their own "__missing__" vocabulary entry. The label
`species` becomes an integer index into the `species` vocabulary (sorted by frequency).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

LABEL_KEY = "species"
LABEL_VOCABULARY = "species"
NUMERIC_FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
CATEGORICAL_FEATURES = ("island", "sex")
MISSING_CATEGORY = "__missing__"


def transformed_name(key: str) -> str:
    return f"{key}_xf"


def _to_dense(x, default):
    """A [batch] dense tensor from a sparse/ragged/dense [batch, <=1] feature, gaps = default."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default
        )
    elif isinstance(x, tf.RaggedTensor):
        x = x.to_tensor(default_value=default, shape=[None, 1])
    return tf.reshape(x, [-1])


def _present_values(x):
    if isinstance(x, tf.sparse.SparseTensor):
        return x.values
    if isinstance(x, tf.RaggedTensor):
        return x.flat_values
    return tf.reshape(x, [-1])


def impute_numeric(x):
    """Float [batch] values with gaps filled by the mean of the present values."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    else:
        x = tf.cast(x, tf.float32)
    return _to_dense(x, tft.mean(_present_values(x)))


def preprocessing_fn(inputs: dict) -> dict:
    """tf.Transform preprocessing: the function TFX's Transform calls."""
    outputs = {}
    for key in NUMERIC_FEATURES:
        outputs[transformed_name(key)] = tft.scale_to_z_score(impute_numeric(inputs[key]))
    for key in CATEGORICAL_FEATURES:
        filled = _to_dense(inputs[key], MISSING_CATEGORY)
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            filled, num_oov_buckets=1, vocab_filename=key
        )
    if LABEL_KEY in inputs:
        outputs[LABEL_KEY] = tft.compute_and_apply_vocabulary(
            _to_dense(inputs[LABEL_KEY], ""), vocab_filename=LABEL_VOCABULARY
        )
    return outputs
