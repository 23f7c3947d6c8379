"""One loaded model version: its SavedModel, signature defs and a fast way to run each signature.

Signature defs are read from `saved_model.pb` itself (TF Serving reports them verbatim, including
method names that `tf.saved_model.load` does not expose). Inputs are checked against the
signature before TensorFlow sees them, so a bad request is a clear INVALID_ARGUMENT, never a
runtime failure deep in a graph.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from beamline_serving.core import storage
from beamline_serving.core.tensors import dtype_of_array, type_name
from beamline_serving.errors import Code, ServingError, invalid_argument

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SERVE_TAG = "serve"


@dataclass(frozen=True)
class TensorInfo:
    alias: str
    dtype: int
    shape: tuple[int, ...] | None  # None: unknown rank; -1: unknown dimension

    def shape_string(self) -> str:
        if self.shape is None:
            return "[?]"
        return "[" + ",".join(str(d) for d in self.shape) + "]"

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            want < 0 or want == got for want, got in zip(self.shape, shape, strict=True)
        )


def _tensor_info(alias: str, proto) -> TensorInfo:
    shape_proto = proto.tensor_shape
    shape = None if shape_proto.unknown_rank else tuple(d.size for d in shape_proto.dim)
    return TensorInfo(alias, proto.dtype, shape)


# Unbatched calls faster than this (running average) run on the event loop itself.
QUICK_CALL_SECONDS = 0.002


class Signature:
    """A signature of a loaded SavedModel, callable with a dict of numpy arrays."""

    def __init__(self, name: str, signature_def, function) -> None:
        self.name = name
        self.method_name: str = signature_def.method_name
        self.inputs = {k: _tensor_info(k, v) for k, v in signature_def.inputs.items()}
        self.outputs = {k: _tensor_info(k, v) for k, v in signature_def.outputs.items()}
        self._function = function
        # ConcreteFunction._call_flat skips the structured-argument binding that dominates the
        # cost of calling a small model; safe because inputs are checked here first. Used only
        # when the function's flat arguments are exactly the signature's inputs.
        keywords = list(getattr(function, "_arg_keywords", None) or [])
        self._flat_order = (
            keywords
            if hasattr(function, "_call_flat") and sorted(keywords) == sorted(self.inputs)
            else None
        )
        self._average_seconds: float | None = None  # of single calls; warm-up sets it first

    def check_inputs(self, arrays: dict[str, np.ndarray]) -> None:
        """Raises INVALID_ARGUMENT unless `arrays` has exactly the inputs, types and shapes."""
        if set(arrays) != set(self.inputs):
            sent, wanted = sorted(arrays), sorted(self.inputs)
            extra = sorted(set(sent) - set(wanted))
            missing = sorted(set(wanted) - set(sent))
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(wanted)}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: "
                f"{{{','.join(missing)}}}."
            )
        for index, alias in enumerate(sorted(self.inputs)):
            info, array = self.inputs[alias], arrays[alias]
            got = dtype_of_array(array)
            if got != info.dtype:
                raise invalid_argument(
                    f"Expects arg[{index}] to be {type_name(info.dtype)} but {type_name(got)} "
                    f"is provided (input {alias!r} of signature {self.name!r})."
                )
            if not info.accepts_shape(array.shape):
                got_shape = "[" + ",".join(str(d) for d in array.shape) + "]"
                raise invalid_argument(
                    f"Input {alias!r} of signature {self.name!r} has shape {got_shape}, but the "
                    f"signature expects {info.shape_string()} (-1 = any size)."
                )

    def quick(self) -> bool:
        """Whether calls have been short enough to run without a thread hop."""
        average = self._average_seconds
        return average is not None and average < QUICK_CALL_SECONDS

    def run(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the signature on checked inputs; returns every output as a numpy array."""
        start = time.perf_counter()
        try:
            outputs = self._run(arrays)
        except UnicodeDecodeError as exc:
            # TensorFlow refused an input (e.g. ParseExample on bytes that are no tf.Example)
            # with a message quoting those bytes, and turning that message into text failed.
            raise invalid_argument(
                f"Signature {self.name!r} could not process its input; TensorFlow's error "
                f"quoted input bytes that are not UTF-8 ({exc.reason} at byte {exc.start})."
            ) from None
        elapsed = time.perf_counter() - start
        average = self._average_seconds
        self._average_seconds = elapsed if average is None else 0.9 * average + 0.1 * elapsed
        return outputs

    def warm(self, arrays: dict[str, np.ndarray]) -> None:
        """One call that pays the signature's first-call costs (function instantiation, graph
        optimisation, table initialisation), without counting in its latency average."""
        self._run(arrays)

    def _run(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        if self._flat_order is not None:
            tensors = [_to_tensor(tf, arrays[k]) for k in self._flat_order]
            result = self._function._call_flat(tensors, self._function.captured_inputs)
        else:
            result = self._function(**{k: _to_tensor(tf, v) for k, v in arrays.items()})
        if not isinstance(result, dict):
            result = {next(iter(self.outputs)): result}
        return {k: v.numpy() for k, v in result.items()}


def _to_tensor(tf, array: np.ndarray):
    if array.dtype == object:
        return tf.constant(array, dtype=tf.string)
    return tf.constant(array)


class Servable:
    """A loaded model version. Requests hold a reference while they run; unloading only drops
    the manager's reference, so in-flight requests finish on the version they started on."""

    def __init__(self, name: str, version: int, path: str, meta_graph, loaded) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.signature_def_map = meta_graph.signature_def
        self._loaded = loaded
        self.signatures: dict[str, Signature] = {}
        for key, function in loaded.signatures.items():
            if key in self.signature_def_map:
                self.signatures[key] = Signature(key, self.signature_def_map[key], function)
        # Batch queues per signature, created on first use by the data plane.
        self.queues: dict[str, object] = {}
        self.queue_lock = threading.Lock()
        self.batching = None  # per-model BatchingOptions (batching_params.pbtxt), if any
        self.closed = False

    def signature(self, name: str) -> Signature | None:
        return self.signatures.get(name)

    def close(self) -> None:
        self.closed = True
        with self.queue_lock:
            queues, self.queues = list(self.queues.values()), {}
        for queue in queues:
            queue.close()


def saved_model_file(version_dir: str) -> str | None:
    """The version's saved_model.pb(txt), or None if it is not (yet) complete."""
    for name in SAVED_MODEL_FILES:
        path = storage.join(version_dir, name)
        if storage.is_file(path):
            return path
    return None


def read_meta_graph(version_dir: str, tags: tuple[str, ...] = (SERVE_TAG,)):
    """The MetaGraphDef with exactly `tags`, read from saved_model.pb(txt)."""
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    path = saved_model_file(version_dir)
    if path is None:
        raise ServingError(
            Code.NOT_FOUND,
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
            f"{version_dir}",
        )
    proto = saved_model_pb2.SavedModel()
    try:
        if path.endswith(".pbtxt"):
            text_format.Parse(storage.read_text(path), proto)
        else:
            proto.ParseFromString(storage.read_bytes(path))
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        raise ServingError(Code.DATA_LOSS, f"Can't parse {path} as binary proto: {exc}") from exc
    for meta_graph in proto.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return meta_graph
    raise ServingError(
        Code.NOT_FOUND,
        "Could not find meta graph def matching supplied tags: { "
        + " ".join(tags)
        + " }. To inspect available tag-sets in the SavedModel, please use the SavedModel "
        "CLI: `saved_model_cli`",
    )


def load_servable(name: str, version: int, version_dir: str) -> Servable:
    """Loads a SavedModel version; raises ServingError (with TF's code) if it cannot be loaded."""
    import tensorflow as tf

    from beamline_serving.errors import from_exception

    meta_graph = read_meta_graph(version_dir)
    try:
        loaded = tf.saved_model.load(version_dir, tags=[SERVE_TAG])
    except Exception as exc:  # any load failure is reported on the version's status
        raise from_exception(exc) from exc
    return Servable(name, version, version_dir, meta_graph, loaded)
