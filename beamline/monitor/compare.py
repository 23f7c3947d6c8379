"""TFDV's comparisons of one window's logged inputs: skew, drift, schema, predictions.

- Skew: `validate_statistics(statistics=training, serving_statistics=logged)` with one skew
  comparator per monitored feature (TFDV treats `statistics` as the treatment and
  `serving_statistics` as the control).
- Drift: `validate_statistics(statistics=logged, previous_statistics=previous window)`.
- Schema: `validate_statistics(statistics=logged, schema, environment="SERVING")`: missing
  features, new categories, out-of-range values.
- Predictions: the window's answers against the labels of the eval split the Evaluator scored;
  predicted classes by L-infinity distance of their shares, predicted numbers (regression) by
  Jensen-Shannon divergence of their histogram, as TFDV measures a categorical or a numeric
  feature.
TFX 1.16's ExampleValidator ignores serving and previous statistics, hence TFDV's validation
directly (its C++, called without importing TensorFlow: beamline.monitor.statistics).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.lineage.drift import js_divergence
from beamline.monitor.thresholds import (
    DEFAULT_JSD,
    DEFAULT_PREDICTION_L_INFINITY,
    JSD,
    L_INFINITY,
    PREDICTION,
    Threshold,
    threshold_for,
    with_comparators,
)

SERVING = "SERVING"


@dataclass
class Measure:
    measure: str
    value: float
    threshold: float
    source: str

    @property
    def crossed(self) -> bool:
        return self.value > self.threshold


@dataclass
class FeatureResult:
    feature: str
    kind: str  # "categorical" | "numeric" | "prediction"
    skew: Measure | None = None
    drift: Measure | None = None
    schema: list[str] = field(default_factory=list)  # schema anomalies in the window
    # For the report: distributions of training, this window and the previous window.
    histograms: dict[str, list[list[Any]]] = field(default_factory=dict)

    @property
    def crossed(self) -> bool:
        """A distribution moved (skew or drift past its threshold). Schema findings are data
        quality (beamline.monitor.quality), not drift: they never make a feature crossed."""
        return bool((self.skew and self.skew.crossed) or (self.drift and self.drift.crossed))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["crossed"] = self.crossed
        return data


def in_environment(feature, schema, environment: str) -> bool:
    """TFDV's rule (anomalies/schema.cc): in_environment, else not_in_environment, else the
    schema's default environments (none listed: every environment)."""
    if environment in feature.in_environment:
        return True
    if environment in feature.not_in_environment:
        return False
    return not schema.default_environment or environment in schema.default_environment


def serving_environment(schema) -> str | None:
    declared = set(schema.default_environment)
    for feature in schema.feature:
        declared |= set(feature.in_environment) | set(feature.not_in_environment)
    return SERVING if SERVING in declared else None


def monitored_features(schema, inputs_sent: set[str]) -> list[str]:
    """Schema features a serving request carries: in the SERVING environment and sent to this
    version at least once (features the model never takes are not monitored)."""
    return [
        f.name
        for f in schema.feature
        if in_environment(f, schema, SERVING) and f.name in inputs_sent
    ]


def label_features(schema) -> list[str]:
    return [f.name for f in schema.feature if not in_environment(f, schema, SERVING)]


def _serving_schema(schema, features: list[str]):
    """The schema as the window is checked against: unmonitored features out of SERVING."""
    copy = type(schema)()
    copy.CopyFrom(schema)
    for feature in copy.feature:
        if feature.name not in features and in_environment(feature, copy, SERVING):
            feature.not_in_environment.append(SERVING)
    if SERVING not in copy.default_environment and copy.default_environment:
        copy.default_environment.append(SERVING)
    return copy


def _path(path) -> str:
    return ".".join(path.step)


def _measurements(info, kind: str) -> dict[str, tuple[float, float]]:
    """feature -> (value, threshold) of the largest skew or drift measurement."""
    found: dict[str, tuple[float, float]] = {}
    for entry in info.drift_skew_info:
        measurements = entry.skew_measurements if kind == "skew" else entry.drift_measurements
        for m in measurements:
            name = _path(entry.path)
            if name not in found or m.value > found[name][0]:
                found[name] = (float(m.value), float(m.threshold))
    return found


