"""The taxi preprocessing_fn on tf.Transform: label, imputation and vocabularies."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from beamline_components.common.imputation import MISSING_CATEGORY
from beamline_components.tabular_pipeline import TRANSFORM_FORCE_TF_COMPAT_V1
from tests.components.conftest import load_module_file


def test_taxi_label_imputation_and_missing_company(tmp_path):
    taxi = load_module_file("taxi/transform/module.py")
    spec = {k: tf.io.VarLenFeature(tf.float32) for k in taxi.NUMERIC_FEATURES + ("tips",)}
    spec.update({k: tf.io.VarLenFeature(tf.string) for k in taxi.CATEGORICAL_FEATURES})
    rows = []
    for i in range(6):
        row = {k: [float(i + 1)] for k in taxi.NUMERIC_FEATURES}
        row["fare"] = [10.0]
        row["tips"] = [5.0 if i % 2 else 1.0]
        row["payment_type"] = ["Cash"]
        row["company"] = [] if i == 0 else ["Flash Cab"]
        rows.append(row)
    rows[3]["dropoff_latitude"] = []  # a gap: the mean of 1, 2, 3, 5, 6
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=TRANSFORM_FORCE_TF_COMPAT_V1):
        (data, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            taxi.preprocessing_fn
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "out"))
    assert [row[taxi.LABEL_KEY] for row in data] == [0, 1, 0, 1, 0, 1]
    dropoff = np.array([row["dropoff_latitude_xf"] for row in data])
    # Imputed with the mean of the present values, which z-scores to 0.
    assert abs(dropoff[3]) < 1e-5 and np.isfinite(dropoff).all()
    vocab = [v.decode() for v in tft.TFTransformOutput(str(tmp_path / "out"))
             .vocabulary_by_name("company")]
    assert MISSING_CATEGORY in vocab
    assert data[0]["company_xf"] == vocab.index(MISSING_CATEGORY)
