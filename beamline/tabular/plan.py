"""How each feature column is prepared for the model, decided from its profile, with the reason
(the generated Transform module lists both, for the user to change)."""

from __future__ import annotations

from dataclasses import dataclass

from beamline.tabular.profile import BOOLEAN, INTEGER, NUMBER, STRING, ColumnProfile

NUMERIC, CATEGORICAL, DROPPED = "numeric", "categorical", "dropped"
# Integers with at most this many values are categories (codes), not quantities.
MAX_INTEGER_CATEGORIES = 10
# A text column is an id when nearly every row has its own value; below this many rows the
# evidence is too thin to drop a column.
MIN_ROWS_FOR_ID = 20
ID_SHARE = 0.95
# Vocabulary entries kept per categorical feature (the most frequent); rarer values share the
# out-of-vocabulary bucket.
MAX_VOCABULARY = 1000


@dataclass(frozen=True)
class FeaturePlan:
    name: str
    kind: str  # NUMERIC, CATEGORICAL or DROPPED
    reason: str


def plan_features(profiles: dict[str, ColumnProfile], label: str) -> list[FeaturePlan]:
    """One plan per column but the label, in the table's order."""
    return [_plan(p) for name, p in profiles.items() if name != label]


def _plan(p: ColumnProfile) -> FeaturePlan:
    if p.present == 0:
        return FeaturePlan(p.name, DROPPED, "every cell is missing")
    if p.distinct == 1:
        return FeaturePlan(p.name, DROPPED, f"the same value ({p.top[0][0]!r}) in every row")
    gaps = f"; {p.missing} missing filled" if p.missing else ""
    if p.kind == STRING:
        if p.present >= MIN_ROWS_FOR_ID and p.distinct >= ID_SHARE * p.present:
            return FeaturePlan(
                p.name, DROPPED,
                f"{p.distinct} distinct values in {p.present} rows: an id or free text, which "
                "cannot generalise to new rows",
            )
        return FeaturePlan(p.name, CATEGORICAL, f"text, {p.distinct} values{gaps}")
    if p.kind == BOOLEAN:
        return FeaturePlan(p.name, CATEGORICAL, f"true/false{gaps}")
    if p.kind == INTEGER and p.consecutive and p.present >= MIN_ROWS_FOR_ID:
        return FeaturePlan(
            p.name, DROPPED,
            "a row number (every value distinct, exactly its minimum to its maximum)",
        )
    if p.kind == INTEGER and p.distinct <= MAX_INTEGER_CATEGORIES:
        return FeaturePlan(p.name, CATEGORICAL, f"whole numbers with {p.distinct} values{gaps}")
    assert p.kind in (INTEGER, NUMBER)
    return FeaturePlan(p.name, NUMERIC, f"numbers, {p.distinct} values{gaps}")


def by_kind(plans: list[FeaturePlan], kind: str) -> tuple[str, ...]:
    return tuple(p.name for p in plans if p.kind == kind)
