"""Which distance each monitored feature is measured by, and the threshold it must stay under.

Categorical features (BYTES, or INT with a categorical domain) are compared by L-infinity
distance of their value frequencies, numeric features by Jensen-Shannon divergence of their
histograms, as TFDV's skew and drift comparators do. A threshold comes, in order, from a
`--threshold FEATURE=VALUE` override, the schema's own `skew_comparator` / `drift_comparator`,
else the defaults below (chosen so that a held-out sample of a few hundred rows of the training
distribution passes and a shifted one fails; see docs/guides/monitoring.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from beamline.errors import ConfigError

DEFAULT_L_INFINITY = 0.25
DEFAULT_JSD = 0.1
# The predicted-class distribution against the labels of the eval split (L-infinity); predicted
# numbers (regression) are measured as a numeric feature is (JSD, DEFAULT_JSD).
DEFAULT_PREDICTION_L_INFINITY = 0.25
PREDICTION = "prediction"

L_INFINITY = "infinity_norm"
JSD = "jensen_shannon_divergence"


@dataclass(frozen=True)
class Threshold:
    measure: str  # L_INFINITY | JSD
    value: float
    source: str  # "override" | "schema" | "default"


def is_categorical(feature) -> bool:
    from tensorflow_metadata.proto.v0 import schema_pb2

    if feature.type == schema_pb2.BYTES:
        return True
    return feature.type == schema_pb2.INT and (
        feature.HasField("domain") or feature.int_domain.is_categorical
    )


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, float]:
    """`FEATURE=VALUE` pairs (from --threshold) as a dict; a bad pair is a ConfigError."""
    found: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not sep or not name or not 0.0 <= number <= 1.0:
            raise ConfigError(
                f"--threshold {pair!r} is not FEATURE=VALUE with VALUE in [0, 1]; e.g. "
                "--threshold body_mass_g=0.2 (or prediction=0.3 for the predictions)."
            )
        found[name] = number
    return found


def threshold_for(feature, kind: str, overrides: dict[str, float]) -> Threshold:
    """The skew (`kind="skew"`) or drift (`kind="drift"`) threshold of a schema feature."""
    measure = L_INFINITY if is_categorical(feature) else JSD
    if feature.name in overrides:
        return Threshold(measure, overrides[feature.name], "override")
    comparator = feature.skew_comparator if kind == "skew" else feature.drift_comparator
    own = getattr(comparator, measure)
    if comparator.HasField(measure) and own.threshold > 0:
        return Threshold(measure, own.threshold, "schema")
    return Threshold(
        measure, DEFAULT_L_INFINITY if measure == L_INFINITY else DEFAULT_JSD, "default"
    )


def with_comparators(schema, features: list[str], kind: str, overrides: dict[str, float]):
    """A copy of `schema` whose monitored features carry exactly one skew or drift comparator
    (the one `threshold_for` picks) and whose other features carry none."""
    copy = type(schema)()
    copy.CopyFrom(schema)
    for feature in copy.feature:
        feature.ClearField("skew_comparator")
        feature.ClearField("drift_comparator")
        if feature.name not in features:
            continue
        chosen = threshold_for(
            next(f for f in schema.feature if f.name == feature.name), kind, overrides
        )
        comparator = feature.skew_comparator if kind == "skew" else feature.drift_comparator
        getattr(comparator, chosen.measure).threshold = chosen.value
    return copy
