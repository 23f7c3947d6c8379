"""Data quality of request rows: each row checked against the schema; a fraction decides."""

from __future__ import annotations

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from beamline.monitor.compare import in_environment
from beamline.monitor.quality import (
    EXTRA,
    MISSING,
    OUT_OF_RANGE,
    UNKNOWN_CATEGORY,
    WRONG_TYPE,
    check_rows,
)

SCHEMA = """
feature { name: "species" type: BYTES domain: "species" not_in_environment: "SERVING" }
feature { name: "island" type: BYTES domain: "island" presence { min_fraction: 1.0 }
          value_count { min: 1 max: 1 } }
feature { name: "mass" type: INT int_domain { min: 2000 max: 7000 }
          presence { min_fraction: 0.95 } }
feature { name: "bill" type: FLOAT float_domain { min: 20.0 max: 80.0 } }
feature { name: "year" type: INT presence { min_fraction: 1.0 } }
string_domain { name: "species" value: "A" value: "G" }
string_domain { name: "island" value: "Biscoe" value: "Dream" }
default_environment: "TRAINING"
default_environment: "SERVING"
"""


def _schema():
    return text_format.Parse(SCHEMA, schema_pb2.Schema())


def _check(rows, model_inputs=None, sent=None, max_fraction=0.02):
    schema = _schema()
    return check_rows(
        rows,
        list(range(100, 100 + len(rows))),
        schema,
        lambda f: in_environment(f, schema, "SERVING"),
        model_inputs,
        sent if sent is not None else {k for r in rows for k in r},
        max_fraction,
    )


def _good(mass=4000):
    return {"island": [b"Biscoe"], "mass": [mass], "bill": [40.5]}


def test_one_bad_row_in_300_is_reported_but_is_not_a_data_quality_verdict():
    rows = [_good() for _ in range(299)] + [_good(mass=99999)]
    quality, valid = _check(rows)
    assert quality.invalid_rows == 1 and not quality.crossed
    assert valid.count(False) == 1 and valid[-1] is False
    assert quality.by_kind == {OUT_OF_RANGE: 1}
    [example] = quality.examples
    assert example["request_secs"] == 399 and example["row"]["mass"] == 99999
    assert "99999 > max 7000" in example["violations"][0]["detail"]
    assert "1 of 300 request rows (0.3%)" in quality.summary()


def test_every_kind_of_violation_is_named_and_the_fraction_decides():
    rows = [
        {"island": [b"Atlantis"], "mass": [4000]},  # unknown category
        {"mass": [4000]},  # island required and absent
        {"island": [b"Dream"], "mass": [4000], "colour": [b"red"]},  # not in the schema
        {"island": [b"Dream"], "species": [b"A"]},  # the label, outside SERVING
        {"island": [b"Dream"], "mass": [b"heavy"]},  # a string for a number
        {"island": [b"Dream", b"Biscoe"]},  # two values, one allowed
        {"island": [b"Dream"], "mass": [4000.5]},  # not an integer
        {"island": [7]},  # a number for a string
        {"island": [b"Dream"], "bill": [10.0]},  # float below min
        _good(),
    ]
    quality, valid = _check(rows, max_fraction=0.5)
    assert valid == [False] * 9 + [True]
    assert quality.crossed and quality.fraction == 0.9
    assert quality.by_kind == {
        UNKNOWN_CATEGORY: 1, MISSING: 1, EXTRA: 2, WRONG_TYPE: 4, OUT_OF_RANGE: 1,
    }
    assert len(quality.examples) == 5  # capped


def test_features_the_model_takes_but_clients_never_send_are_reported():
    rows = [_good() for _ in range(10)]
    quality, valid = _check(rows, model_inputs={"island", "mass", "bill", "year"})
    # year is required and the model takes it: every row misses it, and it was never sent.
    assert quality.never_sent == ["year"]
    assert quality.invalid_rows == 10 and quality.by_kind == {MISSING: 10}
    quality, _ = _check(rows, model_inputs={"island", "mass", "bill"})
    assert quality.never_sent == [] and quality.invalid_rows == 0
