"""TFMA results of a ModelEvaluation artifact: metrics per model and slice, validation outcome.

TFMA's protos are loaded into a private descriptor pool (its package `__init__` imports
TensorFlow, ~20 s); when TFMA is already imported its own modules are used.
"""

from __future__ import annotations

import ast
import glob
import os
import sys
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from beamline.lineage.payloads import read_tfrecords


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
