"""Transform module file for the taxi pipeline: label "tips > 20% of fare", scaled features.

Numeric features are mean-imputed and z-scored; hour/day/month and the areas stay numeric
(scaled); payment type and company get vocabularies (missing company = "__missing__", rare
companies share OOV buckets).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

LABEL_KEY = "big_tip"
NUMERIC_FEATURES = (
    "fare",
    "trip_miles",
    "trip_seconds",
    "trip_start_hour",
    "trip_start_day",
    "trip_start_month",
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
)
CATEGORICAL_FEATURES = ("payment_type", "company")
MISSING_CATEGORY = "__missing__"
BIG_TIP_FRACTION = 0.2


def transformed_name(key: str) -> str:
    return f"{key}_xf"


def _to_dense(x, default):
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default
        )
    return tf.reshape(x, [-1])


def _as_float(x):
    if isinstance(x, tf.sparse.SparseTensor):
        return tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    return tf.cast(x, tf.float32)


def impute_numeric(x):
    x = _as_float(x)
    values = x.values if isinstance(x, tf.sparse.SparseTensor) else tf.reshape(x, [-1])
    return _to_dense(x, tft.mean(values))


def preprocessing_fn(inputs: dict) -> dict:
    outputs = {}
    for key in NUMERIC_FEATURES:
        outputs[transformed_name(key)] = tft.scale_to_z_score(impute_numeric(inputs[key]))
    for key in CATEGORICAL_FEATURES:
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _to_dense(inputs[key], MISSING_CATEGORY), top_k=30, num_oov_buckets=1,
            vocab_filename=key,
        )
    if "tips" in inputs:
        fare = _to_dense(_as_float(inputs["fare"]), 0.0)
        tips = _to_dense(_as_float(inputs["tips"]), 0.0)
        outputs[LABEL_KEY] = tf.cast(tips > BIG_TIP_FRACTION * fare, tf.int64)
    return outputs
