"""Benchmark `beamline serve`: REST and gRPC latency/throughput vs. the SavedModel in-process.

    .venv/bin/python benchmarks/serving.py                 # builds a small penguin-like model
    .venv/bin/python benchmarks/serving.py --model-base-path beamline_runs/serving/penguin \\
        --instances '[{"bill_length_mm": 39.1, ...}]'      # a pushed pipeline model

Measures, for 1, 8 and 32 concurrent clients, with batching off and on: p50/p99 latency and
throughput of single-row Predict requests over REST (JSON) and gRPC, against the same SavedModel
called in-process one request at a time (`signature(**tensors)`, outputs to numpy). Clients are
asyncio raw HTTP/1.1 keep-alive connections for REST and threads on the synchronous gRPC stub
(pre-serialized requests), so the clients cost little next to the server. The server, clients
and baseline share this machine's cores: the ratios are what matters. Prints a table and the
ratios against the targets (single request p50 within 1 ms of in-process; 32 clients with
batching at least 3x the in-process rate).

Then "p99 during a push": clients keep sending while a new version is pushed into the served
model directory (renamed into place, as the Pusher does) and loaded; the p99 from the push until
the new version answers, against the p99 of the same clients just before it (target: <= 2x).

    .venv/bin/python benchmarks/serving.py --only-push      # just the push scenario
    .venv/bin/python benchmarks/serving.py --logging-cost   # request logging at rate 1.0 vs off

`--load-generator c` drives the same scenarios with C load generators instead of the Python
clients: wrk (REST, HTTP/1.1 keep-alive) and h2load (gRPC: HTTP/2 POSTs of the framed request,
one stream per connection), both from Debian (`apt-get install wrk nghttp2-client`). They cost a
fraction of the Python clients' CPU per request, so the server gets more of the shared cores;
h2load reports a mean, not percentiles (its p50 column shows the mean).

`--logging-cost` instead measures what request logging costs: two servers (batching off), one
with `--request_log_dir` at sample rate 1.0, the other without; REST and gRPC at 32 clients (or
--concurrency), rounds alternating between the servers; medians of p50 and throughput, and the
throughput loss (target <= 10%).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beamline.settings import apply_tf_environment  # noqa: E402

apply_tf_environment()

from tests.serving.support import example_rows, start_server, write_test_model  # noqa: E402

BATCHING = """
max_batch_size { value: 32 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000 }
num_batch_threads { value: %d }
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", type=Path, help="model directory of <version>/ dirs")
    parser.add_argument("--model-name", default="penguin")
    parser.add_argument("--instances", help="JSON list with the single instance to send")
    parser.add_argument(
        "--hidden-units",
        type=int,
        default=64,
        help="width of the built model's hidden layers (0: none)",
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scenario")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--batch-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--rest-workers", type=int, default=1,
        help="REST server processes of the batching server (beamline serve --rest_api_workers)",
    )
    parser.add_argument("--push-rounds", type=int, default=3, help="pushes measured (0: none)")
    parser.add_argument("--push-clients", type=int, default=4)
    parser.add_argument("--only-push", action="store_true", help="run only the push scenario")
    parser.add_argument(
        "--push-warmup-file",
        action="store_true",
        help="give pushed versions a warm-up file (pipeline pushes have none)",
    )
    parser.add_argument(
        "--logging-cost", action="store_true", help="measure request logging (rate 1.0) vs off"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (--logging-cost)")
    parser.add_argument(
        "--load-generator", choices=("python", "c"), default="python",
        help="python: asyncio/grpc clients in this process; c: wrk and h2load",
    )
    return parser.parse_args()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


class Result:
    def __init__(
        self,
        name: str,
        latencies: list[float],
        elapsed: float,
        cpu_seconds: float = 0.0,
        client_cpu_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self.p50 = percentile(latencies, 0.50) * 1e3
        self.p99 = percentile(latencies, 0.99) * 1e3
        self.rate = len(latencies) / elapsed
        self.count = len(latencies)
        # CPU spent per request by the server (or the in-process caller): unlike wall-clock
        # rates, it hardly moves when other work shares the machine.
        self.cpu_ms = cpu_seconds / max(len(latencies), 1) * 1e3
        # The load generator's own CPU per request (this process): when it nears the server's,
        # the clients, not the server, bound the rate on these shared cores.
        self.client_cpu_ms = client_cpu_seconds / max(len(latencies), 1) * 1e3


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU time of a server: the process and its REST workers (all threads)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in (root, *root.children(recursive=True)):
        times = proc.cpu_times()
        total += times.user + times.system
    return total


# -- in-process baseline ----------------------------------------------------------------------


def load_signature(version_dir: Path):
    import tensorflow as tf

    from beamline_serving.core.servable import read_meta_graph

    loaded = tf.saved_model.load(str(version_dir))
    function = loaded.signatures["serving_default"]
    meta_graph = read_meta_graph(str(version_dir))
    return loaded, function, meta_graph.signature_def["serving_default"]


def in_process(function, arrays, duration: float) -> Result:
    import tensorflow as tf

    def call():
        outputs = function(**{k: tf.constant(v) for k, v in arrays.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    for _ in range(50):
        call()
    latencies = []
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < duration:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    return Result("in-process", latencies, elapsed, time.process_time() - cpu)


# -- clients ----------------------------------------------------------------------------------


async def read_ok_answer(reader: asyncio.StreamReader) -> None:
    """Reads one HTTP/1.1 response; raises unless it is a 200."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"REST answered {head[:60]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)


async def rest_worker(port: int, request: bytes, stop_at: float, warm_until: float, out: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            t = time.perf_counter()
            if t >= stop_at:
                return
            writer.write(request)
            await read_ok_answer(reader)
            if t >= warm_until:
                out.append(time.perf_counter() - t)
    finally:
        writer.close()


def grpc_worker(method, request: bytes, stop_at: float, warm_until: float, out: list) -> None:
    while True:
        t = time.perf_counter()
        if t >= stop_at:
            return
        method(request, timeout=30)
        if t >= warm_until:
            out.append(time.perf_counter() - t)


async def run_clients(kind: str, server, payload: bytes, clients: int, duration: float) -> Result:
    import grpc

    latencies: list[float] = []
    now = time.perf_counter()
    warm_until = now + min(0.5, duration / 4)
    stop_at = warm_until + duration
    cpu_marks: list[float] = []

    client_marks: list[float] = []

    async def mark_cpu() -> None:
        await asyncio.sleep(max(warm_until - time.perf_counter(), 0))
        cpu_marks.append(process_cpu_seconds(server.process.pid))
        client_marks.append(time.process_time())

    marker = asyncio.ensure_future(mark_cpu())
    if kind == "REST":
        tasks = [
            rest_worker(server.rest_port, payload, stop_at, warm_until, latencies)
            for _ in range(clients)
        ]
        await asyncio.gather(*tasks)
    else:
        # The synchronous stub in threads: cheaper per call than grpc.aio's client.
        with grpc.insecure_channel(server.grpc_target) as channel:
            method = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
            threads = [
                threading.Thread(
                    target=grpc_worker, args=(method, payload, stop_at, warm_until, latencies)
                )
                for _ in range(clients)
            ]
            for thread in threads:
                thread.start()
            await asyncio.sleep(max(warm_until - time.perf_counter(), 0))
            cpu_marks.append(process_cpu_seconds(server.process.pid))
            client_marks.append(time.process_time())
            for thread in threads:
                thread.join()
    await marker
    cpu = process_cpu_seconds(server.process.pid) - cpu_marks[0]
    client_cpu = time.process_time() - client_marks[0]
    return Result(kind, latencies, time.perf_counter() - warm_until, cpu, client_cpu)


def _c_tool(name: str) -> str:
    import shutil

    path = shutil.which(name)
    if path is None:
        sys.exit(f"--load-generator c needs {name}: apt-get install wrk nghttp2-client")
    return path


def _ms(text: str) -> float:
    """wrk/h2load durations ("812.00us", "1.20ms", "2.1s") in ms."""
    import re

    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text.strip()).groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_c_clients(kind: str, server, request: bytes, clients: int, duration: float) -> Result:
    """wrk (REST) or h2load (gRPC) against the server; the server's CPU from /proc."""
    import re
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        if kind == "REST":
            head, _, body = request.partition(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            script = Path(tmp) / "post.lua"
            script.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(body.decode())}\n"
            )
            cmd = [_c_tool("wrk"), "-t1", f"-c{clients}", f"-d{duration:g}s", "--latency",
                   "-s", str(script), f"http://127.0.0.1:{server.rest_port}{path}"]
        else:
            body_file = Path(tmp) / "request.bin"
            body_file.write_bytes(b"\x00" + len(request).to_bytes(4, "big") + request)
            cmd = [_c_tool("h2load"), "-t1", f"-c{clients}", "-m1", f"-D{duration:g}",
                   "-d", str(body_file),
                   "-H", "content-type: application/grpc", "-H", "te: trailers",
                   f"http://{server.grpc_target}/tensorflow.serving.PredictionService/Predict"]
        before = process_cpu_seconds(server.process.pid)
        client_before = os.times()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        client_after = os.times()
        cpu = process_cpu_seconds(server.process.pid) - before
    client_cpu = (client_after.children_user + client_after.children_system
                  - client_before.children_user - client_before.children_system)
    if kind == "REST":
        if "Non-2xx" in out:
            raise RuntimeError(f"wrk saw errors:\n{out}")
        rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
        p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))
        p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))
        elapsed = duration
    else:
        done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
        if done is None or done.group(1) != done.group(2):
            raise RuntimeError(f"h2load saw errors:\n{out}")
        rate = float(re.search(r"finished in [^,]+, ([0-9.]+) req/s", out).group(1))
        mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
        p50 = p99 = _ms(mean)
        elapsed = duration
    count = max(int(rate * elapsed), 1)
    result = Result(kind, [p50 / 1e3], 1.0, 0.0, 0.0)
    result.p50, result.p99, result.rate, result.count = p50, p99, rate, count
    # Neither tool warms up here: the server's CPU and the count cover the same window.
    result.cpu_ms = cpu / count * 1e3
    result.client_cpu_ms = client_cpu / count * 1e3
    return result


