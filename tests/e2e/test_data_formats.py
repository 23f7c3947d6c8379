"""Penguin from TFRecord (tf.Example) and from Parquet copies of its shipped CSV: the same schema,
TFX's own ExampleGen for each format, a blessed push. One run per format, shared by the tests."""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from beamline.registry import package_path
from tests.e2e.conftest import CliRun, beamline, started

pytestmark = pytest.mark.slow

# The penguin schema's types (schemas/penguin/schema.pbtxt); an "NA" cell is a missing value.
FLOATS = ("bill_length_mm", "bill_depth_mm")
INTS = ("flipper_length_mm", "body_mass_g", "year")


def _rows() -> list[dict[str, object]]:
    with package_path("palmerpenguins", "data", "penguins.csv").open(newline="") as f:
        rows = []
        for raw in csv.DictReader(f):
            row: dict[str, object] = {}
            for key, value in raw.items():
                if value in ("", "NA"):
                    row[key] = None
                elif key in FLOATS:
                    row[key] = float(value)
                elif key in INTS:
                    row[key] = int(value)
                else:
                    row[key] = value
            rows.append(row)
    return rows


def write_tfrecord(rows: list[dict[str, object]], out: Path) -> None:
    import tensorflow as tf

    out.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(out)) as writer:
        for row in rows:
            feature = {}
            for key, value in row.items():
                if value is None:
                    continue  # a missing value is an absent feature
                if isinstance(value, float):
                    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                elif isinstance(value, int):
                    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
                else:
                    feature[key] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[value.encode()])
                    )
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def write_parquet(rows: list[dict[str, object]], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {**{k: pa.float64() for k in FLOATS}, **{k: pa.int64() for k in INTS}}
    columns = {
        key: pa.array([r[key] for r in rows], type=types.get(key, pa.string())) for key in rows[0]
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), out)


@dataclass
class FormatRun:
    root: Path
    run: CliRun


@pytest.fixture(scope="session")
def format_runs(tmp_path_factory) -> dict[str, FormatRun]:
    base = tmp_path_factory.mktemp("formats")
    rows = _rows()
    write_tfrecord(rows, base / "tfrecord" / "penguins.tfrecord")
    write_parquet(rows, base / "parquet" / "penguins.parquet")
    # The two runs share nothing (data, root): started together, they overlap on two cores.
    with contextlib.ExitStack() as stack:
        background = {
            fmt: stack.enter_context(started(
                base / f"root-{fmt}", "run", "penguin", "--data", str(base / fmt), "--no-tune"
            ))
            for fmt in ("tfrecord", "parquet")
        }
        return {fmt: FormatRun(run.root, run.result()) for fmt, run in background.items()}


@pytest.mark.parametrize(
    ("fmt", "example_gen", "kind"),
    [("tfrecord", "ImportExampleGen", "TFRecord"), ("parquet", "ParquetExampleGen", "Parquet")],
)
def test_penguin_runs_from_the_format_with_its_example_gen(format_runs, fmt, example_gen, kind):
    out = format_runs[fmt].run.stdout
    assert f"on 1 {kind} file(s)" in out
    assert f"✓ {example_gen}" in out
    # The curated schema held: the validator passed and the model was blessed and pushed.
    assert "✓ ExampleValidator" in out
    assert "model blessed: yes" in out and "pushed: version" in out


def test_the_fast_cache_replays_a_parquet_rerun(format_runs):
    fmt = format_runs["parquet"]
    again = beamline(
        "run", "penguin", "--data", str(fmt.root.parent / "parquet"), "--no-tune",
        "--root", str(fmt.root),
    )
    assert again.returncode == 0, again.stderr
    assert "every node is reused from the cache" in again.stdout
