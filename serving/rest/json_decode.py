"""REST request bodies -> arrays and protos, by TF Serving's rules (util/json_tensor.cc), with its
error messages.

Row format (`instances`) and columnar format (`inputs`); binary strings as `{"b64": "..."}`;
classify/regress `examples` (+ `context`) into a tensorflow.serving.Input of tf.Examples. The
answers are written by serving/rest/json_encode.py.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

import numpy as np
import orjson

from beamline_serving.core.servable import TensorInfo
from beamline_serving.core.tensors import (
    DT_BOOL,
    DT_DOUBLE,
    DT_FLOAT,
    DT_INT8,
    DT_INT16,
    DT_INT32,
    DT_INT64,
    DT_STRING,
    DT_UINT8,
    DT_UINT32,
    DT_UINT64,
    NUMPY_DTYPES,
    type_name,
)
from beamline_serving.errors import Code, ServingError, invalid_argument

ROW, COLUMNAR = "row", "columnar"
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_RANGES = {
    DT_INT32: _INT32,
    DT_INT16: _INT32,  # TF Serving checks IsInt() and narrows silently
    DT_INT8: _INT32,
    DT_UINT8: _INT32,
    DT_INT64: _INT64,
    DT_UINT32: (0, 2**32 - 1),
    DT_UINT64: (0, 2**64 - 1),
}
_UINT64_MAX = 2**64 - 1
_MAX_DEBUG = 256
MAX_RANK = 32  # numpy's limit on dimensions (TensorFlow allows more; no model here needs it)

# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

_PY_TO_RAPIDJSON = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


# Bodies this large that orjson refuses are parsed again by the lenient parser (ten times
# slower) only if they hold a token nothing else accepts: NaN or Infinity. Its other uses, TF
# Serving's tolerance of trailing bytes, integers past uint64 and lone surrogates, and rapidjson's
# wording of errors, are not worth a second slow parse of a body that large.
LENIENT_RETRY_MAX_BYTES = 1024 * 1024
_NON_FINITE_TOKENS = (b"NaN", b"Infinity")


def parse_json(body: bytes) -> dict:
    """The request document; INVALID_ARGUMENT `JSON Parse error: ...` or `... Is not object`."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if len(body) > LENIENT_RETRY_MAX_BYTES and not _may_hold_non_finite(body):
            raise invalid_argument(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
        doc = _parse_lenient(body)
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def _may_hold_non_finite(body: bytes) -> bool:
    return any(token in body for token in _NON_FINITE_TOKENS)


def _parse_lenient(body: bytes):
    # TF Serving's parser also accepts NaN/Infinity and ignores anything after the document;
    # Python's json does the former and raw_decode the latter.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_argument(
            f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}"
        ) from None
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if not stripped:
        raise invalid_argument(f"JSON Parse error: The document is empty. at offset: {offset}")
    try:
        decoder = json.JSONDecoder(parse_float=_finite_float, parse_int=_bounded_int)
        doc, _ = decoder.raw_decode(stripped)
    except _NumberTooBig as exc:
        raise invalid_argument(
            "JSON Parse error: Number too big to be stored in double. at offset: "
            f"{max(text.find(exc.literal), 0)}"
        ) from None
    except json.JSONDecodeError as exc:
        message = _PY_TO_RAPIDJSON.get(exc.msg, exc.msg)
        raise invalid_argument(
            f"JSON Parse error: {message} at offset: {exc.pos + offset}"
        ) from None
    except RecursionError:
        raise invalid_argument(
            "JSON Parse error: Document is nested too deeply. at offset: 0"
        ) from None
    return doc


class _NumberTooBig(Exception):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # rapidjson refuses a number literal beyond double range
        raise _NumberTooBig(literal)
    return value


_INT_LITERAL_MAX_DIGITS = 20  # beyond uint64 either way


def _bounded_int(literal: str) -> int | float:
    """An integer literal as rapidjson (and orjson) read it: an integer within int64/uint64,
    else a double; beyond double range (or Python's int-string limit) an error, not a crash."""
    if len(literal.lstrip("-")) <= _INT_LITERAL_MAX_DIGITS:
        value = int(literal)
        if _INT64[0] <= value <= _UINT64_MAX:
            return value
    return _finite_float(literal)


