"""Data quality of logged requests: each request row checked against the schema, row by row.

Schema violations are not drift: a client that sends grams as kilograms, an island the model
never heard of, or a missing required input is a bug to fix at the client, and retraining cannot
fix it. So violations get their own verdict, `data quality`, decided by the *fraction* of rows
that violate the schema (one bad row among 300 is reported, not acted on), with example rows to
show the client team. The distribution checks (skew, drift) then look at the valid rows only, so
bad requests never pass for drift.

Kinds of violation (per row and feature):
- out of range: a number outside the schema's int_domain / float_domain;
- unknown category: a string outside the feature's string_domain;
- missing: a feature the schema requires (presence.min_fraction 1.0) in the SERVING environment
  and the model takes, absent from the row (or present with no value);
- extra: a feature the schema does not know, or one outside the SERVING environment (the label);
- wrong type: strings for a numeric feature, fractional numbers for an INT feature, numbers for
  a BYTES feature, or more values than the schema's value_count allows.
Pure Python over the schema proto: no TFDV, no Beam.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Share of request rows that may violate the schema before the window's verdict is
# `data quality`. 2%: one stray row in a few hundred is reported but does not decide.
DEFAULT_MAX_INVALID_FRACTION = 0.02
MAX_EXAMPLES = 5

OUT_OF_RANGE = "out of range"
UNKNOWN_CATEGORY = "unknown category"
MISSING = "missing"
EXTRA = "extra"
WRONG_TYPE = "wrong type"


@dataclass
class Violation:
    feature: str
    kind: str
    detail: str


@dataclass
class QualityResult:
    """The window's schema violations, counted per row."""

    rows: int
    invalid_rows: int
    max_fraction: float
    by_kind: dict[str, int] = field(default_factory=dict)  # kind -> rows with it
    by_feature: dict[str, int] = field(default_factory=dict)  # feature -> rows with a violation
    examples: list[dict[str, Any]] = field(default_factory=list)
    # Inputs of the model's serving signature that no logged request ever carried.
    never_sent: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.invalid_rows / self.rows if self.rows else 0.0

    @property
    def crossed(self) -> bool:
        return self.fraction > self.max_fraction

    def summary(self) -> str:
        """One line: "12 of 300 request rows (4.0%) violate the schema: ..." ."""
        if not self.invalid_rows:
            return f"all {self.rows} request rows match the schema"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        features = ", ".join(
            f"{f} {n}" for f, n in sorted(self.by_feature.items(), key=lambda kv: -kv[1])
        )
        return (
            f"{self.invalid_rows} of {self.rows} request rows ({self.fraction:.1%}) violate the "
            f"schema (limit {self.max_fraction:.1%}): {kinds}; by feature: {features}"
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fraction"] = self.fraction
        data["crossed"] = self.crossed
        return data


def _string_domain(feature, schema) -> set[bytes] | None:
    if feature.HasField("string_domain"):
        return {v.encode() for v in feature.string_domain.value}
    if feature.HasField("domain"):
        for domain in schema.string_domain:
            if domain.name == feature.domain:
                return {v.encode() for v in domain.value}
    return None


@dataclass(frozen=True)
class _Rule:
    name: str
    kind: str  # "bytes" | "int" | "float"
    low: float | None
    high: float | None
    categories: frozenset[bytes] | None
    max_values: int | None
    required: bool


def _rules(schema, environment_of) -> tuple[dict[str, _Rule], set[str]]:
    """(serving feature -> rule, names of schema features outside SERVING)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    rules: dict[str, _Rule] = {}
    outside: set[str] = set()
    for feature in schema.feature:
        if not environment_of(feature):
            outside.add(feature.name)
            continue
        kind = {schema_pb2.BYTES: "bytes", schema_pb2.INT: "int", schema_pb2.FLOAT: "float"}.get(
            feature.type, "any"
        )
        low = high = None
        if feature.HasField("int_domain"):
            d = feature.int_domain
            low = d.min if d.HasField("min") else None
            high = d.max if d.HasField("max") else None
        elif feature.HasField("float_domain"):
            d = feature.float_domain
            low = d.min if d.HasField("min") else None
            high = d.max if d.HasField("max") else None
        categories = _string_domain(feature, schema) if kind == "bytes" else None
        max_values = (
            feature.value_count.max
            if feature.HasField("value_count") and feature.value_count.max
            else None
        )
        rules[feature.name] = _Rule(
            feature.name,
            kind,
            low,
            high,
            frozenset(categories) if categories is not None else None,
            max_values,
            feature.presence.min_fraction >= 1.0,
        )
    return rules, outside


def _value_violation(rule: _Rule, value) -> Violation | None:
    if isinstance(value, bytes):
        if rule.kind in ("int", "float"):
            return Violation(rule.name, WRONG_TYPE, f"string {value[:40]!r} for a number")
        if rule.categories is not None and value not in rule.categories:
            text = value.decode("utf-8", "replace")[:40]
            return Violation(rule.name, UNKNOWN_CATEGORY, f"{text!r} is not in the domain")
        return None
    if rule.kind == "bytes":
        return Violation(rule.name, WRONG_TYPE, f"number {value!r} for a string")
    if isinstance(value, float) and math.isnan(value):
        return Violation(rule.name, OUT_OF_RANGE, "NaN")
    if rule.kind == "int" and isinstance(value, float) and not value.is_integer():
        return Violation(rule.name, WRONG_TYPE, f"{value!r} is not an integer")
    if rule.low is not None and value < rule.low:
        return Violation(rule.name, OUT_OF_RANGE, f"{value:g} < min {rule.low:g}")
    if rule.high is not None and value > rule.high:
        return Violation(rule.name, OUT_OF_RANGE, f"{value:g} > max {rule.high:g}")
    return None


def row_violations(
    row: dict[str, list], rules: dict[str, _Rule], outside: set[str], required: set[str]
) -> list[Violation]:
    """Every violation of one request row (at most one per feature)."""
    found: list[Violation] = []
    for name, values in row.items():
        rule = rules.get(name)
        if rule is None:
            why = "not in the SERVING environment" if name in outside else "not in the schema"
            found.append(Violation(name, EXTRA, why))
            continue
        if not values:
            if name in required:
                found.append(Violation(name, MISSING, "present with no value"))
            continue
        if rule.max_values is not None and len(values) > rule.max_values:
            found.append(
                Violation(name, WRONG_TYPE, f"{len(values)} values, the schema allows "
                          f"{rule.max_values}")
            )
            continue
        for value in values:
            violation = _value_violation(rule, value)
            if violation is not None:
                found.append(violation)
                break
    for name in sorted(required - set(row)):
        found.append(Violation(name, MISSING, "absent"))
    return found


def _printable(row: dict[str, list]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in row.items():
        plain = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
        out[name] = plain[0] if len(plain) == 1 else plain
    return out


def check_rows(
    rows: list[dict[str, list]],
    stamps: list[int],
    schema,
    environment_of,
    model_inputs: set[str] | None,
    inputs_sent: set[str],
    max_fraction: float = DEFAULT_MAX_INVALID_FRACTION,
) -> tuple[QualityResult, list[bool]]:
    """The window's QualityResult and, per row, whether it is valid.

    `environment_of(feature)`: is the schema feature in the SERVING environment. `model_inputs`:
    the inputs of the model's serving signature (None when unknown: then the features sent at
    least once stand for them)."""
    rules, outside = _rules(schema, environment_of)
    takes = model_inputs if model_inputs is not None else inputs_sent
    required = {n for n, r in rules.items() if r.required and n in takes}
    result = QualityResult(rows=len(rows), invalid_rows=0, max_fraction=max_fraction)
    if model_inputs is not None:
        result.never_sent = sorted(n for n in model_inputs - inputs_sent if n in rules)
    valid: list[bool] = []
    for i, row in enumerate(rows):
        violations = row_violations(row, rules, outside, required)
        valid.append(not violations)
        if not violations:
            continue
        result.invalid_rows += 1
        for kind in {v.kind for v in violations}:
            result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
        for feature in {v.feature for v in violations}:
            result.by_feature[feature] = result.by_feature.get(feature, 0) + 1
        if len(result.examples) < MAX_EXAMPLES:
            result.examples.append(
                {
                    "request_secs": stamps[i] if i < len(stamps) else None,
                    "row": _printable(row),
                    "violations": [asdict(v) for v in violations],
                }
            )
    return result, valid


def serving_inputs(saved_model_dir: str, signature: str = "serving_default") -> set[str] | None:
    """Input names of a SavedModel's signature, read from saved_model.pb (no TF runtime); None
    when the file or signature is not there (or its only input is serialized tf.Examples)."""
    import os

    path = os.path.join(saved_model_dir, "saved_model.pb")
    from google.protobuf.message import DecodeError

    from beamline.monitor.log_messages import SAVED_MODEL, messages

    try:
        with open(path, "rb") as handle:
            saved = messages()[SAVED_MODEL].FromString(handle.read())
    except (OSError, DecodeError):
        return None
    for meta_graph in saved.meta_graphs:
        if signature in meta_graph.signature_def:
            names = set(meta_graph.signature_def[signature].inputs)
            return None if names <= {"examples", "inputs", "input_example_tensor"} else names
    return None
