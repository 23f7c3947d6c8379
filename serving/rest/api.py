"""TF Serving's REST API over the data plane, served by serving/http1.py.

Routes, their regular expressions and the order of checks follow TF Serving's
http_rest_api_handler.cc and http_rest_api_util.cc, except that a predict/classify/regress
request's model (name, version, label) is looked up before its body is decoded: a body sent to a
model that is not served is answered 404 without spending anything on it (TF Serving parses
first). Small bodies are decoded and answers encoded on the event loop; large bodies are decoded
in a small thread pool (serving/rest/decoding.py). The model runs through the data plane (its
batch queue or its thread pool), so a request never holds a thread while it waits for a batch.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse

import orjson

from beamline_serving.core import answered_version, routing
from beamline_serving.core.config import RestLimits
from beamline_serving.core.dataplane import DataPlane
from beamline_serving.errors import (
    HTTP_PAYLOAD_TOO_LARGE,
    Code,
    ServingError,
    from_exception,
    http_status,
    request_errors,
)
from beamline_serving.rest import json_decode, json_encode
from beamline_serving.rest.decoding import DecodePool
from beamline_serving.rest.http1 import HttpServer, Reply, Request

log = logging.getLogger("beamline.serving")

PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
REST_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
ORIGIN = re.compile(r"https?://")
MAX_INT64 = 2**63 - 1
JSON = "application/json"
REQUEST_KEY = routing.REQUEST_KEY_HEADER.lower()  # http1 keys headers by lower-case name
VERSION_HEADER = routing.VERSION_HEADER.encode()
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    # Beamline's routing headers, so browser clients can send a request key and read the version.
    "Access-Control-Allow-Headers": f"Content-Type, {routing.REQUEST_KEY_HEADER}",
    "Access-Control-Expose-Headers": routing.VERSION_HEADER,
}


class Response:
    __slots__ = ("status", "body", "content_type", "model", "api", "code", "version")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = JSON,
        model: str = "",
        api: str = "",
        code: Code = Code.OK,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.model = model
        self.api = api
        self.code = code
        self.version: int | None = None  # the version that answered, when one did


def error_response(error: ServingError, model: str = "", api: str = "") -> Response:
    return Response(
        http_status(error.code), json_encode.error_body(error.message), JSON, model, api, error.code
    )


class RestApi:
    """Request -> Response, independent of the HTTP server (and callable from any thread)."""

    def __init__(
        self,
        dataplane: DataPlane,
        prometheus_path: str | None = None,
        limits: RestLimits | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.prometheus_path = prometheus_path
        self.limits = limits or RestLimits()
        self.decoder = DecodePool(self.limits)

    def close(self) -> None:
        self.decoder.close()

    async def serve(self, request: Request) -> Reply:
        """The HTTP server's handler."""
        headers = request.headers
        response = await self.handle(
            request.method,
            request.target,
            request.body,
            headers.get("origin", ""),
            headers.get(REQUEST_KEY),
        )
        extra = b""
        if response.version is not None:
            extra = b"%s: %d\r\n" % (VERSION_HEADER, response.version)
        return Reply(response.status, response.body, response.content_type, extra)

    async def handle(
        self,
        method: str,
        target: str,
        body: bytes,
        origin: str = "",
        request_key: str | None = None,
    ) -> Response:
        """The answer to one request; `request_key` is the X-Beamline-Request-Key header."""
        path = target.split("?", 1)[0]
        if self.prometheus_path is not None and path == self.prometheus_path:
            if method != "GET":
                return error_response(
                    ServingError(Code.INVALID_ARGUMENT, f"Unexpected method: {method}")
                )
            return Response(200, self.dataplane.metrics.render().encode(), "text/plain")
        if not REST_PATH.fullmatch(path):
            return error_response(
                ServingError(Code.NOT_FOUND, f"Malformed request: {method} {path}")
            )
        start = time.perf_counter()
        model, api = "", ""
        scope = answered_version.begin()
        try:
            if method == "OPTIONS":
                if not ORIGIN.search(origin):
                    raise ServingError(
                        Code.FAILED_PRECONDITION, "Origin header is missing in CORS preflight"
                    )
                response = Response(200, b"")
            else:
                response = await self._route(method, path, body, request_key)
                model, api = response.model, response.api
        except Exception as exc:  # a bad request must be an answer, never a dead thread
            error = from_exception(exc)
            if error.code == Code.INTERNAL:
                log.exception("Internal error on %s %s", method, path)
            if not api and method == "POST":  # the outcome record names the API that failed
                found = PREDICT_PATH.fullmatch(path)
                api = found.group(4) if found else ""
            response = error_response(error, getattr(exc, "model", model), api)
            model = response.model
        status = response.code.name
        self.dataplane.record_request(
            model, api, "REST", status, (time.perf_counter() - start) * 1e6, scope
        )
        return response

    async def _route(
        self, method: str, path: str, body: bytes, request_key: str | None
    ) -> Response:
        malformed = ServingError(Code.INVALID_ARGUMENT, f"Malformed request: {method} {path}")
        if method == "POST":
            match = PREDICT_PATH.fullmatch(path)
            if match is None:
                raise malformed
            with request_errors():
                name, version, label = _model_info(match)
            verb = match.group(4)
            if verb not in ("predict", "classify", "regress"):
                raise malformed  # TF Serving matches case-insensitively, dispatches exactly
            try:
                with request_errors():
                    key = routing.check_request_key(request_key)
                    job, encode = await self._job(verb, name, version, label, body, key)
                body_out = encode(await self.dataplane.run_async(job))
            except ServingError as exc:
                exc.model = name
                raise
            response = Response(200, body_out, JSON, name, verb)
            response.version = job.servable.version
            return response
        if method == "GET":
            match = STATUS_PATH.fullmatch(path)
            if match is None:
                raise malformed
            with request_errors():
                name, version, label = _model_info(match)
            try:
                if match.group(4) == "metadata":
                    with request_errors():
                        key = routing.check_request_key(request_key)
                    servable_version, body_out = self._metadata(name, version, label, key)
                    response = Response(200, body_out, JSON, name)
                    response.version = servable_version
                    return response
                return Response(200, self._status(name, version, label), JSON, name)
            except ServingError as exc:
                exc.model = name
                raise
        raise malformed

    # -- handlers -------------------------------------------------------------------------

    async def _job(
        self,
        verb: str,
        name: str,
        version: int | None,
        label: str | None,
        body: bytes,
        key: str | None,
    ):
        """The checked job for a :predict / :classify / :regress body, and the encoder of its
        result. Runs inside `request_errors()`: any failure here is the request's fault."""
        # The model first: a body to a model not served costs nothing to refuse.
        servable = self.dataplane.servable(name, version, label, key)
        signature_name, decoded, fmt = await self.decoder.run(
            len(body), lambda: _decode(verb, servable, body)
        )
        if verb == "predict":
            job = self.dataplane.jobs.predict(servable, signature_name, decoded)
            return job, lambda result: json_encode.predict_response(result[1], fmt)
        request_input = decoded
        if verb == "classify":
            job = self.dataplane.jobs.classify(servable, signature_name, request_input)
            return job, lambda result: json_encode.classify_response(
                result[1].classes, result[1].scores
            )
        job = self.dataplane.jobs.regress(servable, signature_name, request_input)
        return job, lambda result: json_encode.regress_response(result[1])

    def _status(self, name: str, version: int | None, label: str | None) -> bytes:
        statuses = self.dataplane.model_status(name, version, label)
        doc = {
            "model_version_status": [
                {
                    "version": str(s.version),
                    "state": s.state,
                    "status": {"error_code": s.error_code.name, "error_message": s.error_message},
                }
                for s in statuses
            ]
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    def _metadata(
        self, name: str, version: int | None, label: str | None, key: str | None
    ) -> tuple[int, bytes]:
        """(version that answered, GetModelMetadata body)."""
        if not name:
            raise ServingError(Code.INVALID_ARGUMENT, "Missing model name in request.")
        servable = self.dataplane.servable(name, version, label, key)
        cached = getattr(servable, "_metadata_json", None)
        if cached is None:
            from google.protobuf import json_format

            signature_defs = json_format.MessageToDict(
                self.dataplane.signature_def_map(servable),
                preserving_proto_field_name=True,
                including_default_value_fields=True,
            )
            doc = {
                "model_spec": {
                    "name": name,
                    "signature_name": "",
                    "version": str(servable.version),
                },
                "metadata": {"signature_def": signature_defs},
            }
            cached = servable._metadata_json = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        return servable.version, cached


def _decode(verb: str, servable, body: bytes):
    """(signature name, decoded inputs, row or columnar format) of a body; reads nothing shared
    but the servable's signatures, so it may run in the decode pool."""
    doc = json_decode.parse_json(body)
    signature_name = json_decode.signature_name(doc)
    if verb != "predict":
        return signature_name, json_decode.classify_regress_input(doc), None
    key = signature_name or "serving_default"
    signature = servable.signature(key)
    if signature is None:
        raise ServingError(
            Code.INVALID_ARGUMENT, f'Serving signature name: "{key}" not found in signature def'
        )
    inputs, fmt = json_decode.predict_inputs(doc, signature.inputs)
    return signature_name, inputs, fmt


def _model_info(match: re.Match) -> tuple[str, int | None, str | None]:
    name = urllib.parse.unquote(match.group(1) or "")
    version_text, label = match.group(2), match.group(3)
    version = None
    if version_text:
        version = int(version_text) if len(version_text) <= 19 else MAX_INT64 + 1
        if version > MAX_INT64:
            raise ServingError(
                Code.INVALID_ARGUMENT, f"Failed to convert version: {version_text} to numeric."
            )
    if label:
        label = urllib.parse.unquote(label)
    return name, version, label or None


def create_http_server(api: RestApi, *, max_request_bytes: int, cors: bool = False) -> HttpServer:
    """The HTTP/1.1 server for `api` (call `await server.listen(host, port)`)."""

    def too_large(limit: int) -> Reply:
        message = (
            f"Request body is larger than the server's limit of {limit} bytes "
            "(beamline serve --max_request_bytes)."
        )
        return Reply(HTTP_PAYLOAD_TOO_LARGE, json_encode.error_body(message))

    return HttpServer(
        api.serve,
        max_body_bytes=max_request_bytes,
        too_large=too_large,
        extra_headers=CORS_HEADERS if cors else None,
        limits=api.limits,
        on_close=api.close,
    )
