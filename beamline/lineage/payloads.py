"""Reads what artifacts hold on disk: TFDV statistics and anomalies, schema, TFMA metrics and
validations, tuner hyperparameters. No TensorFlow: protos only, TFRecords read directly.

TFMA's protos are loaded into a private descriptor pool (its package `__init__` imports
TensorFlow, ~20 s); when TFMA is already imported its own modules are used.
"""

from __future__ import annotations

import ast
import glob
import json
import math
import os
import struct
import sys
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

# ---------------------------------------------------------------- files


def read_tfrecords(path: str):
    """Yields the records of an uncompressed TFRecord file (CRCs not checked)."""
    with open(path, "rb") as handle:
        while True:
            header = handle.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = handle.read(length)
            handle.read(4)
            if len(data) < length:
                return
            yield data


def _split_dirs(uri: str) -> dict[str, str]:
    """`Split-<name>` sub-directories of an artifact, by split name."""
    out = {}
    for path in sorted(glob.glob(os.path.join(uri, "Split-*"))):
        if os.path.isdir(path):
            out[os.path.basename(path)[len("Split-") :]] = path
    return out


# ---------------------------------------------------------------- TFDV


def load_statistics(uri: str) -> dict[str, Any]:
    """split -> DatasetFeatureStatisticsList of an ExampleStatistics artifact."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out = {}
    for split, path in _split_dirs(uri).items():
        binary = os.path.join(path, "FeatureStats.pb")
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        if os.path.isfile(binary):
            with open(binary, "rb") as handle:
                stats.ParseFromString(handle.read())
        else:
            records = glob.glob(os.path.join(path, "stats_tfrecord*"))
            if not records:
                continue
            for record in read_tfrecords(records[0]):
                stats.ParseFromString(record)
                break
        out[split] = stats
    return out


def load_anomalies(uri: str) -> dict[str, Any]:
    """split -> Anomalies of an ExampleAnomalies artifact."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    out = {}
    for split, path in _split_dirs(uri).items():
        binary = os.path.join(path, "SchemaDiff.pb")
        if not os.path.isfile(binary):
            continue
        anomalies = anomalies_pb2.Anomalies()
        with open(binary, "rb") as handle:
            anomalies.ParseFromString(handle.read())
        out[split] = anomalies
    return out


def load_schema(uri: str):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = uri if uri.endswith(".pbtxt") else os.path.join(uri, "schema.pbtxt")
    schema = schema_pb2.Schema()
    with open(path, encoding="utf-8") as handle:
        text_format.Parse(handle.read(), schema)
    return schema


@dataclass
class FeatureSummary:
    name: str
    type: str  # INT | FLOAT | STRING | BYTES | STRUCT
    count: int  # examples with the feature present
    missing: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    zeros: int | None = None
    unique: int | None = None
    top: list[tuple[str, float]] = field(default_factory=list)  # (value, frequency)
    # numeric: [(low, high, count)] standard histogram; categorical: top values
    histogram: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return self.type in ("INT", "FLOAT")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _feature_name(feature) -> str:
    if feature.HasField("path"):
        return ".".join(feature.path.step)
    return feature.name


