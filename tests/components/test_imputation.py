"""The shared imputation helpers on every kind of tensor a Transform input can be."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from beamline_components.common import imputation
from beamline_components.tabular_pipeline import TRANSFORM_FORCE_TF_COMPAT_V1

# Rows 0 and 2 have a value, row 1 has none (an absent feature).
SPARSE = tf.SparseTensor(indices=[[0, 0], [2, 0]], values=[4, 8], dense_shape=[3, 1])
RAGGED = tf.ragged.constant([[4], [], [8]])
DENSE = tf.constant([[4], [6], [8]])


@pytest.mark.parametrize("x", [SPARSE, RAGGED], ids=["sparse", "ragged"])
def test_gaps_take_the_default_and_values_keep_their_rows(x):
    assert imputation.to_dense(x, -1).numpy().tolist() == [4, -1, 8]
    assert sorted(imputation.present_values(x).numpy().tolist()) == [4, 8]


def test_dense_input_has_no_gaps():
    assert imputation.to_dense(DENSE, -1).numpy().tolist() == [4, 6, 8]
    assert imputation.as_float(DENSE).dtype == tf.float32


@pytest.mark.parametrize("x", [SPARSE, RAGGED, DENSE], ids=["sparse", "ragged", "dense"])
def test_as_float_keeps_the_kind_of_tensor(x):
    y = imputation.as_float(x)
    assert type(y) is type(x) and y.dtype == tf.float32


def test_missing_category_fills_string_gaps():
    x = tf.ragged.constant([["a"], [], ["b"]])
    assert imputation.fill_categorical(x).numpy().tolist() == [b"a", b"__missing__", b"b"]


@pytest.mark.parametrize(
    "spec",
    [
        tf.io.VarLenFeature(tf.int64),
        tf.io.RaggedFeature(tf.int64, value_key="x", row_splits_dtype=tf.int64),
    ],
    ids=["sparse", "ragged"],
)
def test_impute_numeric_fills_gaps_with_the_mean_of_present_values(tmp_path, spec):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({"x": spec}))
    rows = [{"x": [2]}, {"x": []}, {"x": [10]}, {"x": [3]}]

    def preprocessing_fn(inputs):
        return {"y": imputation.impute_numeric(inputs["x"])}

    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=TRANSFORM_FORCE_TF_COMPAT_V1):
        (data, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
    np.testing.assert_allclose([row["y"] for row in data], [2.0, 5.0, 10.0, 3.0])
