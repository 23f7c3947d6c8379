"""`beamline schema infer`: a first schemas/<name>/schema.pbtxt from data, ready to curate.

TFDV infers types, presence and string domains from the data's statistics. Beamline then makes
the schema one its pipelines can enforce: types as Beamline's ExampleGens produce them (a CSV
column whose values are all whole numbers is INT, cells such as "NA" are missing values), every
feature one value when present, the label required (presence 1.0) with its domain and absent in
SERVING, and TRAINING and SERVING as the default environments.
"""

from __future__ import annotations

from pathlib import Path

from beamline.errors import ConfigError, DataError
from beamline.runner.preflight import CSV, PARQUET, TFRECORD, resolve_data
from beamline.settings import CSV_NULL_VALUES

SERVING, TRAINING = "SERVING", "TRAINING"
HEADER = (
    "# First schema for {name}, inferred by `beamline schema infer` from {data}.\n"
    "# Curate it: tighten domains and presence to what the data must satisfy.\n"
    "# `{label}` is the label: required in TRAINING, absent in SERVING.\n"
)


def infer(data_path: Path, name: str, label: str, out: Path, force: bool = False) -> Path:
    """Writes the schema inferred from `data_path` to `out` (atomically); returns `out`."""
    if out.exists() and not force:
        raise ConfigError(
            f"{out} already exists, so nothing was written: a curated schema is worth more than "
            "a fresh guess. Pass --force to replace it, or --out to write elsewhere."
        )
    data = resolve_data(data_path)
    frame = _frame(data)
    if label not in frame.columns:
        raise DataError(
            f"--label {label!r} is not a column of {data.root} (columns: "
            f"{', '.join(frame.columns)}). Name the column the model predicts."
        )
    schema = _schema(frame, label)
    from google.protobuf import text_format

    text = HEADER.format(name=name, data=data_path, label=label) + text_format.MessageToString(
        schema
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def _frame(data):
    """The data as a DataFrame, missing values as NA, whole-number columns as integers."""
    import pandas as pd

    if data.format == CSV:
        frames = [
            pd.read_csv(f, na_values=list(CSV_NULL_VALUES), keep_default_na=False)
            for f in data.files
        ]
    elif data.format == PARQUET:
        frames = [pd.read_parquet(f) for f in data.files]
    elif data.format == TFRECORD:
        frames = [_tfrecord_frame(f) for f in data.files]
    else:  # pragma: no cover - resolve_data knows no other format
        raise DataError(f"No reader for data format {data.format!r}.")
    return pd.concat(frames, ignore_index=True)


def _tfrecord_frame(path: Path):
    import pandas as pd
    import tensorflow as tf

    compression = "GZIP" if path.suffix == ".gz" else None
    rows = []
    for record in tf.data.TFRecordDataset(str(path), compression_type=compression):
        example = tf.train.Example.FromString(record.numpy())
        row = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            if values:
                value = values[0]
                row[key] = value.decode() if isinstance(value, bytes) else value
        rows.append(row)
    return pd.DataFrame(rows)


def _schema(frame, label: str):
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) and values.dtype.kind == "f" and (values == values.round()).all():
            frame[column] = frame[column].astype("Int64")
    stats = tfdv.generate_statistics_from_dataframe(frame)
    schema = tfdv.infer_schema(stats, infer_feature_shape=False)
    for feature in schema.feature:
        column = frame[feature.name]
        if column.dtype.name == "Int64" or column.dtype.kind in "iu":
            feature.type = schema_pb2.INT
            feature.ClearField("float_domain")
        feature.value_count.min = feature.value_count.max = 1
        if feature.name == label:
            feature.presence.min_fraction = 1.0
            feature.presence.min_count = 1
            feature.not_in_environment.append(SERVING)
            if feature.type == schema_pb2.BYTES and not feature.HasField("domain"):
                domain = schema.string_domain.add(name=feature.name)
                domain.value.extend(sorted(str(v) for v in column.dropna().unique()))
                feature.domain = feature.name
    schema.default_environment.extend([TRAINING, SERVING])
    return schema
