"""Checks the input data before any Beam work starts (pure filesystem checks, no TFX).

Three formats, each read by the matching TFX ExampleGen: CSV (with a header row), TFRecord
files of tf.Example (`*.tfrecord`, `*.tfrecords`, `*.gz`: ImportExampleGen) and Parquet
(`*.parquet`: FileBasedExampleGen with TFX's Parquet executor).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import DataError

CSV, TFRECORD, PARQUET = "csv", "tfrecord", "parquet"
# File name patterns of each format, in the order a data directory is tried.
FORMAT_PATTERNS = {
    CSV: ("*.csv",),
    PARQUET: ("*.parquet",),
    TFRECORD: ("*.tfrecord", "*.tfrecords", "*.tfrecord.gz", "*.gz"),
}


def format_of(path: Path) -> str | None:
    """The data format a file name says, or None."""
    for fmt, patterns in FORMAT_PATTERNS.items():
        if any(path.match(p) for p in patterns):
            return fmt
    return None


@dataclass(frozen=True)
class DataInput:
    """Where ExampleGen reads: a directory, a glob inside it, the matching files."""

    root: Path
    pattern: str
    files: tuple[Path, ...]
    # TFX spans (beamline/runner/spans.py): the span ExampleGen reads through its RangeConfig
    # (None: no span pattern), and the earlier spans of a --span-range read alongside it.
    span: int | None = None
    extra_spans: tuple[tuple[int, str], ...] = ()
    span_label: str = ""
    format: str = CSV

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def resolve_data(path: Path) -> DataInput:
    """A data file or a directory of data files (CSV, TFRecord or Parquet), checked: exists,
    non-empty, CSVs have a header row."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise DataError(
            f"Data path {path} does not exist. Pass --data with a directory of CSV files (or one "
            "CSV file) whose first row names the columns, or of TFRecord (tf.Example) or "
            "Parquet files."
        )
    if path.is_file():
        fmt = format_of(path) or CSV
        data = DataInput(path.parent, path.name, (path,), format=fmt)
    else:
        data = None
        for fmt, patterns in FORMAT_PATTERNS.items():
            for pattern in patterns:
                files = tuple(sorted(p for p in path.glob(pattern) if p.is_file()))
                if files:
                    data = DataInput(path, pattern, files, format=fmt)
                    break
            if data is not None:
                break
        if data is None:
            raise DataError(
                f"Data directory {path} holds no *.csv, *.tfrecord(.gz) or *.parquet files. Put "
                "the pipeline's data files in it (CSV with a header row, TFRecord of "
                "tf.Example, or Parquet), or point --data at another directory."
            )
    check_files(data.files, data.format)
    return data


def check_files(files: tuple[Path, ...], fmt: str) -> None:
    """CSV: header and data rows, one header; other formats: no empty file."""
    if fmt == CSV:
        check_csv_files(files)
        return
    for f in files:
        if f.stat().st_size == 0:
            raise DataError(f"Data file {f} is empty. Remove it or replace it with the data.")
    if fmt == PARQUET:
        _check_parquet(files)


def _check_parquet(files: tuple[Path, ...]) -> None:
    import pyarrow.parquet as pq

    first = None
    for f in files:
        try:
            schema = pq.read_schema(f)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise DataError(
                f"Parquet file {f} cannot be read ({exc}). Replace it with a valid Parquet file."
            ) from exc
        names = sorted(schema.names)
        if first is None:
            first = (f, names)
        elif names != first[1]:
            raise DataError(
                f"Parquet files disagree on columns: {first[0]} has {first[1]} but {f} has "
                f"{names}. All files of one data directory must share one schema."
            )


def check_csv_files(files: tuple[Path, ...]) -> None:
    """Every file has a header row and a data row, and all share one header."""
    headers = {}
    for f in files:
        header = _header(f)
        if not header:
            raise DataError(
                f"CSV file {f} is empty or has no header row. Every input CSV needs a first "
                "row naming its columns, followed by data rows; fix or remove the file."
            )
        if not _has_data_row(f):
            raise DataError(
                f"CSV file {f} has a header but no data rows. Add rows or remove the file."
            )
        headers[f] = header
    first = files[0]
    for f, header in headers.items():
        if header != headers[first]:
            raise DataError(
                f"CSV files disagree on columns: {first} has {headers[first]} but {f} has "
                f"{header}. All files of one data directory must share one header."
            )


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        row = next(csv.reader(f), [])
    return [c.strip() for c in row if c.strip()]


def _has_data_row(path: Path) -> bool:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        next(reader, None)
        return any(any(cell.strip() for cell in row) for row in reader)
