"""Two served versions side by side from the request logs: `beamline monitor --compare A B`.

What a canary review asks of the traffic each version answered in a window: how many requests,
what share failed (any non-OK status after the request reached the version, from the outcome
files), how fast the OK ones were (p50/p99 of the server's own request latency), and what it
predicted (share of each predicted class, from the PredictionLog records). The candidate (B)
is judged against the baseline (A) by three checks, each with a threshold; no statistics job
runs, so a comparison costs seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.errors import DataError
from beamline.monitor.thresholds import DEFAULT_PREDICTION_L_INFINITY

DEFAULT_MAX_ERROR_RATE_INCREASE = 0.01
DEFAULT_MAX_P99_RATIO = 1.5
DEFAULT_MIN_REQUESTS = 20


@dataclass(frozen=True)
class CompareThresholds:
    max_error_rate_increase: float = DEFAULT_MAX_ERROR_RATE_INCREASE
    max_p99_ratio: float = DEFAULT_MAX_P99_RATIO
    max_prediction_distance: float = DEFAULT_PREDICTION_L_INFINITY  # as monitor's
    min_requests: int = DEFAULT_MIN_REQUESTS


@dataclass
class Side:
    """One version's traffic in the window."""

    name: str  # what the user asked for: a label or a version number
    version: int
    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p99_ms: float | None = None
    predictions: dict[str, float] = field(default_factory=dict)  # class -> share
    predicted_rows: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class Check:
    name: str
    value: float
    threshold: float

    @property
    def crossed(self) -> bool:
        return self.value > self.threshold


@dataclass
class Comparison:
    pipeline: str
    model_name: str
    baseline: Side
    candidate: Side
    checks: list[Check]

    @property
    def crossed(self) -> list[str]:
        return [c.name for c in self.checks if c.crossed]

    def to_json(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {**asdict(s), "error_rate": s.error_rate}

        return {
            "pipeline": self.pipeline,
            "model_name": self.model_name,
            "baseline": side(self.baseline),
            "candidate": side(self.candidate),
            "checks": [{**asdict(c), "crossed": c.crossed} for c in self.checks],
            "crossed": self.crossed,
        }


def percentile(values: list[int], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least the first
    return float(ordered[int(rank) - 1])


def class_shares(predicted: list[str]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for label in predicted:
        counts[label] = counts.get(label, 0) + 1
    total = len(predicted)
    return {k: counts[k] / total for k in sorted(counts)} if total else {}


def l_infinity(a: dict[str, float], b: dict[str, float]) -> float:
    return max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)), default=0.0)


def side_of(name: str, version: int, outcomes: list, predicted: list[str]) -> Side:
    """A version's side from its outcome records and its logged predicted classes."""
    side = Side(name, version, requests=len(outcomes))
    latencies = []
    for outcome in outcomes:
        side.statuses[outcome.status] = side.statuses.get(outcome.status, 0) + 1
        if outcome.ok:
            latencies.append(outcome.latency_us)
        else:
            side.errors += 1
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    side.p50_ms = None if p50 is None else p50 / 1000
    side.p99_ms = None if p99 is None else p99 / 1000
    side.predictions = class_shares(predicted)
    side.predicted_rows = len(predicted)
    return side


def compare_sides(
    pipeline: str, model_name: str, baseline: Side, candidate: Side, limits: CompareThresholds
) -> Comparison:
    """The checks of candidate against baseline; refuses a side with too little traffic."""
    for side in (baseline, candidate):
        if side.requests < limits.min_requests:
            raise DataError(
                f"{side.name} (version {side.version} of {model_name}) answered "
                f"{side.requests} request(s) in the window, fewer than the "
                f"{limits.min_requests} a comparison needs (--min-requests). Widen "
                "--since/--until, send more traffic to it (serve --canary_percent), or check "
                "that the server logs requests (--request_log_dir) to the --requests directory."
            )
    checks = [
        Check(
            "error_rate_increase",
            candidate.error_rate - baseline.error_rate,
            limits.max_error_rate_increase,
        )
    ]
    if baseline.p99_ms and candidate.p99_ms is not None:
        checks.append(Check("p99_ratio", candidate.p99_ms / baseline.p99_ms, limits.max_p99_ratio))
    if baseline.predictions and candidate.predictions:
        checks.append(
            Check(
                "prediction_distance",
                l_infinity(baseline.predictions, candidate.predictions),
                limits.max_prediction_distance,
            )
        )
    return Comparison(pipeline, model_name, baseline, candidate, checks)


def comparison_text(comparison: Comparison) -> str:
    """The side-by-side table a person reads."""
    a, b = comparison.baseline, comparison.candidate

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    rows = [
        ("", f"{a.name} (v{a.version})", f"{b.name} (v{b.version})"),
        ("requests", str(a.requests), str(b.requests)),
        ("errors", f"{a.errors} ({a.error_rate:.2%})", f"{b.errors} ({b.error_rate:.2%})"),
        ("p50 latency", ms(a.p50_ms), ms(b.p50_ms)),
        ("p99 latency", ms(a.p99_ms), ms(b.p99_ms)),
    ]
    for label in sorted(set(a.predictions) | set(b.predictions)):
        rows.append(
            (f"predicted {label}", f"{a.predictions.get(label, 0):.1%}",
             f"{b.predictions.get(label, 0):.1%}")
        )
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"Model {comparison.model_name} (pipeline {comparison.pipeline}): "
             f"{b.name} against {a.name}"]
    lines += ["  ".join(cell.ljust(width[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.append("")
    for check in comparison.checks:
        mark = "CROSSED" if check.crossed else "ok"
        lines.append(f"{check.name}: {check.value:.4g} (threshold {check.threshold:g}) {mark}")
    verdict = (
        f"verdict: {b.name} is worse than {a.name} ({', '.join(comparison.crossed)})"
        if comparison.crossed
        else f"verdict: {b.name} is within every threshold of {a.name}"
    )
    lines.append(verdict)
    return "\n".join(lines)
