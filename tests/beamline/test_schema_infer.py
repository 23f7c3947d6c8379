"""`beamline schema infer`: TFDV's inferred schema, made enforceable for the label it is told."""

from __future__ import annotations

import subprocess
import sys

import pytest

from beamline.errors import ConfigError, DataError
from beamline.registry import package_path

PENGUINS = package_path("palmerpenguins", "data", "penguins.csv")


@pytest.fixture(scope="module")
def inferred(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "penguin" / "schema.pbtxt"
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "schema", "infer", "--data", str(PENGUINS),
         "--label", "species", "--pipeline", "penguin", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    import tensorflow_data_validation as tfdv

    return out, tfdv.load_schema_text(str(out))


def test_label_is_required_in_training_absent_in_serving(inferred):
    _, schema = inferred
    [species] = [f for f in schema.feature if f.name == "species"]
    assert list(species.not_in_environment) == ["SERVING"]
    assert species.presence.min_fraction == 1.0
    [domain] = [d for d in schema.string_domain if d.name == species.domain]
    assert list(domain.value) == ["Adelie", "Chinstrap", "Gentoo"]
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]


def test_types_are_what_beamlines_example_gen_produces(inferred):
    from tensorflow_metadata.proto.v0 import schema_pb2

    _, schema = inferred
    types = {f.name: f.type for f in schema.feature}
    assert types["body_mass_g"] == types["year"] == schema_pb2.INT  # "NA" cells are missing
    assert types["bill_length_mm"] == schema_pb2.FLOAT
    assert types["island"] == schema_pb2.BYTES
    # Measurements with real missing values are not required to be present.
    [mass] = [f for f in schema.feature if f.name == "body_mass_g"]
    assert mass.presence.min_fraction < 1.0


def test_an_existing_schema_is_never_overwritten_without_force(inferred):
    from beamline.schema_infer import infer

    out, _ = inferred
    before = out.read_text()
    with pytest.raises(ConfigError, match="already exists, so nothing was written"):
        infer(PENGUINS, "penguin", "species", out)
    assert out.read_text() == before


def test_unknown_label_names_the_columns(tmp_path):
    from beamline.schema_infer import infer

    with pytest.raises(DataError, match="--label 'kind' is not a column") as err:
        infer(PENGUINS, "penguin", "kind", tmp_path / "schema.pbtxt")
    assert "species, island" in str(err.value)
    assert not (tmp_path / "schema.pbtxt").exists()
