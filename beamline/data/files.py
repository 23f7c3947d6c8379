"""A pipeline's data files, found and checked before any Beam work (pure filesystem, no TFX).

Three formats, each read by the matching TFX ExampleGen: CSV (with a header row), TFRecord
files of tf.Example (`*.tfrecord`, `*.tfrecords`, `*.gz`: ImportExampleGen) and Parquet
(`*.parquet`: FileBasedExampleGen with TFX's Parquet executor).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError, DataError

CSV, TFRECORD, PARQUET = "csv", "tfrecord", "parquet"
# A first-row cell like this (1, -2.5, .5, 3e-2) is data, not a column name: the file lacks its
# header row (docs/guides/data.md).
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
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
    # TFX spans (beamline/data/spans.py): the span ExampleGen reads through its RangeConfig
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
    """Every file has a header row (no cell of it a number) and a data row, and all share one
    header."""
    headers = {}
    for f in files:
        header = _header(f)
        if not header:
            raise DataError(
                f"CSV file {f} is empty or has no header row. Every input CSV needs a first "
                "row naming its columns, followed by data rows; fix or remove the file."
            )
        numbers = [cell for cell in header if _NUMBER.fullmatch(cell)]
        if numbers:
            raise DataError(
                f"CSV file {f} has no header row: its first row ({', '.join(header[:6])}"
                f"{', ...' if len(header) > 6 else ''}) holds numbers ({', '.join(numbers[:3])}),"
                " so it looks like data, and a number is not a column name. Add a first row "
                "naming the columns (e.g. weight,height,label), or rename a column whose name "
                "is a number (2019 -> y2019)."
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


# Files that are never a pipeline's input (nor its source): hidden files, Beamline's own run
# roots, Python's caches.
_IGNORED_PARTS = (".", "beamline_runs", "__pycache__")


def is_ignored(relative: Path) -> bool:
    """True when a path (relative to the directory searched) is one of the _IGNORED_PARTS."""
    return any(part.startswith(_IGNORED_PARTS) for part in relative.parts)


def stock_input(path: Path, span: int | None = None, span_range=None) -> DataInput:
    """A stock TFX pipeline's input: CSVs are checked as Beamline's own pipelines' are; any
    other files (TFRecord, Parquet, ...) are taken as they are, for the fast cache's
    fingerprint."""
    if span is not None or span_range is not None:
        raise ConfigError(
            "--span and --span-range select spans for Beamline's own ExampleGen; a stock TFX "
            "pipeline configures its ExampleGen's input itself. Drop the option."
        )
    path = path.expanduser().resolve()
    if path.is_file() and path.suffix == ".csv" or path.is_dir() and any(path.glob("*.csv")):
        return resolve_data(path)
    if path.is_file():
        return DataInput(path.parent, path.name, (path,))
    files = tuple(sorted(
        p for p in path.rglob("*") if p.is_file() and not is_ignored(p.relative_to(path))
    )) if path.is_dir() else ()
    if not files:
        raise DataError(
            f"Data path {path} holds no files. Pass --data with the directory the pipeline's "
            "ExampleGen reads."
        )
    return DataInput(path, "*", files)
