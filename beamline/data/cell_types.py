"""The type a CSV cell's text gives its column, by tfx_bsl's rule (what Beamline's CSV ExampleGen
infers, and what `init` and `schema infer` must agree with): an int64 is INT, a longer integer
STRING, any other number FLOAT, anything else STRING; a column takes the widest type of its
present cells (INT < FLOAT < STRING)."""

from __future__ import annotations

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT, FLOAT, STRING = 1, 2, 3  # ordered: a column is the widest of its cells


def cell_type(text: str) -> int | None:
    """INT, FLOAT or STRING for a cell's text; None for an empty (missing) cell."""
    if not text:
        return None
    try:
        return INT if INT64_MIN <= int(text) <= INT64_MAX else STRING
    except ValueError:
        try:
            float(text)
        except ValueError:
            return STRING
        return FLOAT
