"""Data-plane results -> REST response bodies, by TF Serving's rules (util/json_tensor.cc).

`predictions` (row requests) / `outputs` (columnar), string outputs whose alias ends in `_bytes`
as `{"b64": ...}`, classify/regress `results`, and `{"error": ...}`. float32 values print in their
shortest round-trip form (0.2, not 0.20000000298), as TF Serving does; NaN and Infinity print as
bare tokens.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import orjson

from beamline_serving.errors import invalid_argument
from beamline_serving.rest.json_decode import COLUMNAR

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def error_body(message: str) -> bytes:
    """`{"error": message}`. Always encodes: a message quoting the request may carry a lone
    surrogate (`"\\ud800"` in the JSON), which is not UTF-8; it is written escaped."""
    try:
        return orjson.dumps({"error": message})
    except orjson.JSONEncodeError:
        return orjson.dumps({"error": message.encode("utf-8", "backslashreplace").decode()})


def _jsonable(array: np.ndarray, as_bytes: bool):
    """An output array as something orjson writes TF Serving's way."""
    if array.dtype == object or array.dtype.kind == "S":
        flat = [
            {"b64": base64.b64encode(v).decode("ascii")}
            if as_bytes
            else (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
            for v in array.ravel()
        ]
        return _nest(flat, array.shape)
    if array.ndim == 0:
        return array[()]
    return np.ascontiguousarray(array)


def _nest(flat: list, shape: tuple):
    if not shape:
        return flat[0]
    for size in reversed(shape[1:]):
        flat = [flat[i : i + size] for i in range(0, len(flat), size)] if size else []
    return flat


def _has_non_finite(outputs: dict[str, np.ndarray]) -> bool:
    return any(
        a.dtype.kind == "f" and a.size and not np.isfinite(a).all() for a in outputs.values()
    )


def _dumps(document, outputs: dict[str, np.ndarray]) -> bytes:
    if not _has_non_finite(outputs):
        return orjson.dumps(document, option=_NUMPY)
    # orjson writes NaN as null; TF Serving writes NaN / Infinity / -Infinity tokens.
    return json.dumps(_plain(document), allow_nan=True, separators=(",", ":")).encode()


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32 or value.dtype == np.float16:
            return _nest([float(str(v)) for v in value.ravel()], value.shape)
        return value.tolist()
    if isinstance(value, (np.float32, np.float16)):
        return float(str(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def predict_response(outputs: dict[str, np.ndarray], fmt: str) -> bytes:
    """`{"predictions": ...}` (row) or `{"outputs": ...}` (columnar)."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    values = {k: _jsonable(v, k.endswith("_bytes")) for k, v in outputs.items()}
    if fmt == COLUMNAR:
        body = next(iter(values.values())) if len(values) == 1 else values
        return _dumps({"outputs": body}, outputs)
    batch = -1
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    if len(values) == 1:
        return _dumps({"predictions": next(iter(values.values()))}, outputs)
    rows = [{name: value[i] for name, value in values.items()} for i in range(batch)]
    return _dumps({"predictions": rows}, outputs)


def classify_response(classes: np.ndarray | None, scores: np.ndarray | None) -> bytes:
    """`{"results": [[[label, score], ...], ...]}`."""
    reference = classes if classes is not None else scores
    if reference is None or reference.shape[0] == 0:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows, width = reference.shape[0], reference.shape[1]
    results = []
    for i in range(rows):
        row = []
        for c in range(width):
            label = classes[i, c] if classes is not None else b""
            label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            score = scores[i, c] if scores is not None else np.float32(0.0)
            row.append([label, score])
        results.append(row)
    arrays = {"scores": scores} if scores is not None else {}
    return _dumps({"results": results}, arrays)


def regress_response(values: np.ndarray) -> bytes:
    """`{"results": [v1, v2, ...]}`."""
    if values.size == 0:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    flat = np.ascontiguousarray(values.reshape(-1))
    return _dumps({"results": flat}, {"results": flat})