def _schema_findings(anomalies) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, info in anomalies.anomaly_info.items():
        reasons = [r.short_description or r.description for r in info.reason]
        found[name] = reasons or [info.short_description or info.description]
    return found


def feature_stats(stats, name: str):
    for dataset in stats.datasets:
        for feature in dataset.features:
            if _path(feature.path) == name or feature.name == name:
                return feature
    return None


def distribution(stats, name: str) -> list[list[Any]]:
    """[[bucket, fraction], ...]: value frequencies (categorical) or histogram buckets."""
    feature = feature_stats(stats, name)
    if feature is None:
        return []
    kind = feature.WhichOneof("stats")
    if kind == "string_stats":
        buckets = feature.string_stats.rank_histogram.buckets
        total = sum(b.sample_count for b in buckets) or 1.0
        return [[b.label, b.sample_count / total] for b in buckets]
    if kind == "num_stats":
        for histogram in feature.num_stats.histograms:
            if histogram.type == histogram.STANDARD:
                total = sum(b.sample_count for b in histogram.buckets) or 1.0
                return [
                    [f"{b.low_value:.4g}..{b.high_value:.4g}", b.sample_count / total]
                    for b in histogram.buckets
                ]
    return []


def compare(
    training,
    logged,
    previous,
    schema,
    features: list[str],
    overrides: dict[str, float],
) -> list[FeatureResult]:
    """Per-feature skew, drift and schema verdicts of `logged` (stats protos; previous may be
    None: no drift check for the first window)."""
    from beamline.monitor.statistics import validate_statistics

    by_name = {f.name: f for f in schema.feature}
    skew = validate_statistics(
        statistics=training,
        schema=with_comparators(schema, features, "skew", overrides),
        serving_statistics=logged,
    )
    skews = _measurements(skew, "skew")
    drifts: dict[str, tuple[float, float]] = {}
    if previous is not None:
        drift = validate_statistics(
            statistics=logged,
            schema=with_comparators(schema, features, "drift", overrides),
            previous_statistics=previous,
        )
        drifts = _measurements(drift, "drift")
    checked = validate_statistics(
        statistics=logged,
        schema=_serving_schema(schema, features),
        environment=serving_environment(schema),
    )
    findings = _schema_findings(checked)
    results = []
    for name in features:
        feature = by_name[name]
        skew_t = threshold_for(feature, "skew", overrides)
        drift_t = threshold_for(feature, "drift", overrides)
        result = FeatureResult(
            name,
            "categorical" if skew_t.measure == L_INFINITY else "numeric",
            schema=findings.pop(name, []),
        )
        if name in skews:
            result.skew = Measure(skew_t.measure, skews[name][0], skew_t.value, skew_t.source)
        if name in drifts:
            result.drift = Measure(drift_t.measure, drifts[name][0], drift_t.value, drift_t.source)
        result.histograms = {
            "training": distribution(training, name),
            "window": distribution(logged, name),
        }
        if previous is not None:
            result.histograms["previous"] = distribution(previous, name)
        results.append(result)
    for name, reasons in sorted(findings.items()):  # e.g. a column the schema does not know
        results.append(FeatureResult(name, "unknown", schema=reasons))
    return results


# TFDV's standard histogram: this many equal-width buckets from the smallest value to the largest.
HISTOGRAM_BUCKETS = 10
# An integer label with more values than this is not read as classes (beamline.tabular takes at
# most 50 classes).
MAX_INTEGER_CLASSES = 50


def _prediction_threshold(measure: str, default: float, overrides: dict[str, float]) -> Threshold:
    if PREDICTION in overrides:
        return Threshold(measure, overrides[PREDICTION], "override")
    return Threshold(measure, default, "default")


def _standard_histogram(stats, name: str) -> list[tuple[float, float, float]]:
    """(low, high, count) buckets of a numeric feature's standard histogram ([] if none)."""
    feature = feature_stats(stats, name)
    if feature is None or feature.WhichOneof("stats") != "num_stats":
        return []
    for histogram in feature.num_stats.histograms:
        if histogram.type == histogram.STANDARD:
            return [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets]
    return []


