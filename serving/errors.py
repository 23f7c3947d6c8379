"""The one place where serving errors get their status codes.

Everything below the protocol adapters raises `ServingError(code, message)` with a canonical
(gRPC/absl) status code; the REST adapter turns it into an HTTP status with `http_status()` and the
gRPC adapter into a `grpc.StatusCode` with `grpc_status()`. The mapping is TF Serving's
(model_servers/http_server.cc ToHTTPStatusCode).

The server's bottom layer (pyproject.toml's import contracts): the core, the request log, the
adapters and the workers all raise these, so it imports nothing of the server itself.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator


class Code(enum.IntEnum):
    """Canonical status codes (tensorflow.error.Code / absl::StatusCode), same numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class ConfigError(Exception):
    """Bad server options or configuration files (flags, model config, batching, schema).

    The server's own error: the `beamline serve` command maps it to its usage exit code (2);
    sent over the API (HandleReloadConfigRequest) it is an INVALID_ARGUMENT.
    """


class ServingError(Exception):
    """A request or load failure with a canonical status code and a message for the client."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def status_string(self) -> str:
        """`CODE: message`, as absl::Status::ToString() prints it (used inside nested messages)."""
        return f"{self.code.name}: {self.message}"


def invalid_argument(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(Code.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(Code.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
    return ServingError(Code.UNAVAILABLE, message)


def internal(message: str) -> ServingError:
    return ServingError(Code.INTERNAL, message)


_HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# Statuses of our own HTTP layer that have no canonical code (TF Serving's HTTP server has no body
# limit; Beamline adds one and answers it like any HTTP server).
HTTP_PAYLOAD_TOO_LARGE = 413


def http_status(code: Code) -> int:
    """The HTTP status TF Serving answers for a canonical code."""
    return _HTTP_STATUS.get(code, 500)


def grpc_status(code: Code):
    """The `grpc.StatusCode` for a canonical code (same numbering)."""
    import grpc

    for status in grpc.StatusCode:
        if status.value[0] == int(code):
            return status
    return grpc.StatusCode.UNKNOWN


_MAX_DETAIL = 300


def bad_request(exc: BaseException, what: str = "request") -> ServingError:
    """A failure while decoding or checking a request, as the client's error.

    Everything a request can make the decoders trip over (Python's int-string limit, a number
    too large for a float, nesting past numpy's 32 dimensions or the recursion limit, text that
    is not UTF-8 or holds lone surrogates, a message that does not parse) is INVALID_ARGUMENT,
    except running out of memory (RESOURCE_EXHAUSTED).
    """
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, MemoryError):
        return ServingError(Code.RESOURCE_EXHAUSTED, f"Out of memory while reading the {what}.")
    if isinstance(exc, RecursionError):
        return invalid_argument(f"The {what} is nested too deeply to process.")
    detail = str(exc)
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "..."
    return invalid_argument(f"Malformed {what}: {type(exc).__name__}: {detail}")


@contextlib.contextmanager
def request_errors(what: str = "request") -> Iterator[None]:
    """The one place where decoding and checking failures become INVALID_ARGUMENT: wrap every
    step between the bytes on the wire and a checked job (never the model run itself)."""
    try:
        yield
    except ServingError:
        raise
    except Exception as exc:
        raise bad_request(exc, what) from None


def from_exception(exc: BaseException) -> ServingError:
    """Any exception as a ServingError: TensorFlow errors keep their code, the rest are INTERNAL.

    A bug or an unexpected input must become an error answer, never a dead worker.
    """
    if isinstance(exc, ServingError):
        return exc
    code = getattr(exc, "error_code", None)  # tf.errors.OpError carries a canonical code
    if isinstance(code, int) and 0 < code <= 16:
        message = getattr(exc, "message", None) or str(exc)
        return ServingError(Code(code), message)
    if isinstance(exc, ConfigError):  # a bad config sent over the API, e.g. ReloadConfig
        return invalid_argument(str(exc))
    if isinstance(exc, RecursionError):
        return invalid_argument("Request is nested too deeply to process.")
    if isinstance(exc, MemoryError):
        return ServingError(Code.RESOURCE_EXHAUSTED, "Out of memory while processing the request.")
    return internal(f"{type(exc).__name__}: {exc}")
