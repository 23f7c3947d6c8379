"""Warm-up replay: `<version>/assets.extra/tf_serving_warmup_requests` at load time.

The file is a TFRecord of PredictionLog (at most 1000 records); each request is replayed
`iterations` times before the version becomes AVAILABLE, so the first real request does not pay
for lazy initialisation. A record that fails fails the load, as in TF Serving.

A version without that file (the pipeline's Pusher writes none) is warmed with one synthetic
call per signature instead (Beamline's addition): batch-1 inputs of zeros / empty strings (an
empty string is a valid, empty tf.Example). Otherwise the first requests to a freshly pushed
version each waited 0.2-0.5 s for TensorFlow's first-call work while the old version was already
gone. A synthetic call that the model refuses is ignored: it has done its work by then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from beamline_serving.core import storage
from beamline_serving.errors import Code, ServingError, from_exception, invalid_argument

log = logging.getLogger("beamline.serving")

WARMUP_FILE = ("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000


def warmup_path(version_dir: str) -> str:
    return storage.join(version_dir, *WARMUP_FILE)


def replay(version_dir: str, iterations: int, execute: Callable[[object], None]) -> int:
    """Replays the warm-up file if there is one; returns the number of records read."""
    path = warmup_path(version_dir)
    if not storage.is_file(path):
        return 0
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    count = 0
    try:
        for record in tf.data.TFRecordDataset(path):
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record.numpy())
            except Exception:
                raise invalid_argument(
                    f"Failed to parse warmup record: {record.numpy()[:64]!r} from {path}"
                ) from None
            if log.WhichOneof("log_type") is None:
                raise invalid_argument(f"Failed to parse warmup record from {path}: empty log")
            for _ in range(max(iterations, 1)):
                execute(log)
            count += 1
            if count > MAX_RECORDS:
                raise invalid_argument(
                    f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
                )
    except ServingError:
        raise
    except Exception as exc:
        raise from_exception(exc) from exc
    return count


def unsupported(log) -> ServingError:
    return ServingError(
        Code.UNIMPLEMENTED, f"Unsupported log_type for warmup: {log.WhichOneof('log_type')}"
    )


def synthetic_inputs(signature) -> dict[str, np.ndarray]:
    """Batch-1 inputs matching a signature's dtypes and shapes (unknown dimensions: 1)."""
    from beamline_serving.core.tensors import DT_STRING, NUMPY_DTYPES

    arrays = {}
    for alias, info in signature.inputs.items():
        shape = [1] if info.shape is None else [d if d >= 0 else 1 for d in info.shape]
        if info.dtype == DT_STRING:
            array = np.empty(shape, dtype=object)
            array[...] = b""
        else:
            array = np.zeros(shape, dtype=NUMPY_DTYPES.get(info.dtype, np.float32))
        arrays[alias] = array
    return arrays


def warm_signatures(servable) -> int:
    """One synthetic call per signature; returns how many the model accepted."""
    accepted = 0
    for name, signature in servable.signatures.items():
        try:
            signature.warm(synthetic_inputs(signature))
            accepted += 1
        except Exception as exc:  # noqa: BLE001 - refused inputs still warmed the function
            log.debug("Synthetic warm-up of %s/%s refused: %s", servable.name, name, exc)
    return accepted
