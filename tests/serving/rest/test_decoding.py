"""Large REST bodies: the model is looked up before the body is decoded, large bodies are
decoded off the event loop, and the bytes being decoded at once are bounded. A real model served
in-process (the penguin test model), over a real HttpServer on loopback."""

from __future__ import annotations

import base64
import concurrent.futures
import threading

import pytest
import requests

from beamline_serving.core.config import ModelSpec, RestLimits, VersionPolicy
from beamline_serving.core.dataplane import DataPlane
from beamline_serving.core.metrics import Metrics
from beamline_serving.core.model_manager import ModelManager
from beamline_serving.rest.api import RestApi, create_http_server
from beamline_serving.rest.decoding import DecodePool
from tests.serving.rest.http_support import listening

# A guard against a hung request, far above any answer's real latency; never a speed limit.
HANG = 120
MiB = 1024 * 1024
LIMITS = RestLimits(decode_in_pool_bytes=MiB, max_decoding_bytes=3 * MiB)


class GatedDecoding(DecodePool):
    """The pool, with each large body held before it is decoded until the test releases it:
    what the server does meanwhile is then observable without timing anything."""

    def __init__(self, limits: RestLimits) -> None:
        super().__init__(limits)
        self.started = threading.Event()
        self.release = threading.Event()

    async def run(self, size, decode):
        if size < self.limits.decode_in_pool_bytes:
            return await super().run(size, decode)

        def held():
            self.started.set()
            assert self.release.wait(HANG)
            return decode()

        return await super().run(size, held)


@pytest.fixture(scope="module")
def dataplane(model_dir):
    manager = ModelManager(
        loader=lambda name, version, path: plane.load(name, version, path),
        specs=lambda: [
            ModelSpec("penguin", str(model_dir / "models" / "penguin"), VersionPolicy())
        ],
    )
    plane = DataPlane(manager, Metrics(), enable_warmup=False)
    manager.poll()
    yield plane
    plane.close()


@pytest.fixture
def server(dataplane):
    """(url, the gated decode pool) of a REST server over the in-process data plane."""
    api = RestApi(dataplane, limits=LIMITS)
    api.decoder = gated = GatedDecoding(LIMITS)
    http = create_http_server(api, max_request_bytes=64 * MiB)
    with listening(http) as port:
        yield f"http://127.0.0.1:{port}", gated
        gated.release.set()


def bytes_body(size: int) -> bytes:
    """A `bytes` predict body of about `size` bytes: one base64 string (cheap to run and answer,
    however large)."""
    text = base64.b64encode(b"\x07" * (size * 3 // 4))
    return b'{"signature_name": "bytes", "instances": [{"b64": "' + text + b'"}]}'


SMALL = b'{"signature_name": "matrix", "instances": [[0.5, 0.25]]}'


def post(url: str, model: str, body: bytes) -> requests.Response:
    return requests.post(f"{url}/v1/models/{model}:predict", data=body, timeout=HANG)


def test_a_large_body_to_a_model_not_served_is_404_without_being_decoded(server):
    url, gated = server
    # Not JSON at all, and a NaN that would send it down the slow lenient parser: decoding it
    # could only end in a 400.
    body = b"{" + b"NaN, " * MiB + b"garbage"
    resp = post(url, "nope", body)
    assert (resp.status_code, resp.json()) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )
    assert not gated.started.is_set()  # nothing reached the decoder


def test_a_small_request_is_answered_while_a_large_body_is_being_decoded(server):
    url, gated = server
    body = bytes_body(3 * MiB)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        large = pool.submit(post, url, "penguin", body)
        assert gated.started.wait(HANG)
        small = post(url, "penguin", SMALL)
        assert (small.status_code, small.json()) == (200, {"predictions": [[1.0, 0.5]]})
        assert not large.done()  # still held in the pool: the loop answered around it
        gated.release.set()
        answer = large.result(HANG)
    assert answer.status_code == 200
    assert answer.json()["predictions"][0]["length"] == 3 * MiB * 3 // 4


def test_bodies_beyond_the_decoding_bound_are_refused_503(server):
    url, gated = server
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, url, "penguin", bytes_body(2 * MiB))
        assert gated.started.wait(HANG)
        second = post(url, "penguin", bytes_body(2 * MiB))  # 4 MiB in the pool > 3 MiB
        assert second.status_code == 503
        assert "retry the request later" in second.json()["error"]
        gated.release.set()
        assert first.result(HANG).status_code == 200
    assert post(url, "penguin", bytes_body(2 * MiB)).status_code == 200  # the bound is freed