def label_shares(stats, name: str) -> dict[str, float]:
    """The share of each class of a label in `stats`: its value frequencies (a string label), or,
    for an integer label (StatisticsGen describes it as numeric, e.g. a binary 0/1 label), the
    mass of its standard histogram gathered to the nearest whole number. TFDV draws that
    histogram from quantiles, so a little mass lies between the classes; it goes to the
    nearest one (half each way from a midpoint)."""
    feature = feature_stats(stats, name)
    if feature is None:
        return {}
    if feature.WhichOneof("stats") == "string_stats":
        return dict((k, v) for k, v in distribution(stats, name))
    low, high = feature.num_stats.min, feature.num_stats.max
    buckets = _standard_histogram(stats, name)
    whole = low == int(low) and high == int(high)
    if not buckets or not whole or high - low > MAX_INTEGER_CLASSES:
        return {}
    counts: dict[int, float] = {}
    for bucket_low, bucket_high, count in buckets:
        middle = (bucket_low + bucket_high) / 2
        below = int(middle // 1)
        if middle - below == 0.5:
            counts[below] = counts.get(below, 0.0) + count / 2
            counts[below + 1] = counts.get(below + 1, 0.0) + count / 2
        else:
            nearest = round(middle)
            counts[nearest] = counts.get(nearest, 0.0) + count
    total = sum(counts.values()) or 1.0
    return {str(k): v / total for k, v in sorted(counts.items()) if low <= k <= high}


def prediction_result(
    predicted: list[str], eval_stats, label: str | None, overrides: dict[str, float]
) -> FeatureResult | None:
    """The window's predicted classes against the label distribution of the eval split the
    Evaluator scored (L-infinity of the class frequencies)."""
    if not predicted or label is None:
        return None
    reference = label_shares(eval_stats, label)
    if not reference:
        return None
    counts: dict[str, int] = {}
    for value in predicted:
        counts[value] = counts.get(value, 0) + 1
    window = {k: v / len(predicted) for k, v in counts.items()}
    distance = max(
        abs(window.get(k, 0.0) - reference.get(k, 0.0)) for k in set(window) | set(reference)
    )
    threshold = _prediction_threshold(L_INFINITY, DEFAULT_PREDICTION_L_INFINITY, overrides)
    result = FeatureResult(f"{PREDICTION} ({label})", PREDICTION)
    result.skew = Measure(L_INFINITY, distance, threshold.value, threshold.source)
    result.histograms = {
        "training": sorted([k, v] for k, v in reference.items()),
        "window": sorted([k, v] for k, v in window.items()),
    }
    return result


def value_histogram(values: list[float]) -> list[tuple[float, float, float]]:
    """(low, high, count) buckets of `values` as TFDV lays out a standard histogram: equal
    widths from the smallest value to the largest (one point bucket when all are equal)."""
    low, high = min(values), max(values)
    if low == high:
        return [(low, high, float(len(values)))]
    width = (high - low) / HISTOGRAM_BUCKETS
    counts = [0.0] * HISTOGRAM_BUCKETS
    for value in values:
        counts[min(int((value - low) / width), HISTOGRAM_BUCKETS - 1)] += 1
    return [
        (low + i * width, high if i == HISTOGRAM_BUCKETS - 1 else low + (i + 1) * width, n)
        for i, n in enumerate(counts)
    ]


def _fractions(buckets: list[tuple[float, float, float]]) -> list[list[Any]]:
    total = sum(count for _, _, count in buckets) or 1.0
    return [[f"{low:.4g}..{high:.4g}", count / total] for low, high, count in buckets]


def prediction_values_result(
    values: list[float], eval_stats, label: str | None, overrides: dict[str, float]
) -> FeatureResult | None:
    """A regression model's predicted numbers in the window against the label distribution of
    the eval split the Evaluator scored: Jensen-Shannon divergence of the two histograms, as
    TFDV measures a numeric feature, against the numeric features' default threshold. A model
    predicts closer to the mean than the labels spread, so a healthy window sits above 0."""
    if not values or label is None:
        return None
    reference = _standard_histogram(eval_stats, label)
    if not reference:
        return None
    window = value_histogram(values)
    threshold = _prediction_threshold(JSD, DEFAULT_JSD, overrides)
    result = FeatureResult(f"{PREDICTION} ({label})", PREDICTION)
    result.skew = Measure(
        JSD, js_divergence(reference, window), threshold.value, threshold.source
    )
    result.histograms = {"training": _fractions(reference), "window": _fractions(window)}
    return result