def signature_name(doc: dict) -> str:
    """The optional `signature_name` (FillSignature)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key "
            "must be a string value."
        )
    return name


def json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


class _Full(Exception):
    pass


def debug_string(value) -> str:
    """rapidjson PrettyWriter output (single-line arrays), cut off after 256 bytes like
    JsonValueToDebugString; stops walking there, so a huge document costs nothing."""
    parts: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text)
        if size >= _MAX_DEBUG:
            raise _Full

    def walk(v, depth: int) -> None:
        if isinstance(v, dict):
            if not v:
                emit("{}")
                return
            emit("{")
            for i, (k, item) in enumerate(v.items()):
                emit(("," if i else "") + "\n" + "    " * (depth + 1))
                emit(json.dumps(k, ensure_ascii=False) + ": ")
                walk(item, depth + 1)
            emit("\n" + "    " * depth + "}")
        elif isinstance(v, list):
            emit("[")
            for i, item in enumerate(v):
                if i:
                    emit(", ")
                walk(item, depth)
            emit("]")
        elif isinstance(v, float) and not math.isfinite(v):
            emit("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
        else:
            emit(json.dumps(v, ensure_ascii=False))

    try:
        walk(value, 0)
    except _Full:
        pass
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# JSON values -> numpy arrays
# ---------------------------------------------------------------------------------------------


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _type_error(value, dtype: int) -> ServingError:
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {json_type(value)} is not of expected type: "
        f"{type_name(dtype)}"
    )


def _b64_decode(value) -> bytes:
    if not _is_b64(value):
        raise invalid_argument(
            f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
        )
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _leaves(values: list, dtype: int) -> list:
    """Type-checks a flat list of JSON leaves for `dtype` (AddValueToTensor), converting strings."""
    if dtype in (DT_FLOAT, DT_DOUBLE):
        for v in values:
            t = type(v)
            if t is not float and t is not int:
                raise _type_error(v, dtype)
        return values
    if dtype in _RANGES:
        low, high = _RANGES[dtype]
        for v in values:
            if type(v) is not int or not low <= v <= high:
                raise _type_error(v, dtype)
        return values
    if dtype == DT_BOOL:
        for v in values:
            if type(v) is not bool:
                raise _type_error(v, dtype)
        return values
    if dtype == DT_STRING:
        out = []
        for v in values:
            if type(v) is str:
                out.append(v.encode("utf-8", "surrogatepass"))
            elif isinstance(v, dict):
                out.append(_b64_decode(v))
            else:
                raise _type_error(v, dtype)
        return out
    raise ServingError(
        Code.UNIMPLEMENTED,
        f"Conversion of JSON Value: {debug_string(values[0] if values else None)} to type: "
        f"{type_name(dtype)}",
    )


def _dense_shape(value) -> list[int]:
    """GetDenseTensorShape: the shape implied by following the first element of each list."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_RANK:
            raise invalid_argument(
                f"JSON Value: lists nested more than {MAX_RANK} deep; a tensor has at most "
                f"{MAX_RANK} dimensions here."
            )
        if not value:
            break
        value = value[0]
    return shape


