"""Opt-in data contract: requests checked against the pipeline's TFMD schema before the model runs.

Beyond TF Serving. For each feature of the schema that is in the SERVING environment (and not
deprecated or disabled), a request is refused with INVALID_ARGUMENT (HTTP 400) naming the feature
when a value has the wrong type, lies outside the feature's domain (string domain, int/float
min/max, NaN when disallowed), has more values than `value_count.max`, or when a required feature
(`presence.min_fraction: 1`) is missing from a tf.Example. Predict inputs are matched to schema
features by input name; inputs the schema does not know are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beamline_serving.errors import ConfigError, invalid_argument

SERVING_ENVIRONMENT = "SERVING"
_SKIPPED_STAGES = {"PLANNED", "ALPHA", "DEPRECATED", "DEBUG_ONLY", "DISABLED"}
_SHOWN_VALUES = 12


@dataclass(frozen=True)
class FeatureRule:
    name: str
    type: str  # INT, FLOAT, BYTES (or TYPE_UNKNOWN / STRUCT: type not checked)
    values: frozenset[str] | None = None
    domain_name: str = ""
    min: float | None = None
    max: float | None = None
    disallow_nan: bool = False
    required: bool = False
    max_values: int | None = None


class SchemaContract:
    """The SERVING-environment rules of one schema file."""

    def __init__(self, rules: dict[str, FeatureRule], source: str) -> None:
        self.rules = rules
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> SchemaContract:
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2

        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"Cannot read the schema file {path}: {exc.strerror}. Point --schema_file at a "
                "TFMD schema.pbtxt (e.g. schemas/<pipeline>/schema.pbtxt)."
            ) from exc
        schema = schema_pb2.Schema()
        try:
            text_format.Parse(text, schema)
        except text_format.ParseError as exc:
            raise ConfigError(
                f"Cannot parse the schema file {path} as a text tensorflow_metadata Schema: {exc}."
            ) from exc
        return cls(_rules(schema), path.name)

    # -- checks ---------------------------------------------------------------------------

    def check_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Predict inputs (one array per feature, batch dimension first)."""
        for name, array in arrays.items():
            rule = self.rules.get(name)
            if rule is None:
                continue
            if rule.max_values is not None and array.ndim > 1:
                per_row = int(np.prod(array.shape[1:]))
                if per_row > rule.max_values:
                    raise self._error(
                        rule,
                        f"has {per_row} values per row, more than value_count.max "
                        f"{rule.max_values}",
                    )
            self._check_type_of_array(rule, array)
            self._check_values(rule, array.reshape(-1), lambda i, a=array: _row_of(i, a))

    def check_examples(self, examples) -> None:
        """tf.Examples (classify/regress), each checked whole, with context merged in."""
        for index, example in enumerate(examples):
            features = example.features.feature
            for rule in self.rules.values():
                feature = features.get(rule.name) if rule.name in features else None
                kind = feature.WhichOneof("kind") if feature is not None else None
                values = list(getattr(feature, kind).value) if kind else []
                if not values:
                    if rule.required:
                        raise self._error(
                            rule,
                            f"is required by the schema (presence.min_fraction: 1) but example "
                            f"{index} does not have it",
                        )
                    continue
                expected = {"INT": "int64_list", "FLOAT": "float_list", "BYTES": "bytes_list"}
                want = expected.get(rule.type)
                if want is not None and kind != want:
                    got = kind.replace("_list", "")
                    raise self._error(
                        rule,
                        f"has {got} values in example {index} but the schema's type is {rule.type}",
                    )
                if rule.max_values is not None and len(values) > rule.max_values:
                    raise self._error(
                        rule,
                        f"has {len(values)} values in example {index}, more than "
                        f"value_count.max {rule.max_values}",
                    )
                flat = np.asarray(values, dtype=object if kind == "bytes_list" else None)
                self._check_values(rule, flat, lambda i, e=index: e, "example")

    def _check_type_of_array(self, rule: FeatureRule, array: np.ndarray) -> None:
        kind = array.dtype.kind
        ok = {
            "INT": kind in "iub",
            "FLOAT": kind in "fiu",
            "BYTES": kind in "OSU",
        }.get(rule.type, True)
        if not ok:
            raise self._error(
                rule, f"is sent as {array.dtype} but the schema's type is {rule.type}"
            )

    def _check_values(self, rule: FeatureRule, flat: np.ndarray, where, unit: str = "row") -> None:
        if rule.values is not None and flat.dtype.kind in "OSU":
            for i, raw in enumerate(flat):
                value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                if value not in rule.values:
                    shown = sorted(rule.values)
                    listing = ", ".join(shown[:_SHOWN_VALUES]) + (
                        ", ..." if len(shown) > _SHOWN_VALUES else ""
                    )
                    domain = f" {rule.domain_name!r}" if rule.domain_name else ""
                    raise self._error(
                        rule,
                        f"has value {value!r} ({unit} {where(i)}), which is not in the schema's "
                        f"string domain{domain}: expected one of {listing}",
                    )
        if flat.dtype.kind in "fiu" and flat.size:
            numbers = flat.astype(np.float64)
            if rule.disallow_nan and np.isnan(numbers).any():
                i = int(np.flatnonzero(np.isnan(numbers))[0])
                raise self._error(rule, f"is NaN ({unit} {where(i)}), which the schema disallows")
            bad = np.zeros(numbers.shape, dtype=bool)
            if rule.min is not None:
                bad |= numbers < rule.min
            if rule.max is not None:
                bad |= numbers > rule.max
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise self._error(
                    rule,
                    f"has value {flat[i].item()} ({unit} {where(i)}), outside the schema's "
                    f"domain [{_fmt(rule.min)}, {_fmt(rule.max)}]",
                )

    def _error(self, rule: FeatureRule, what: str):
        return invalid_argument(
            f'Schema validation failed: feature "{rule.name}" {what}. The request was checked '
            f"against {self.source} (beamline serve --schema_file) and refused before the "
            "model ran; fix the value or the schema."
        )


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "-inf/+inf"
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _row_of(flat_index: int, array: np.ndarray) -> int:
    per_row = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
    return flat_index // max(per_row, 1)


