"""Transform module file for the taxi pipeline: label "tips > 20% of fare", scaled features.

Numeric features are mean-imputed and z-scored; hour/day/month and the areas stay numeric
(scaled); payment type and company get vocabularies (missing company = "__missing__", rare
companies share OOV buckets).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from beamline_components.common.imputation import (
    as_float,
    fill_categorical,
    impute_numeric,
    to_dense,
)

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
BIG_TIP_FRACTION = 0.2


def transformed_name(key: str) -> str:
    return f"{key}_xf"


def preprocessing_fn(inputs: dict) -> dict:
    outputs = {}
    for key in NUMERIC_FEATURES:
        outputs[transformed_name(key)] = tft.scale_to_z_score(impute_numeric(inputs[key]))
    for key in CATEGORICAL_FEATURES:
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            fill_categorical(inputs[key]), top_k=30, num_oov_buckets=1,
            vocab_filename=key,
        )
    if "tips" in inputs:
        fare = to_dense(as_float(inputs["fare"]), 0.0)
        tips = to_dense(as_float(inputs["tips"]), 0.0)
        outputs[LABEL_KEY] = tf.cast(tips > BIG_TIP_FRACTION * fare, tf.int64)
    return outputs
