"""The experiments table as text: a run per line, its trials and slices indented under it."""

from __future__ import annotations

from typing import Any

from beamline.experiments.table import RUN, SLICE, TRIAL, Row
from beamline.lineage.format import duration, number, printable, table
from beamline.metrics import higher_is_better

CHILD_INDENT = "  "


def cell(column: str, value: Any, child: bool = False) -> str:
    if value is None or value == [] or value == {}:
        return "" if child else "-"
    if column == "duration" and isinstance(value, int | float):
        return duration(value)
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, dict):
        return " ".join(f"{k}={number(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return number(value)


def _first_cell(row: Row) -> str:
    if row.kind == TRIAL:
        return f"{CHILD_INDENT}trial {row.get('trial')}" + (" (best)" if row.get("best") else "")
    if row.kind == SLICE:
        return f"{CHILD_INDENT}slice {row.get('slice')}"
    return str(row.get("run"))


def _line(row: Row, columns: list[str]) -> list[str]:
    child = row.kind != RUN
    cells = []
    for column in columns:
        if column == "run":
            cells.append(_first_cell(row))
        else:
            cells.append(cell(column, row.get(column), child))
    return cells


def render(rows: list[Row], columns: list[str]) -> str:
    """The table, then a line for each note a reader needs (metrics whose lower values are
    better; what a trial's score is)."""
    lines = []
    for row in rows:
        lines.append(_line(row, columns))
        lines.extend(_line(child, columns) for child in row.children)
    # Column names come from files and the store too (metrics, hyperparameters, overrides).
    text = table([printable(c) for c in columns], lines)
    metric_like = [
        c for c in columns
        if any(isinstance(r.get(c), float) for r in rows) and c not in ("duration", "score")
    ]
    lower = [c for c in metric_like if not higher_is_better(c.rsplit(".", 1)[-1])]
    notes = []
    if lower:
        notes.append(f"lower is better: {', '.join(lower)}")
    objectives = sorted({
        f"{r.search.objective} ({'higher' if r.search.direction == 'max' else 'lower'} is "
        "better)"
        for r in rows if r.search is not None and r.search.objective
    })
    if objectives and "score" in columns:
        notes.append(f"a trial's score: its best epoch's {', '.join(objectives)}")
    return text + "".join(f"\n({printable(note)})" for note in notes)