def feature_summaries(stats_list) -> tuple[int, list[FeatureSummary]]:
    """(number of examples, per-feature summaries) of a DatasetFeatureStatisticsList."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    if not stats_list.datasets:
        return 0, []
    dataset = stats_list.datasets[0]
    type_name = statistics_pb2.FeatureNameStatistics.Type.Name
    out = []
    for feature in dataset.features:
        kind = feature.WhichOneof("stats")
        name = _feature_name(feature)
        if kind == "num_stats":
            num = feature.num_stats
            common = num.common_stats
            hist = next(
                (h for h in num.histograms if h.type == h.STANDARD),
                num.histograms[0] if num.histograms else None,
            )
            out.append(
                FeatureSummary(
                    name=name,
                    type=type_name(feature.type),
                    count=common.num_non_missing,
                    missing=common.num_missing,
                    mean=num.mean,
                    std=num.std_dev,
                    min=num.min,
                    max=num.max,
                    zeros=num.num_zeros,
                    histogram=[
                        (b.low_value, b.high_value, b.sample_count)
                        for b in (hist.buckets if hist else [])
                    ],
                )
            )
        elif kind == "string_stats":
            st = feature.string_stats
            common = st.common_stats
            values = [(v.value, v.frequency) for v in st.top_values]
            if not values and st.rank_histogram.buckets:
                values = [(b.label, b.sample_count) for b in st.rank_histogram.buckets]
            out.append(
                FeatureSummary(
                    name=name,
                    type=type_name(feature.type),
                    count=common.num_non_missing,
                    missing=common.num_missing,
                    unique=st.unique,
                    top=values[:20],
                )
            )
        else:
            out.append(FeatureSummary(name=name, type=type_name(feature.type), count=0, missing=0))
    return dataset.num_examples, out


def anomaly_list(anomalies) -> list[dict[str, str]]:
    """[{feature, severity, short, description}] of an Anomalies proto."""
    out = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        out.append(
            {
                "feature": feature,
                "severity": type(info).Severity.Name(info.severity),
                "short": info.short_description,
                "description": info.description,
            }
        )
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        out.append(
            {
                "feature": "(dataset)",
                "severity": type(info).Severity.Name(info.severity),
                "short": info.short_description,
                "description": info.description,
            }
        )
    return out


# ---------------------------------------------------------------- drift


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


# ---------------------------------------------------------------- TFMA


def _serialized_file(module_path: str) -> bytes:
    """The serialized FileDescriptorProto a generated *_pb2.py registers."""
    with open(module_path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "AddSerializedFile"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return node.args[0].value
    raise ValueError(f"no serialized descriptor in {module_path}")


@cache
def tfma_messages() -> dict[str, type]:
    """MetricsForSlice and ValidationResult message classes, without importing TFMA."""
    if "tensorflow_model_analysis" in sys.modules:
        from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2

        return {
            "MetricsForSlice": metrics_for_slice_pb2.MetricsForSlice,
            "ValidationResult": validation_result_pb2.ValidationResult,
        }
    import importlib.util

    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    spec = importlib.util.find_spec("tensorflow_model_analysis")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tensorflow_model_analysis is not installed")
    proto_dir = os.path.join(spec.submodule_search_locations[0], "proto")
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    for name in ("config_pb2.py", "metrics_for_slice_pb2.py", "validation_result_pb2.py"):
        pool.AddSerializedFile(_serialized_file(os.path.join(proto_dir, name)))
    factory = message_factory.MessageFactory(pool)
    out = {}
    for name in ("MetricsForSlice", "ValidationResult"):
        descriptor = pool.FindMessageTypeByName(f"tensorflow_model_analysis.{name}")
        if hasattr(message_factory, "GetMessageClass"):
            out[name] = message_factory.GetMessageClass(descriptor)
        else:
            out[name] = factory.GetPrototype(descriptor)
    return out


def slice_name(slice_key) -> str:
    parts = []
    for key in slice_key.single_slice_keys:
        kind = key.WhichOneof("kind")
        value = getattr(key, kind) if kind else ""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{key.column}={value}")
    return ", ".join(parts) or "Overall"


def _metric_value(value) -> float | None:
    kind = value.WhichOneof("type")
    if kind == "double_value":
        return value.double_value.value
    if kind == "bounded_value":
        return value.bounded_value.value.value
    return None


@dataclass
class Evaluation:
    """TFMA results of a ModelEvaluation artifact."""

    # model ("candidate" | "baseline" | "") -> slice -> metric -> value
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # slice -> metric -> candidate minus baseline (TFMA's is_diff values)
    diffs: dict[str, dict[str, float]] = field(default_factory=dict)
    validation_ok: bool | None = None
    failures: list[str] = field(default_factory=list)

    def candidate(self) -> dict[str, dict[str, float]]:
        for name in ("candidate", ""):
            if name in self.metrics:
                return self.metrics[name]
        return next(iter(self.metrics.values()), {})

    def baseline(self) -> dict[str, dict[str, float]]:
        return self.metrics.get("baseline", {})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _files(uri: str, stem: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(uri, stem + "*")) if os.path.isfile(p))


def load_evaluation(uri: str) -> Evaluation:
    """Metrics per model and slice, and the validation outcome, of a ModelEvaluation."""
    messages = tfma_messages()
    result = Evaluation()
    for path in _files(uri, "metrics"):
        if path.endswith(".parquet"):
            continue
        for record in read_tfrecords(path):
            msg = messages["MetricsForSlice"].FromString(record)
            name = slice_name(msg.slice_key)
            for kv in msg.metric_keys_and_values:
                value = _metric_value(kv.value)
                if value is None:
                    continue
                key = kv.key
                metric = key.name
                if key.HasField("sub_key"):
                    sub = key.sub_key
                    for field_name in ("class_id", "k", "top_k"):
                        if sub.HasField(field_name):
                            metric += f"[{field_name}={getattr(sub, field_name).value}]"
                if key.output_name:
                    metric = f"{key.output_name}/{metric}"
                if key.is_diff:
                    result.diffs.setdefault(name, {})[metric] = value
                else:
                    model = key.model_name
                    result.metrics.setdefault(model, {}).setdefault(name, {})[metric] = value
            for metric, value in msg.metrics.items():  # legacy map
                number = _metric_value(value)
                if number is not None:
                    result.metrics.setdefault("", {}).setdefault(name, {})[metric] = number
    for path in _files(uri, "validations"):
        for record in read_tfrecords(path):
            msg = messages["ValidationResult"].FromString(record)
            result.validation_ok = msg.validation_ok
            for per_slice in msg.metric_validations_per_slice:
                for failure in per_slice.failures:
                    result.failures.append(
                        f"{slice_name(per_slice.slice_key)}: {failure.metric_key.name} = "
                        f"{_metric_value(failure.metric_value)}: {failure.message}"
                    )
    return result


# ---------------------------------------------------------------- others


def load_hyperparameters(uri: str) -> dict[str, Any]:
    """Values of a Tuner's best_hyperparameters.txt (KerasTuner config JSON)."""
    path = os.path.join(uri, "best_hyperparameters.txt")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    return config.get("values", config) if isinstance(config, dict) else {}


def safe(loader, *args, default=None):
    """Calls a loader; a missing or unreadable payload gives `default` instead of a traceback."""
    try:
        return loader(*args)
    except (OSError, ValueError, KeyError, ImportError, TypeError) as exc:
        del exc
        return default
    except Exception as exc:  # protobuf DecodeError and friends
        if type(exc).__name__ in ("DecodeError", "ParseError"):
            return default
        raise
