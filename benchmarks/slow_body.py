"""Benchmark: a small REST request's latency while large JSON bodies arrive on another connection.

    .venv/bin/python benchmarks/slow_body.py                 # 16 MiB bodies, 10 s per scenario
    .venv/bin/python benchmarks/slow_body.py --body-mib 30 --duration 20

One `beamline serve` (the small penguin-like test model, batching off). One client sends small
Predict requests one after another on a keep-alive connection and records each latency. The
scenarios, in the same run:

- `alone`: nothing else is sent.
- `unknown model`: meanwhile another connection sends, one after another, a body of `--body-mib`
  MiB of floats ending in a NaN (the body orjson refuses and only the slow lenient parser reads)
  to a model that is not served. The server looks the model up first and answers 404 without
  decoding the body, so what is left is reading the bytes.
- `served model`: the same body to the served model: it is decoded (lenient path) in the decode
  pool, off the event loop, then refused 400 (a list of floats does not fit its three inputs).

Prints the small request's p50/p99 per scenario and their ratio to `alone`. The server and both
clients share this machine's cores: the ratios are what matters.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beamline.settings import apply_tf_environment  # noqa: E402

apply_tf_environment()

from benchmarks.serving import percentile  # noqa: E402
from tests.serving.support import example_rows, start_server, write_test_model  # noqa: E402

MODEL = "penguin"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--body-mib", type=int, default=16, help="size of each large body")
    return parser.parse_args()


def request_bytes(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def read_answer(sock: socket.socket) -> int:
    """Reads one answer off a keep-alive connection; its status."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split(" ")[1])


def small_client(port: int, payload: bytes, duration: float) -> list[float]:
    latencies = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stop_at = time.perf_counter() + duration
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            sock.sendall(payload)
            status = read_answer(sock)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                raise RuntimeError(f"the small request was answered {status}")
    return latencies


def large_sender(port: int, payload: bytes, stop: threading.Event, statuses: Counter) -> None:
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port)) as sock:
            while not stop.is_set():
                sock.sendall(payload)
                statuses[read_answer(sock)] += 1


def scenario(port: int, small: bytes, large: bytes | None, duration: float):
    """(small request latencies, statuses of the large bodies answered meanwhile)."""
    statuses: Counter = Counter()
    stop = threading.Event()
    sender = None
    if large is not None:
        sender = threading.Thread(target=large_sender, args=(port, large, stop, statuses))
        sender.start()
    try:
        latencies = small_client(port, small, duration)
    finally:
        stop.set()
        if sender is not None:
            sender.join()
    return latencies, statuses


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="beamline-bench-"))
    base = work / MODEL
    base.mkdir()
    write_test_model(base / "1", 1)
    small_body = json.dumps({"instances": [example_rows()[0]]}).encode()
    small = request_bytes(f"/v1/models/{MODEL}:predict", small_body)
    floats = args.body_mib * 1024 * 1024 // 4
    nan_body = b'{"instances": [' + b"0.5," * floats + b"NaN]}"
    scenarios = {
        "alone": None,
        "unknown model": request_bytes("/v1/models/nope:predict", nan_body),
        "served model": request_bytes(f"/v1/models/{MODEL}:predict", nan_body),
    }
    server = start_server(
        model_name=MODEL,
        model_base_path=base,
        log_dir=work,
        args=["--enable_batching=false", f"--max_request_bytes={len(nan_body) + 1024}"],
    )
    try:
        print(f"large body: {len(nan_body) / 2**20:.1f} MiB ending in NaN; "
              f"{args.duration:g} s per scenario")
        print(f"{'scenario':<16}{'small p50 ms':>14}{'p99 ms':>10}{'x p50':>8}{'x p99':>8}"
              f"{'requests':>10}  large bodies answered")
        alone = None
        for name, large in scenarios.items():
            latencies, statuses = scenario(server.rest_port, small, large, args.duration)
            p50, p99 = percentile(latencies, 0.50) * 1e3, percentile(latencies, 0.99) * 1e3
            alone = alone or (p50, p99)
            answered = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
            print(f"{name:<16}{p50:>14.2f}{p99:>10.2f}{p50 / alone[0]:>8.2f}"
                  f"{p99 / alone[1]:>8.2f}{len(latencies):>10}  {answered or '-'}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