# -- p99 during a push --------------------------------------------------------------------------


async def _timed_rest_worker(port: int, request: bytes, stop: asyncio.Event, out: list) -> None:
    """Sends `request` until `stop`; appends (start time, latency) per answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            t = time.perf_counter()
            writer.write(request)
            await read_ok_answer(reader)
            out.append((t, time.perf_counter() - t))
    finally:
        writer.close()


def _serving_version(server, model: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{server.rest_url}/v1/models/{model}", timeout=10) as resp:
        doc = json.load(resp)
    return max(int(s["version"]) for s in doc["model_version_status"] if s["state"] == "AVAILABLE")


async def push_round(server, model: str, base: Path, staged: Path, payload: bytes, clients: int):
    """(steady latencies, latencies during the push, load seconds) for one pushed version."""
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    workers = [
        asyncio.ensure_future(_timed_rest_worker(server.rest_port, payload, stop, samples))
        for _ in range(clients)
    ]
    await asyncio.sleep(0.5)  # warm
    steady_from = time.perf_counter()
    await asyncio.sleep(2.0)
    version = int(staged.name)
    loop = asyncio.get_running_loop()
    pushed_at = time.perf_counter()
    os.rename(staged, base / staged.name)  # complete and atomic, as the Pusher delivers
    while await loop.run_in_executor(None, _serving_version, server, model) < version:
        await asyncio.sleep(0.05)
    loaded_at = time.perf_counter()
    await asyncio.sleep(0.5)  # the old version unloads after the new one serves
    done_at = time.perf_counter()
    stop.set()
    await asyncio.gather(*workers)
    steady = [lat for t, lat in samples if steady_from <= t < pushed_at]
    during = [lat for t, lat in samples if pushed_at <= t < done_at]
    return steady, during, loaded_at - pushed_at


def push_scenario(server, model: str, base: Path, staging: Path, payload: bytes, args) -> None:
    steady_all: list[float] = []
    during_all: list[float] = []
    first = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
    for round_ in range(args.push_rounds):
        version = first + 1 + round_
        staged = staging / str(version)
        write_test_model(
            staged, version, hidden_units=args.hidden_units, warmup=args.push_warmup_file
        )
        steady, during, load = asyncio.run(
            push_round(server, model, base, staged, payload, args.push_clients)
        )
        steady_all += steady
        during_all += during
        print(
            f"  push of version {version}: serving after {load:.2f} s; p99 steady "
            f"{percentile(steady, 0.99) * 1e3:.2f} ms, during the push "
            f"{percentile(during, 0.99) * 1e3:.2f} ms (max {max(during) * 1e3:.1f} ms)",
            file=sys.stderr,
            flush=True,
        )
    steady_p99 = percentile(steady_all, 0.99) * 1e3
    during_p99 = percentile(during_all, 0.99) * 1e3
    ratio = during_p99 / steady_p99
    verdict = "meets" if ratio <= 2 else "MISSES"
    print(
        f"REST p99 during a push ({args.push_rounds} pushes, {args.push_clients} clients): "
        f"{during_p99:.2f} ms vs steady {steady_p99:.2f} ms = {ratio:.2f}x (target <= 2x: "
        f"{verdict}); p50 {percentile(during_all, 0.5) * 1e3:.2f} vs "
        f"{percentile(steady_all, 0.5) * 1e3:.2f} ms; slowest {max(during_all) * 1e3:.1f} ms"
    )


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="beamline-bench-"))
    if args.model_base_path is None:
        base = work / args.model_name
        base.mkdir()
        write_test_model(base / "1", 1, hidden_units=args.hidden_units)
        instances = [example_rows()[0]]
    else:
        base = args.model_base_path.resolve()
        if not args.instances:
            sys.exit("--instances is required with --model-base-path")
        instances = json.loads(args.instances)
    versions = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())
    version_dir = base / str(versions[-1])

    batching_file = work / "batching.config"
    batching_file.write_text(BATCHING % args.batch_threads, encoding="utf-8")
    common = {"model_name": args.model_name, "model_base_path": base, "log_dir": work}
    if args.logging_cost:
        _logging_cost(args, work, common, instances)
        return
    servers = {
        "off": start_server(args=["--enable_batching=false"], wait=False, **common),
        "on": start_server(
            args=[
                "--enable_batching", f"--batching_parameters_file={batching_file}",
                f"--rest_api_workers={args.rest_workers}",
            ],
            wait=False,
            **common,
        ),
    }
    try:
        if not args.only_push:
            _run(args, concurrency, servers, version_dir, instances)
        if args.push_rounds and args.model_base_path is None:
            servers.pop("on").stop()  # it would load each push too, on the same cores
            servers["off"].wait_ready()
            body = json.dumps({"instances": instances}).encode()
            payload = (
                f"POST /v1/models/{args.model_name}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            staging = work / "staging"
            staging.mkdir()
            push_scenario(servers["off"], args.model_name, base, staging, payload, args)
    finally:
        for server in servers.values():
            server.stop()


def _payloads(args, signature_def, instances):
    """(arrays, raw REST request, serialized gRPC PredictRequest) for one Predict request."""
    from tensorflow_serving.apis import predict_pb2

    from beamline_serving.core.servable import _tensor_info
    from beamline_serving.core.tensors import make_tensor_proto
    from beamline_serving.rest import json_decode

    infos = {k: _tensor_info(k, v) for k, v in signature_def.inputs.items()}
    arrays, _ = json_decode.predict_inputs({"instances": instances}, infos)

    body = json.dumps({"instances": instances}).encode()
    rest_request = (
        f"POST /v1/models/{args.model_name}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    grpc_request = predict_pb2.PredictRequest()
    grpc_request.model_spec.name = args.model_name
    for name, array in arrays.items():
        grpc_request.inputs[name].CopyFrom(make_tensor_proto(array))
    return arrays, rest_request, grpc_request.SerializeToString()


def _logging_cost(args, work: Path, common: dict, instances) -> None:
    import statistics

    logs = work / "request_logs"
    servers = {
        "off": start_server(args=["--enable_batching=false"], wait=False, **common),
        "rate 1.0": start_server(
            args=["--enable_batching=false", f"--request_log_dir={logs}"], wait=False, **common
        ),
    }
    try:
        base = Path(common["model_base_path"])
        version = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
        _, _, signature_def = load_signature(base / str(version))
        _, rest_request, grpc_payload = _payloads(args, signature_def, instances)
        for server in servers.values():
            server.wait_ready()
        clients = max(int(c) for c in args.concurrency.split(","))
        measured: dict[tuple[str, str], list] = {}
        for round_ in range(args.rounds):
            for kind, payload in (("REST", rest_request), ("gRPC", grpc_payload)):
                for name, server in servers.items():
                    r = asyncio.run(run_clients(kind, server, payload, clients, args.duration))
                    measured.setdefault((kind, name), []).append(r)
                    print(
                        f"  round {round_ + 1} {kind:4} logging {name:8}: p50 {r.p50:6.2f} ms  "
                        f"{r.rate:7.0f} req/s  CPU {r.cpu_ms:.3f} ms/req",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for server in servers.values():
            server.stop()
    from beamline_serving.request_log.reader import LogScan, read_prediction_logs

    scan = LogScan()
    logged = sum(1 for _ in read_prediction_logs(logs, scan))
    print()
    print(
        f"Request logging cost: {clients} clients, 1-row Predict, batching off, medians of "
        f"{args.rounds} alternating rounds of {args.duration:g} s ({os.cpu_count()} cores shared)"
    )
    print(f"{'':22}{'p50 ms':>8}{'req/s':>9}{'CPU ms/req':>12}")
    for (kind, name), runs in measured.items():
        print(
            f"{kind + ' logging ' + name:22}{statistics.median(r.p50 for r in runs):8.2f}"
            f"{statistics.median(r.rate for r in runs):9.0f}"
            f"{statistics.median(r.cpu_ms for r in runs):12.3f}"
        )
    for kind in ("REST", "gRPC"):
        off = statistics.median(r.rate for r in measured[(kind, "off")])
        on = statistics.median(r.rate for r in measured[(kind, "rate 1.0")])
        loss = 1 - on / off
        verdict = "meets" if loss <= 0.10 else "MISSES"
        print(
            f"{kind}: throughput with logging {on:.0f} vs {off:.0f} req/s off: "
            f"{loss:+.1%} loss (target <= 10%: {verdict})"
        )
    print(f"records logged: {logged} in {len(scan.files)} file(s), damaged: {len(scan.damaged)}")


def _run(args, concurrency, servers, version_dir, instances) -> None:
    _loaded, function, signature_def = load_signature(version_dir)
    arrays, rest_request, grpc_payload = _payloads(args, signature_def, instances)

    for server in servers.values():
        server.wait_ready()
    # Measured once the servers are idle, so that the baseline does not compete with their start.
    baseline = in_process(function, arrays, args.duration)

    results: list[tuple[str, str, int, Result]] = []
    for batching, server in servers.items():
        for kind, payload in (("REST", rest_request), ("gRPC", grpc_payload)):
            for clients in concurrency:
                if args.load_generator == "c":
                    result = run_c_clients(kind, server, payload, clients, args.duration)
                else:
                    result = asyncio.run(
                        run_clients(kind, server, payload, clients, args.duration)
                    )
                results.append((batching, kind, clients, result))
                print(
                    f"  {kind:4} batching {batching:3} clients {clients:2}: "
                    f"p50 {result.p50:6.2f} ms  p99 {result.p99:6.2f} ms  "
                    f"{result.rate:7.0f} req/s",
                    file=sys.stderr,
                    flush=True,
                )

    print()
    print(
        f"model: {version_dir}  (1-row Predict requests; {os.cpu_count()} cores shared; "
        f"{args.load_generator} load generator)"
    )
    print(
        f"{'':26}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>9}{'p50 - in-proc':>15}"
        f"{'rate / in-proc':>16}{'CPU ms/req':>12}{'client CPU':>12}"
    )
    print(
        f"{'in-process, one at a time':26}{baseline.p50:8.2f}{baseline.p99:8.2f}"
        f"{baseline.rate:9.0f}{'':>15}{'1.00x':>16}{baseline.cpu_ms:12.3f}"
    )
    for batching, kind, clients, r in results:
        label = f"{kind} c={clients} batch={batching}"
        print(
            f"{label:26}{r.p50:8.2f}{r.p99:8.2f}{r.rate:9.0f}"
            f"{r.p50 - baseline.p50:+14.2f} {r.rate / baseline.rate:15.2f}x{r.cpu_ms:12.3f}"
            f"{r.client_cpu_ms:12.3f}"
        )
    print(
        "(CPU ms/req: the server process's CPU per answered request; client CPU: the load "
        "generator's (this process). The in-process row is the caller's own.)"
    )
    print()
    for kind in ("REST", "gRPC"):
        single = next(r for b, k, c, r in results if b == "off" and k == kind and c == 1)
        delta = single.p50 - baseline.p50
        verdict = "meets" if delta <= 1.0 else "MISSES"
        print(
            f"{kind}: single request p50 {single.p50:.2f} ms vs in-process {baseline.p50:.2f} ms "
            f"({delta:+.2f} ms; target <= +1 ms: {verdict})"
        )
    top = max(concurrency)
    for kind in ("REST", "gRPC"):
        batched = next(r for b, k, c, r in results if b == "on" and k == kind and c == top)
        ratio = batched.rate / baseline.rate
        verdict = "meets" if ratio >= 3 else "MISSES"
        print(
            f"{kind}: {top} clients with batching {batched.rate:.0f} req/s = {ratio:.2f}x the "
            f"in-process rate {baseline.rate:.0f} req/s (target >= 3x: {verdict}); server CPU "
            f"{batched.cpu_ms:.3f} ms/request vs {baseline.cpu_ms:.3f} in-process = "
            f"{baseline.cpu_ms / max(batched.cpu_ms, 1e-9):.2f}x the work per CPU second"
        )


if __name__ == "__main__":
    main()
