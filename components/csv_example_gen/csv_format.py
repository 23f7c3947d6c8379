"""CSV records as spreadsheets and other real tools write them (pure Python, no TF or Beam).

Accepted: UTF-8 with or without a byte-order mark; LF or CRLF line endings; RFC 4180 quoting
(fields with commas, quotes or line breaks inside double quotes); blank lines anywhere (also
the trailing one), and rows whose every cell is empty, which carry no example. A cell that is
empty or holds a configured null token ("NA", ...) is a missing value.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

BOM = "\ufeff"


class CsvFormatError(ValueError):
    """A CSV file that cannot be read as a table; the message names the file and line."""


def _text_lines(lines: Iterable[bytes], source: str) -> Iterator[str]:
    """Decoded lines, line endings kept (as csv wants: newline=''), the BOM dropped."""
    for number, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CsvFormatError(
                f"{source} line {number} is not UTF-8 text ({exc.reason} at byte {exc.start}). "
                "Save the file as UTF-8 CSV (with or without byte-order mark)."
            ) from None
        yield line.removeprefix(BOM) if number == 1 else line


def records(lines: Iterable[bytes], source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, cells) of every non-blank record, header first."""
    reader = csv.reader(_text_lines(lines, source), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvFormatError(
                f"{source} line {reader.line_num}: {exc}. Quote fields that hold commas, quotes "
                'or line breaks ("a, b"), doubling quotes inside them ("say ""hi""").'
            ) from None
        if any(cell.strip() for cell in cells):
            yield start, cells
        start = reader.line_num + 1


def header(lines: Iterable[bytes], source: str) -> list[str]:
    """The column names (first non-blank record), surrounding spaces removed."""
    for _, cells in records(lines, source):
        return [cell.strip() for cell in cells]
    raise CsvFormatError(f"{source} is empty: it needs a header row naming its columns.")


def data_rows(
    lines: Iterable[bytes], source: str, width: int, null_values: frozenset[str]
) -> Iterator[list[str]]:
    """The cells of each data row (header skipped), missing values as ""."""
    rows = records(lines, source)
    next(rows, None)
    for number, cells in rows:
        if len(cells) != width:
            raise CsvFormatError(
                f"{source} line {number} has {len(cells)} cells but the header names {width} "
                "columns. Give every row one cell per column (empty for a missing value) and "
                "quote cells that contain commas."
            )
        # blank_if_missing, inlined: this runs for every cell of every row.
        yield [
            "" if not (stripped := cell.strip()) or stripped in null_values else cell
            for cell in cells
        ]


def blank_if_missing(cell: str, null_values: frozenset[str]) -> str:
    """"" for an empty cell or a null token, else the cell unchanged."""
    stripped = cell.strip()
    return "" if not stripped or stripped in null_values else cell
