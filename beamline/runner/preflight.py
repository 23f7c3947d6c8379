"""Checks the input data before any Beam work starts (pure filesystem checks, no TFX)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import DataError


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

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def resolve_data(path: Path) -> DataInput:
    """A CSV file or a directory of CSV files, checked: exists, non-empty, has a header row."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise DataError(
            f"Data path {path} does not exist. Pass --data with a directory of CSV files (or one "
            "CSV file) whose first row names the columns."
        )
    if path.is_file():
        data = DataInput(path.parent, path.name, (path,))
    else:
        files = tuple(sorted(p for p in path.glob("*.csv") if p.is_file()))
        if not files:
            raise DataError(
                f"Data directory {path} holds no *.csv files. Put the pipeline's CSV files "
                "(with a header row) in it, or point --data at another directory."
            )
        data = DataInput(path, "*.csv", files)
    check_csv_files(data.files)
    return data


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
