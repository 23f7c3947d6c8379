"""Unit tests for the penguin Transform preprocessing function and the model builder."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from beamline_components.common.imputation import MISSING_CATEGORY
from beamline_components.tabular_pipeline import TRANSFORM_FORCE_TF_COMPAT_V1

SPECIES = ["Adelie", "Gentoo", "Chinstrap"]
RAW_SPEC = {
    "species": tf.io.FixedLenFeature([], tf.string),
    "island": tf.io.VarLenFeature(tf.string),
    "sex": tf.io.VarLenFeature(tf.string),
    "bill_length_mm": tf.io.VarLenFeature(tf.float32),
    "bill_depth_mm": tf.io.VarLenFeature(tf.float32),
    "flipper_length_mm": tf.io.VarLenFeature(tf.int64),
    "body_mass_g": tf.io.VarLenFeature(tf.int64),
}


def _rows(n=60):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        k = i % 3
        rows.append(
            {
                "species": SPECIES[k],
                "island": ["Biscoe", "Dream", "Torgersen"][k : k + 1],
                "sex": [] if i % 10 == 0 else ["male" if i % 2 else "female"],
                "bill_length_mm": [float(35 + 6 * k + rng.normal())],
                "bill_depth_mm": [] if i == 5 else [float(18 - 2 * k + rng.normal())],
                "flipper_length_mm": [int(190 + 12 * k)],
                "body_mass_g": [int(3500 + 800 * k)],
            }
        )
    return rows


@pytest.fixture(scope="module")
def transformed(tmp_path_factory, penguin_transform):
    """Runs the real preprocessing_fn through tf.Transform on Beam (in-process)."""
    out = tmp_path_factory.mktemp("tft")
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    tmp = str(out / "tmp")
    with tft_beam.Context(temp_dir=tmp, force_tf_compat_v1=TRANSFORM_FORCE_TF_COMPAT_V1):
        (data, _), transform_fn = (
            _rows(),
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(penguin_transform.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(out / "transform"))
    return data, tft.TFTransformOutput(str(out / "transform"))


def test_outputs_are_transformed_features_and_integer_label(transformed, penguin_transform):
    data, _ = transformed
    expected = {penguin_transform.transformed_name(k) for k in penguin_transform.NUMERIC_FEATURES}
    expected |= {penguin_transform.transformed_name(k) for k in ("island", "sex")}
    assert set(data[0]) == expected | {"species"}
    assert {row["species"] for row in data} == {0, 1, 2}


def test_numeric_features_are_z_scored_and_missing_values_imputed_with_mean(transformed):
    data, _ = transformed
    values = np.array([row["bill_depth_mm_xf"] for row in data], dtype=float)
    assert abs(values.mean()) < 1e-4
    assert np.isfinite(values).all()
    # Row 5 had no bill_depth_mm: imputed with the mean, i.e. z-score 0.
    assert abs(data[5]["bill_depth_mm_xf"]) < 1e-5


def test_missing_category_gets_its_own_vocabulary_entry(transformed, penguin_transform):
    data, output = transformed
    vocab = [v.decode() for v in output.vocabulary_by_name("sex")]
    assert MISSING_CATEGORY in vocab
    assert data[0]["sex_xf"] == vocab.index(MISSING_CATEGORY)


def test_label_vocabulary_lists_the_three_species(transformed):
    _, output = transformed
    assert sorted(v.decode() for v in output.vocabulary_by_name("species")) == sorted(SPECIES)


def test_model_builder_outputs_class_probabilities_and_learns(transformed, penguin_model):
    data, output = transformed
    model = penguin_model.build_model(output, penguin_model.DEFAULT_HPARAMS)
    features = {
        k: np.array([[row[k]] for row in data])
        for k in data[0]
        if k != penguin_model.LABEL_KEY
    }
    labels = np.array([row["species"] for row in data])
    before = model.evaluate(features, labels, verbose=0)[1]
    model.fit(features, labels, epochs=40, verbose=0)
    probabilities = model.predict(features, verbose=0)
    assert probabilities.shape == (len(data), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    after = (probabilities.argmax(axis=1) == labels).mean()
    assert after >= 0.95 and after > before


def test_model_builder_respects_hyperparameters(transformed, penguin_model):
    _, output = transformed
    small = penguin_model.build_model(output, {"units": 8, "layers": 1, "learning_rate": 0.01})
    large = penguin_model.build_model(output, {"units": 32, "layers": 2, "learning_rate": 0.01})
    dense = [layer for layer in large.layers if layer.__class__.__name__ == "Dense"]
    assert len(dense) == 3 and dense[0].units == 32
    assert small.count_params() < large.count_params()
