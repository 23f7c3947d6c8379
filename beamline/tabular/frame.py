"""A table on disk (CSV, Parquet or TFRecord of tf.Example) as one pandas DataFrame, typed as
Beamline's ExampleGens type it: missing cells are NA; in CSV, a column of whole numbers is an
integer column even when it has gaps (Parquet and TFRecord keep their stored types)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from beamline.data.cell_types import FLOAT, INT, cell_type
from beamline.data.files import CSV, PARQUET, TFRECORD
from beamline.errors import DataError
from beamline.settings import CSV_NULL_VALUES


def read_frame(files: Sequence[Path], data_format: str, null_values=CSV_NULL_VALUES):
    """The rows of `files` (one format, one set of columns), missing values as NA."""
    import pandas as pd

    if data_format == CSV:
        frames = [_read_csv(f, null_values) for f in files]
    elif data_format == PARQUET:
        frames = [pd.read_parquet(f) for f in files]
    elif data_format == TFRECORD:
        frames = [_tfrecord_frame(f) for f in files]
    else:  # pragma: no cover - resolve_data knows no other format
        raise DataError(f"No reader for data format {data_format!r}.")
    frame = pd.concat(frames, ignore_index=True)
    return _typed_as_example_gen(frame) if data_format == CSV else frame


def _typed_as_example_gen(frame):
    """Text cells to the column types the CSV ExampleGen infers from the same text: "127.0"
    makes a FLOAT column, "127" an INT one (pandas alone would read both as numbers)."""
    for column in frame.columns:
        present = frame[column].dropna()
        widest = max((cell_type(text) for text in present.unique()), default=None)
        if widest == INT:
            frame[column] = frame[column].astype("Int64")
        elif widest == FLOAT:
            frame[column] = frame[column].astype("float64")
    return frame


def _read_csv(path: Path, null_values):
    import pandas as pd

    try:
        # Text first, typed by the ExampleGen's rule; an empty cell is missing, as it reads it.
        return pd.read_csv(path, na_values=["", *null_values], keep_default_na=False,
                           dtype=str)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            f"CSV file {path} cannot be read as a table ({exc}). Check that it is UTF-8 text "
            "with one header row and the same number of cells in every row."
        ) from exc


def _tfrecord_frame(path: Path):
    import pandas as pd
    import tensorflow as tf

    compression = "GZIP" if path.suffix == ".gz" else None
    rows, int_columns = [], set()
    for record in tf.data.TFRecordDataset(str(path), compression_type=compression):
        example = tf.train.Example.FromString(record.numpy())
        row = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            if values:
                value = values[0]
                row[key] = value.decode() if isinstance(value, bytes) else value
            if kind == "int64_list":
                int_columns.add(key)
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in int_columns & set(frame.columns):  # gaps would make pandas read floats
        frame[column] = frame[column].astype("Int64")
    return frame
