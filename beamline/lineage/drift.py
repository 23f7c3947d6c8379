"""Feature drift between two statistics, with TFDV's measures (pure math, no TFDV import):
L-infinity distance for categorical features, Jensen-Shannon divergence for numeric ones."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from beamline.lineage.payloads import FeatureSummary


def _normalized(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def linf_distance(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> float:
    """L-infinity distance of two value-frequency lists (TFDV's categorical drift measure)."""
    pa, pb = _normalized(dict(a)), _normalized(dict(b))
    return max((abs(pa.get(k, 0.0) - pb.get(k, 0.0)) for k in set(pa) | set(pb)), default=0.0)


def _rebin(hist: list[tuple[float, float, float]], edges: list[float]) -> list[float]:
    """Counts of `hist` redistributed onto `edges` (uniform within each source bucket)."""
    out = [0.0] * (len(edges) - 1)
    for low, high, count in hist:
        if count <= 0:
            continue
        if high <= low:
            for i in range(len(out)):
                if edges[i] <= low <= edges[i + 1]:
                    out[i] += count
                    break
            continue
        for i in range(len(out)):
            overlap = min(high, edges[i + 1]) - max(low, edges[i])
            if overlap > 0:
                out[i] += count * overlap / (high - low)
    return out


def js_divergence(
    a: list[tuple[float, float, float]], b: list[tuple[float, float, float]]
) -> float:
    """Jensen-Shannon divergence (base 2) of two numeric histograms (TFDV's numeric drift measure),
    both rebinned onto the union of their bucket edges."""
    edges = sorted({x for low, high, _ in a + b for x in (low, high) if math.isfinite(x)})
    if len(edges) < 2:
        return 0.0
    pa, pb = _rebin(a, edges), _rebin(b, edges)
    sa, sb = sum(pa), sum(pb)
    if not sa or not sb:
        return 0.0
    pa, pb = [x / sa for x in pa], [x / sb for x in pb]
    js = 0.0
    for x, y in zip(pa, pb, strict=True):
        m = (x + y) / 2
        if x > 0:
            js += 0.5 * x * math.log2(x / m)
        if y > 0:
            js += 0.5 * y * math.log2(y / m)
    return max(0.0, js)


@dataclass
class FeatureDrift:
    feature: str
    measure: str  # L_INFINITY | JENSEN_SHANNON_DIVERGENCE
    value: float
    threshold: float
    drifted: bool
    before: dict[str, Any]
    after: dict[str, Any]


def feature_drift(
    before: list[FeatureSummary],
    after: list[FeatureSummary],
    threshold: float = 0.1,
    thresholds: dict[str, float] | None = None,
) -> list[FeatureDrift]:
    """Per-feature drift between two statistics (same measures as TFDV's drift comparators)."""
    old = {f.name: f for f in before}
    out = []
    for feature in after:
        prev = old.get(feature.name)
        if prev is None:
            continue
        limit = (thresholds or {}).get(feature.name, threshold)
        if feature.numeric and prev.numeric:
            value = js_divergence(prev.histogram, feature.histogram)
            measure = "JENSEN_SHANNON_DIVERGENCE"
            brief = lambda f: {"mean": f.mean, "std": f.std, "missing": f.missing}  # noqa: E731
        else:
            value = linf_distance(prev.top, feature.top)
            measure = "L_INFINITY"
            brief = lambda f: {"unique": f.unique, "missing": f.missing, "top": f.top[:3]}  # noqa: E731
        out.append(
            FeatureDrift(
                feature=feature.name,
                measure=measure,
                value=round(value, 6),
                threshold=limit,
                drifted=value > limit,
                before=brief(prev),
                after=brief(feature),
            )
        )
    return out


def schema_drift_thresholds(schema) -> dict[str, float]:
    """Per-feature drift thresholds the schema declares (drift_comparator), if any."""
    out = {}
    for feature in schema.feature:
        comp = feature.drift_comparator
        if comp.HasField("infinity_norm"):
            out[feature.name] = comp.infinity_norm.threshold
        elif comp.HasField("jensen_shannon_divergence"):
            out[feature.name] = comp.jensen_shannon_divergence.threshold
    return out
