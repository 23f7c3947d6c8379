"""The monitoring's TensorFlow-free statistics and validation (beamline.monitor.statistics)
against TFDV itself: the same statistics proto from the same rows, the same anomalies and
distances from the same statistics, on real penguin and taxi rows, a drifted window and rows
with missing, NaN, repeated and non-UTF-8 values."""

from __future__ import annotations

import csv
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format

from beamline import registry
from beamline.monitor.compare import compare, monitored_features
from beamline.monitor.statistics import generate_statistics, validate_statistics
from beamline.monitor.thresholds import with_comparators
from beamline.monitor.window import write_examples

MISSING = ("", "NA", "N/A", "NaN", "nan")


def _rows(pipeline: str, count: int, seed: int, shift: tuple[str, float] | None = None):
    """Request rows as the window reads them: the pipeline's serving inputs, typed as its
    SAMPLE_INSTANCE (strings as bytes), from its real data file."""
    module = registry.load_module(pipeline)
    sample = module.SAMPLE_INSTANCE
    root = Path(module.default_data_root())
    path = root if root.is_file() else sorted(root.glob("*.csv"))[0]
    with open(path, newline="") as f:
        records = list(csv.DictReader(f))
    random.Random(seed).shuffle(records)
    rows = []
    for record in records[:count]:
        row = {}
        for name, example in sample.items():
            text = record.get(name, "")
            if text in MISSING:
                continue  # absent from the request, as a client leaves it out
            if isinstance(example, str):
                row[name] = [text.encode()]
            elif isinstance(example, int):
                row[name] = [int(float(text))]
            else:
                row[name] = [float(text)]
        if shift and shift[0] in row:
            row[shift[0]] = [type(row[shift[0]][0])(row[shift[0]][0] + shift[1])]
        rows.append(row)
    return rows


def _tfdv_statistics(rows, tmp_path):
    import tensorflow_data_validation as tfdv

    path = tmp_path / f"rows-{len(list(tmp_path.iterdir()))}.tfrecord"
    write_examples(rows, path)
    return tfdv.generate_statistics_from_tfrecord(data_location=str(path))


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _assert_same(ours, theirs, where: str = "") -> None:
    """Field by field; floats to 1e-9 (TFDV combines means and variances batch by batch)."""
    assert set(f.name for f, _ in ours.ListFields()) == set(
        f.name for f, _ in theirs.ListFields()
    ), where
    for field, value in theirs.ListFields():
        mine = getattr(ours, field.name)
        here = f"{where}.{field.name}"
        if field.label == field.LABEL_REPEATED:
            assert len(mine) == len(value), here
            for i, (a, b) in enumerate(zip(mine, value, strict=True)):
                if field.message_type:
                    _assert_same(a, b, f"{here}[{i}]")
                else:
                    assert a == b or _close(a, b), here
        elif field.message_type:
            _assert_same(mine, value, here)
        elif isinstance(value, float):
            assert _close(mine, value), (here, mine, value)
        else:
            assert mine == value, (here, mine, value)


def _assert_same_statistics(ours, theirs) -> None:
    [dataset], [expected] = ours.datasets, theirs.datasets
    assert dataset.num_examples == expected.num_examples
    mine = {f.path.step[0]: f for f in dataset.features}
    found = {f.path.step[0]: f for f in expected.features}
    assert set(mine) == set(found)
    for name, feature in found.items():
        _assert_same(mine[name], feature, name)


@pytest.mark.parametrize("pipeline", ["penguin", "taxi"])
def test_window_statistics_are_tfdvs(tmp_path, pipeline):
    normal = _rows(pipeline, 150, seed=0)
    _assert_same_statistics(generate_statistics(normal), _tfdv_statistics(normal, tmp_path))


