"""Column type inference over the present cells: tfx_bsl's rules, at a fraction of the cost.

tfx_bsl's ColumnTypeInferrer tries `int()` then `float()` on every cell of every row (~18 us a
taxi row, the second most expensive step of ExampleGen once examples are serialized by hand).
The type of a cell depends only on its text, and a column already at STRING (the top of
INT < FLOAT < STRING) cannot change, so this subclass skips such columns and remembers the type
of each distinct cell text it has seen. Merging and output are tfx_bsl's own.
"""

from __future__ import annotations

from tfx_bsl.coders import csv_decoder

from beamline.data import cell_types

ColumnType = csv_decoder.ColumnType
_CACHE_MAX = 100_000
_AS_COLUMN_TYPE = {
    None: ColumnType.UNKNOWN,
    cell_types.INT: ColumnType.INT,
    cell_types.FLOAT: ColumnType.FLOAT,
    cell_types.STRING: ColumnType.STRING,
}


def value_type(value: str) -> ColumnType:
    """tfx_bsl's rule (beamline.data.cell_types): empty UNKNOWN; an int64 INT; a longer integer
    STRING; a float FLOAT."""
    return _AS_COLUMN_TYPE[cell_types.cell_type(value)]


class ColumnTypes(csv_decoder.ColumnTypeInferrer):
    """csv_decoder.ColumnTypeInferrer for single-valued columns and skipped blank lines."""

    def __init__(self, column_names: list[str]) -> None:
        super().__init__(column_names, skip_blank_lines=True)
        self._seen: dict[str, ColumnType] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_seen": {}}  # workers start with an empty memo

    def add_input(self, accumulator, cells):
        if not cells:
            return accumulator
        names = self._column_names
        if len(cells) != len(names):
            raise ValueError(f"Columns do not match specified csv headers: {names} -> {cells}")
        seen = self._seen
        for name, cell in zip(names, cells, strict=True):
            previous = accumulator.get(name)
            if previous == ColumnType.STRING:
                continue
            current = seen.get(cell)
            if current is None:
                current = value_type(cell)
                if len(seen) < _CACHE_MAX:
                    seen[cell] = current
            if previous is None or current > previous:
                accumulator[name] = current
        return accumulator
