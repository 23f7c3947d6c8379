"""Two served versions side by side from the request logs: `beamline monitor --compare A B`.

What a canary review asks of the traffic each version answered in a window: how many requests,
what share failed (any non-OK status after the request reached the version, from the outcome
files), how fast the OK ones were (p50/p99 of the server's own request latency), and what it
predicted, from the PredictionLog records: the share of each predicted class (classifiers), or
the predicted numbers of a regression model (shown by their mean and spread). The candidate (B)
is judged against the baseline (A) by three checks, each with a threshold; the predictions are
compared by one L-infinity distance: of the class shares, or of the shares of predicted numbers
at or below any value (the two-sample Kolmogorov-Smirnov statistic). No statistics job runs,
so a comparison costs seconds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
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
    # A regression model's predicted numbers (in JSON only their mean and spread).
    values: list[float] = field(default_factory=list, repr=False)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def predicted_mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def predicted_std(self) -> float | None:
        return statistics.pstdev(self.values) if self.values else None


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
            data = {k: v for k, v in asdict(s).items() if k != "values"}
            if s.values:
                data.update(predicted_mean=s.predicted_mean, predicted_std=s.predicted_std)
            return {**data, "error_rate": s.error_rate}

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


def cdf_distance(a: list[float], b: list[float]) -> float:
    """The largest difference between the share of `a` and the share of `b` at or below any
    value (the two-sample Kolmogorov-Smirnov statistic): for numbers what `l_infinity` is for
    class shares, in the same range (0 alike, 1 apart)."""
    xs, ys = sorted(a), sorted(b)
    if not xs or not ys:
        return 0.0
    i = j = 0
    largest = 0.0
    while i < len(xs) and j < len(ys):
        value = min(xs[i], ys[j])
        while i < len(xs) and xs[i] <= value:
            i += 1
        while j < len(ys) and ys[j] <= value:
            j += 1
        largest = max(largest, abs(i / len(xs) - j / len(ys)))
    return largest


def side_of(
    name: str, version: int, outcomes: list, predicted: list[str], values: Sequence[float] = ()
) -> Side:
    """A version's side from its outcome records and its logged answers: predicted classes, or
    a regression model's predicted numbers."""
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
    side.values = list(values)
    side.predicted_rows = len(predicted) or len(side.values)
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
        distance = l_infinity(baseline.predictions, candidate.predictions)
    elif baseline.values and candidate.values:
        distance = cdf_distance(baseline.values, candidate.values)
    else:
        distance = None
    if distance is not None:
        checks.append(Check("prediction_distance", distance, limits.max_prediction_distance))
    return Comparison(pipeline, model_name, baseline, candidate, checks)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def prediction_rows(a: Side, b: Side) -> list[tuple[str, str, str]]:
    """What each side predicted, as rows of the side-by-side table: each class's share, or the
    mean and spread of a regression model's predicted numbers."""
    rows = [
        (f"predicted {label}", f"{a.predictions.get(label, 0):.1%}",
         f"{b.predictions.get(label, 0):.1%}")
        for label in sorted(set(a.predictions) | set(b.predictions))
    ]
    if a.values or b.values:
        rows.append(("predicted mean", _number(a.predicted_mean), _number(b.predicted_mean)))
        rows.append(("predicted std", _number(a.predicted_std), _number(b.predicted_std)))
    return rows


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
    rows += prediction_rows(a, b)
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
