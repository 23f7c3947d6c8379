"""`beamline schema infer`: a first schemas/<name>/schema.pbtxt from data, ready to curate.

TFDV infers types, presence and string domains from the data's statistics. Beamline then makes
the schema one its pipelines can enforce: types as Beamline's ExampleGens produce them (a CSV
column whose values are all whole numbers is INT, cells such as "NA" are missing values), every
feature one value when present, the label required (presence 1.0) with its domain and absent in
SERVING, and TRAINING and SERVING as the default environments.
"""

from __future__ import annotations

from pathlib import Path

from beamline.data.files import resolve_data
from beamline.errors import ConfigError, DataError
from beamline.tabular.frame import read_frame
from beamline.tabular.schema import curated_schema, schema_text

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
    frame = read_frame(data.files, data.format)
    if label not in frame.columns:
        where = data.files[0] if len(data.files) == 1 else data.root
        raise DataError(
            f"--label {label!r} is not a column of {where} (columns: "
            f"{', '.join(frame.columns)}). Name the column the model predicts."
        )
    text = HEADER.format(name=name, data=data_path, label=label) + schema_text(
        curated_schema(frame, label)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
