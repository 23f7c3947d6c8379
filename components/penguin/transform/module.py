"""Transform module file for the penguin pipeline: imputation, scaling, vocabularies.

Missing measurements (absent features: the CSV's "NA") are imputed with the training mean
before z-scoring; missing categories become their own "__missing__" vocabulary entry. The label
`species` becomes an integer index into the `species` vocabulary (sorted by frequency).
"""

from __future__ import annotations

import tensorflow_transform as tft

from beamline_components.common.imputation import fill_categorical, impute_numeric, to_dense

LABEL_KEY = "species"
LABEL_VOCABULARY = "species"
NUMERIC_FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
CATEGORICAL_FEATURES = ("island", "sex")


def transformed_name(key: str) -> str:
    return f"{key}_xf"


def preprocessing_fn(inputs: dict) -> dict:
    """tf.Transform preprocessing: the function TFX's Transform calls."""
    outputs = {}
    for key in NUMERIC_FEATURES:
        outputs[transformed_name(key)] = tft.scale_to_z_score(impute_numeric(inputs[key]))
    for key in CATEGORICAL_FEATURES:
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            fill_categorical(inputs[key]), num_oov_buckets=1, vocab_filename=key
        )
    if LABEL_KEY in inputs:
        outputs[LABEL_KEY] = tft.compute_and_apply_vocabulary(
            to_dense(inputs[LABEL_KEY], ""), vocab_filename=LABEL_VOCABULARY
        )
    return outputs
