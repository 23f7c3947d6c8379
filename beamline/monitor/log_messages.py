"""Logged requests decoded without TensorFlow: PredictionLog, tf.Example and SavedModel message
classes from a private descriptor pool, and TensorProtos read into numpy arrays.

The generated `tensorflow_serving.apis` modules import `tensorflow.core...` protos, and importing
any `tensorflow.*` module runs TensorFlow's package `__init__` (seconds of a loop step that
decides not to retrain). Their serialized descriptors are read from the generated files instead
(`*_pb2.py`, found without importing their packages) and loaded into a pool of our own. The wire
format is the same, so the records parse exactly as with TensorFlow's classes.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
from functools import cache

PREDICTION_LOG_MODULE = "tensorflow_serving.apis.prediction_log_pb2"
PREDICTION_LOG = "tensorflow.serving.PredictionLog"
EXAMPLE = "tensorflow.Example"
# A SavedModel's signatures (beamline.monitor.quality.serving_inputs), from the same pool.
SAVED_MODEL_MODULE = "tensorflow.core.protobuf.saved_model_pb2"
SAVED_MODEL = "tensorflow.SavedModel"
# Well-known types ship with protobuf itself: their modules are imported (cheap, no TensorFlow).
_WELL_KNOWN = "google.protobuf."
_PB2_IMPORT = re.compile(r"^from ([\w.]+) import (\w+_pb2)\b", re.MULTILINE)
_SERIALIZED = re.compile(r"AddSerializedFile\((b'.*'|b\".*\")\)\s*$", re.MULTILINE)


def _source_path(module: str) -> str:
    """The file of a generated module, located from its top-level package's spec (which does
    not import the package)."""
    top, _, rest = module.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{top} is not installed (needed to read {module})")
    return os.path.join(spec.submodule_search_locations[0], *rest.split(".")) + ".py"


def _generated(module: str) -> tuple[list[str], bytes]:
    """(the generated modules `module` imports, its serialized FileDescriptorProto)."""
    with open(_source_path(module), encoding="utf-8") as handle:
        text = handle.read()
    found = _SERIALIZED.search(text)
    if found is None:
        raise ImportError(f"no serialized descriptor in the generated module {module}")
    imports = [f"{package}.{name}" for package, name in _PB2_IMPORT.findall(text)]
    return imports, ast.literal_eval(found.group(1))


def _add(pool, module: str, added: set[str]) -> None:
    """Adds `module`'s file to `pool`, its dependencies first."""
    if module in added:
        return
    added.add(module)
    if module.startswith(_WELL_KNOWN):
        from google.protobuf import descriptor_pb2

        proto = descriptor_pb2.FileDescriptorProto()
        importlib.import_module(module).DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
        return
    imports, serialized = _generated(module)
    for dependency in imports:
        _add(pool, dependency, added)
    pool.AddSerializedFile(serialized)


@cache
def messages() -> dict[str, type]:
    """PredictionLog, Example and SavedModel message classes (full names as keys), without
    TensorFlow."""
    from google.protobuf import descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    _add(pool, PREDICTION_LOG_MODULE, added)
    _add(pool, SAVED_MODEL_MODULE, added)
    factory = message_factory.MessageFactory(pool)
    out = {}
    for name in (PREDICTION_LOG, EXAMPLE, SAVED_MODEL):
        descriptor = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            out[name] = message_factory.GetMessageClass(descriptor)
        else:
            out[name] = factory.GetPrototype(descriptor)
    return out


def to_array(tensor):
    """A numpy array of a logged TensorProto (any pool's), decoded without TensorFlow by the
    model server's own decoder: the server decoded the same tensor before logging it."""
    from beamline_serving.core.tensors import make_ndarray

    return make_ndarray(tensor)