def _flatten(value, level: int, shape: list[int], out: list) -> None:
    """FillTensorProto's checks: every leaf at depth rank, every list of the expected size."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in "
                f"the JSON DOM. Expected at level: {rank}"
            )
        out.append(value)
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected "
            f"size: {shape[level]}"
        )
    if level == rank - 1:
        for v in value:
            if isinstance(v, list):
                raise invalid_argument(
                    f"Encountered list at unexpected level: {level + 1} expected < {rank}"
                )
        out.extend(value)
        return
    for v in value:
        _flatten(v, level + 1, shape, out)


def to_array(value, dtype: int) -> np.ndarray:
    """One JSON value (scalar or nested lists) as an array of `dtype`."""
    shape = _dense_shape(value)
    flat: list = []
    _flatten(value, 0, shape, flat)
    leaves = _leaves(flat, dtype)
    np_dtype = NUMPY_DTYPES[dtype]
    if dtype == DT_STRING:
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
    else:
        array = np.array(leaves, dtype=np_dtype)
    return array.reshape(shape)


def _shape_string(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def predict_inputs(doc: dict, infos: dict[str, TensorInfo]) -> tuple[dict[str, np.ndarray], str]:
    """Input arrays and the request format (`row` or `columnar`) from a predict document."""
    if not infos:
        raise invalid_argument("Failed to get input map for signature: DEFAULT")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(
                f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid_argument(
                f"JSON Value: {debug_string(doc)} No values in 'instances' array"
            )
        return _instances(instances, infos), ROW
    if has_inputs:
        return _columnar(doc["inputs"], infos), COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _instances(instances: list, infos: dict[str, TensorInfo]) -> dict[str, np.ndarray]:
    first = instances[0]
    if not isinstance(first, dict) and len(infos) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    objects = isinstance(first, dict) and not _is_b64(first)
    if objects:
        fast = _instances_fast(instances, infos)
        if fast is not None:
            return fast
    names = sorted(infos)
    columns: dict[str, list] = {}
    shapes: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def add(item, name: str) -> None:
        if name not in infos:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        shape = _dense_shape(item)
        flat: list = []
        _flatten(item, 0, shape, flat)
        leaves = _leaves(flat, infos[name].dtype)
        if name not in sizes:
            sizes[name], shapes[name] = len(leaves), shape
        elif sizes[name] != len(leaves):
            raise invalid_argument(f"Expecting tensor size: {sizes[name]} but got: {len(leaves)}")
        elif shapes[name] != shape:
            raise invalid_argument(
                f"Expecting shape {_shape_string(shapes[name])} but got: {_shape_string(shape)}"
            )
        columns.setdefault(name, []).extend(leaves)

    for index, element in enumerate(instances):
        if objects:
            if not isinstance(element, dict) or _is_b64(element):
                raise invalid_argument(
                    f"Expecting object but got list at item {index} of input list"
                )
            for name, item in element.items():
                try:
                    add(item, name)
                except ServingError as exc:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {name} of 'instances' list. "
                        f"Error: {exc.status_string()}"
                    ) from None
            if set(element) != set(infos):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_string(element)} keys must be equal to: {','.join(names)}"
                )
        else:
            if isinstance(element, dict) and not _is_b64(element):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            try:
                add(element, names[0])
            except ServingError as exc:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. Error: "
                    f"{exc.status_string()}"
                ) from None
    count = len(instances)
    return {
        name: _column_array(values, infos[name].dtype, [count, *shapes[name]])
        for name, values in columns.items()
    }


def _column_array(values: list, dtype: int, shape: list[int]) -> np.ndarray:
    if dtype == DT_STRING:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    return np.array(values, dtype=NUMPY_DTYPES[dtype]).reshape(shape)


def _instances_fast(instances: list, infos: dict[str, TensorInfo]) -> dict[str, np.ndarray] | None:
    """Row objects of scalars, the common case, column by column; None means take the full
    path (which also produces the exact error for anything irregular)."""
    keys = infos.keys()
    for row in instances:
        if type(row) is not dict or row.keys() != keys:
            return None
    out = {}
    count = len(instances)
    for name, info in infos.items():
        values = [row[name] for row in instances]
        for v in values:
            if type(v) is list or type(v) is dict:
                return None
        try:
            leaves = _leaves(values, info.dtype)
        except ServingError:
            return None
        out[name] = _column_array(leaves, info.dtype, [count])
    return out


def _columnar(value, infos: dict[str, TensorInfo]) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_b64(value):
        if len(infos) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        name, info = next(iter(infos.items()))
        return {name: to_array(value, info.dtype)}
    out = {}
    for name in sorted(infos):
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        out[name] = to_array(value[name], infos[name].dtype)
    return out


# ---------------------------------------------------------------------------------------------
# Classify / Regress requests -> tensorflow.serving.Input
# ---------------------------------------------------------------------------------------------


def classify_regress_input(doc: dict):
    """A tensorflow.serving.Input (example list, with context if given) from the document."""
    from tensorflow_serving.apis import input_pb2

    request_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        _example_from_json(doc["context"], request_input.example_list_with_context.context)
    if "examples" not in doc:
        raise invalid_argument(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is "
            "expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise invalid_argument(
            f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array"
        )
    if not examples:
        raise invalid_argument(
            f"JSON Value: {debug_string(doc)} 'examples' value is an empty array"
        )
    target = (
        request_input.example_list_with_context.examples
        if has_context
        else request_input.example_list.examples
    )
    for value in examples:
        _example_from_json(value, target.add())
    return request_input


_KINDS = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _example_from_json(value, example) -> None:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {json_type(value)}")
    features = example.features.feature
    for name, content in value.items():
        feature = features[name]
        for element in content if isinstance(content, list) else [content]:
            _add_feature_value(element, name, feature)


def _kind_error(name: str, feature) -> ServingError:
    kind = _KINDS[feature.WhichOneof("kind")]
    return invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _add_feature_value(value, name: str, feature) -> None:
    kind = feature.WhichOneof("kind")
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise invalid_argument(
            f"Feature: {name} has element with unexpected JSON type: {json_type(value)}"
        )
    if isinstance(value, bool):
        if kind not in (None, "int64_list"):
            raise _kind_error(name, feature)
        feature.int64_list.value.append(1 if value else 0)
    elif isinstance(value, dict):
        if kind not in (None, "bytes_list"):
            raise _kind_error(name, feature)
        feature.bytes_list.value.append(_b64_decode(value))
    elif isinstance(value, str):
        if kind not in (None, "bytes_list"):
            raise _kind_error(name, feature)
        feature.bytes_list.value.append(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, float):
        if kind not in (None, "float_list"):
            raise _kind_error(name, feature)
        feature.float_list.value.append(value)
    else:
        if kind not in (None, "int64_list"):
            raise _kind_error(name, feature)
        if value > _INT64[1]:
            raise invalid_argument(
                f"Feature: {name} has uint64_t element. Only int64_t is supported."
            )
        if value < _INT64[0]:
            feature.float_list.value.append(float(value))  # rapidjson reads it as a double
        else:
            feature.int64_list.value.append(value)
