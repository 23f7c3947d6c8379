"""Warm-up replay: `<version>/assets.extra/tf_serving_warmup_requests` at load time.

The file is a TFRecord of PredictionLog (at most 1000 records); each request is replayed
`iterations` times before the version becomes AVAILABLE, so the first real request does not pay
for lazy initialisation. A record that fails fails the load, as in TF Serving.
"""

from __future__ import annotations

from collections.abc import Callable

from serving.core import storage
from serving.core.errors import Code, ServingError, from_exception, invalid_argument

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
