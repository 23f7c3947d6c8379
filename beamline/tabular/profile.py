"""What each column of a table holds: its kind, gaps, distinct values and spread (pure pandas)."""

from __future__ import annotations

from dataclasses import dataclass

INTEGER, NUMBER, STRING, BOOLEAN = "integer", "number", "string", "boolean"
_TRUE_FALSE = {"true", "false"}
# Most common values kept per column: enough to show a label's classes and a sample.
TOP_VALUES = 50


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    rows: int
    missing: int
    distinct: int
    kind: str  # INTEGER, NUMBER, STRING or BOOLEAN
    # The most common present values, most common first, with their counts.
    top: tuple[tuple[object, int], ...]
    mean: float | None = None
    std: float | None = None
    median: float | None = None
    # Mean absolute distance to the median: the MAE of always predicting the median.
    median_abs_dev: float | None = None
    # Integers that are a row number: all distinct and exactly min..max.
    consecutive: bool = False

    @property
    def present(self) -> int:
        return self.rows - self.missing


def profile_frame(frame) -> dict[str, ColumnProfile]:
    """A profile per column, in the table's column order."""
    return {str(name): profile_column(str(name), frame[name]) for name in frame.columns}


def profile_column(name: str, column) -> ColumnProfile:
    values = column.dropna()
    kind = _kind(values)
    counts = values.astype(str if kind == STRING else object).value_counts()
    top = tuple((_plain(v), int(c)) for v, c in counts.head(TOP_VALUES).items())
    mean = std = median = median_abs_dev = None
    consecutive = False
    if kind in (INTEGER, NUMBER) and len(values):
        numbers = values.astype(float)
        mean, std, median = float(numbers.mean()), float(numbers.std(ddof=0)), float(
            numbers.median()
        )
        median_abs_dev = float((numbers - median).abs().mean())
        if kind == INTEGER:
            consecutive = bool(
                len(counts) == len(values) > 1
                and numbers.max() - numbers.min() + 1 == len(values)
            )
    return ColumnProfile(
        name, int(len(column)), int(column.isna().sum()), int(len(counts)), kind, top,
        mean, std, median, median_abs_dev, consecutive,
    )


def _kind(values) -> str:
    if values.dtype.kind == "b" or (
        values.dtype.kind == "O" and len(values)
        and {str(v).lower() for v in values.unique()} <= _TRUE_FALSE
    ):
        return BOOLEAN
    if values.dtype.name == "Int64" or values.dtype.kind in "iu":
        return INTEGER
    if values.dtype.kind == "f":
        return NUMBER
    return STRING


def _plain(value):
    """numpy scalars as Python ones (they are written into generated source)."""
    return value.item() if hasattr(value, "item") else value