def _in_serving(feature, schema) -> bool:
    if SERVING_ENVIRONMENT in feature.in_environment:
        return True
    if SERVING_ENVIRONMENT in feature.not_in_environment:
        return False
    if schema.default_environment:
        return SERVING_ENVIRONMENT in schema.default_environment
    return True


def _rules(schema) -> dict[str, FeatureRule]:
    from tensorflow_metadata.proto.v0 import schema_pb2

    string_domains = {d.name: frozenset(d.value) for d in schema.string_domain}
    int_domains = {d.name: d for d in schema.int_domain}
    float_domains = {d.name: d for d in schema.float_domain}
    rules = {}
    for feature in schema.feature:
        stage = schema_pb2.LifecycleStage.Name(feature.lifecycle_stage)
        if feature.deprecated or stage in _SKIPPED_STAGES or not _in_serving(feature, schema):
            continue
        kind = schema_pb2.FeatureType.Name(feature.type)
        values = None
        domain_name = ""
        low = high = None
        disallow_nan = False
        which = feature.WhichOneof("domain_info")
        if which == "string_domain":
            values = frozenset(feature.string_domain.value)
            domain_name = feature.string_domain.name
        elif which == "domain":
            domain_name = feature.domain
            if domain_name in string_domains:
                values = string_domains[domain_name]
            elif domain_name in int_domains:
                d = int_domains[domain_name]
                low = d.min if d.HasField("min") else None
                high = d.max if d.HasField("max") else None
            elif domain_name in float_domains:
                d = float_domains[domain_name]
                low = d.min if d.HasField("min") else None
                high = d.max if d.HasField("max") else None
                disallow_nan = d.disallow_nan
        elif which == "int_domain":
            d = feature.int_domain
            low = d.min if d.HasField("min") else None
            high = d.max if d.HasField("max") else None
        elif which == "float_domain":
            d = feature.float_domain
            low = d.min if d.HasField("min") else None
            high = d.max if d.HasField("max") else None
            disallow_nan = d.disallow_nan
        required = feature.HasField("presence") and feature.presence.min_fraction >= 1.0
        max_values = None
        if feature.HasField("value_count") and feature.value_count.HasField("max"):
            max_values = feature.value_count.max
        elif feature.HasField("shape"):
            max_values = int(np.prod([d.size for d in feature.shape.dim])) or None
        rules[feature.name] = FeatureRule(
            name=feature.name,
            type=kind,
            values=values,
            domain_name=domain_name,
            min=low,
            max=high,
            disallow_nan=disallow_nan,
            required=required,
            max_values=max_values,
        )
    return rules