def test_unusual_rows_get_tfdvs_statistics(tmp_path):
    rows = [
        {"x": [1.5, float("nan")], "n": [3, 3, 0], "s": [b"a", b"b", b"a"]},
        {"x": [float("nan")], "s": [b"\xff\xfe", b"a"]},
        {"n": [-2], "s": [b"zz"], "inf": [float("inf"), 2.0]},
        {"x": [0.0, -4.25, 1e30], "n": [7], "inf": [float("-inf")]},
        {"only_nan": [float("nan")], "s": [b"b"], "n": [], "never_a_value": []},
    ]
    _assert_same_statistics(generate_statistics(rows), _tfdv_statistics(rows, tmp_path))


def test_many_distinct_strings_keep_tfdvs_ranking(tmp_path):
    words = [f"w{i % 37:03d}".encode() for i in range(2000)] + [b"w999"] * 40
    rows = [{"word": [w], "value": [i % 11]} for i, w in enumerate(words)]
    _assert_same_statistics(generate_statistics(rows), _tfdv_statistics(rows, tmp_path))


@pytest.mark.parametrize(("pipeline", "shift"), [
    ("penguin", ("body_mass_g", 700)), ("taxi", ("fare", 25.0)),
])
def test_skew_drift_and_schema_findings_are_tfdvs(tmp_path, pipeline, shift):
    """The three validations of a monitored window (skew against training, drift against the
    previous window, schema in SERVING), each run by TFDV on its own statistics and by us on
    ours: the same Anomalies, distances included, for a normal and a drifted window; and the
    same report from beamline.monitor.compare."""
    import tensorflow_data_validation as tfdv

    train_stats = _tfdv_statistics(_rows(pipeline, 1000, seed=1), tmp_path)
    schema = tfdv.infer_schema(train_stats)
    schema.default_environment.extend(["TRAINING", "SERVING"])
    features = [f.name for f in schema.feature]
    skew = with_comparators(schema, features, "skew", {})
    drift = with_comparators(schema, features, "drift", {})
    previous = _rows(pipeline, 150, seed=2)
    previous_stats = {"ours": generate_statistics(previous),
                      "tfdv": _tfdv_statistics(previous, tmp_path)}
    drifted = _rows(pipeline, 150, seed=3, shift=shift)
    drifted.append({**drifted[0], "unknown_input": [b"x"]})
    crossed = set()
    for window in (_rows(pipeline, 150, seed=4), drifted):
        stats = {"ours": generate_statistics(window), "tfdv": _tfdv_statistics(window, tmp_path)}
        found = {}
        for who, validate in (("ours", validate_statistics), ("tfdv", tfdv.validate_statistics)):
            found[who] = [
                validate(train_stats, skew, serving_statistics=stats[who]),
                validate(stats[who], drift, previous_statistics=previous_stats[who]),
                validate(stats[who], schema, environment="SERVING"),
            ]
        for ours, theirs in zip(found["ours"], found["tfdv"], strict=True):
            assert text_format.MessageToString(ours) == text_format.MessageToString(theirs)
            crossed |= set(ours.anomaly_info)
        monitored = monitored_features(schema, {name for row in window for name in row})
        reports = [
            [r.to_json() for r in compare(train_stats, stats[who], previous_stats[who], schema,
                                          monitored, {})]
            for who in ("ours", "tfdv")
        ]
        assert reports[0] == reports[1]
    # The comparisons had something to find: the shifted feature and the unknown input.
    assert {shift[0], "unknown_input"} <= crossed
    assert shift[0] in [r["feature"] for r in reports[0] if r["crossed"]]


def test_the_statistics_and_validation_import_no_tensorflow():
    code = (
        "import sys\n"
        "from tensorflow_metadata.proto.v0 import schema_pb2\n"
        "from beamline.monitor.statistics import generate_statistics, validate_statistics\n"
        "stats = generate_statistics([{'a': [1.0]}, {'a': [2.0], 'b': [b'x']}])\n"
        "schema = schema_pb2.Schema()\n"
        "schema.feature.add(name='a', type=schema_pb2.FLOAT)\n"
        "anomalies = validate_statistics(stats, schema)\n"
        "assert 'b' in anomalies.anomaly_info, anomalies\n"
        "heavy = [m for m in ('tensorflow', 'apache_beam', 'tensorflow_data_validation')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
