"""Benchmark version labels in `beamline serve --root`: promote-to-applied latency, canary cost.

    .venv/bin/python benchmarks/serving_versions.py                 # defaults
    .venv/bin/python benchmarks/serving_versions.py --promotes 5 --requests 300 --rounds 3

1. Promote-to-applied: a server follows `<root>/serving/models.config` (versions 1 and 2 both
   loaded, as a canary push leaves them); each promote rewrites the file atomically with
   `stable` on the other version, and a client polls `/v1/models/penguin/labels/stable/metadata`
   until the version header names it. Median and max of write -> first answer from the new
   version (target: <= 1 s).
2. Canary routing cost per request, in-process: the model manager's lookup of an unversioned
   request with no canary, with a 10 % canary chosen at random, and with a 10 % canary chosen by
   request key (key checked and hashed), on servables of the same two versions. Median of
   `--rounds` timings of `--lookups` calls each, and the extra cost over no canary (target:
   <= 20 us).
3. The request outcome record a logging server adds to each request (`monitor --compare`
   reads them): format and queue one line, in-process, median of `--rounds` timings.
4. Canary routing over REST: p50 of single-row predicts (keyed) against the server with
   routing.json's canary_percent 0 and 10, rounds alternating; medians of the rounds' p50s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beamline.settings import apply_tf_environment  # noqa: E402

apply_tf_environment()

from beamline_serving.core.config import ModelSpec, VersionPolicy  # noqa: E402
from beamline_serving.core.model_manager import ModelManager  # noqa: E402
from beamline_serving.core.routing import (  # noqa: E402
    BUCKETS,
    REQUEST_KEY_HEADER,
    VERSION_HEADER,
    Routing,
    bucket,
    check_request_key,
)
from tests.serving.support import example_rows, start_server, write_test_model  # noqa: E402

MODEL = "penguin"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotes", type=int, default=20, help="promotes timed")
    parser.add_argument("--lookups", type=int, default=200_000, help="lookups per timing")
    parser.add_argument("--rounds", type=int, default=5, help="timings / REST rounds per case")
    parser.add_argument("--requests", type=int, default=1000, help="REST requests per round")
    return parser.parse_args()


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def labels_text(base: Path, stable: int, canary: int) -> str:
    return (
        f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{base}" '
        'model_platform: "tensorflow" model_version_policy { specific { versions: 1 versions: 2 '
        f'}} }} version_labels {{ key: "stable" value: {stable} }} '
        f'version_labels {{ key: "canary" value: {canary} }} }} }}\n'
    )


def stable_version(session, server) -> int | None:
    resp = session.get(f"{server.rest_url}/v1/models/{MODEL}/labels/stable/metadata", timeout=30)
    return int(resp.headers[VERSION_HEADER]) if resp.status_code == 200 else None


def promote_latency(session, server, serving: Path, promotes: int) -> list[float]:
    base = serving / MODEL
    write(serving / "models.config", labels_text(base, 1, 2))
    deadline = time.monotonic() + 300
    while stable_version(session, server) != 1:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    latencies = []
    current = 1
    for _ in range(promotes):
        target = 3 - current
        start = time.monotonic()
        write(serving / "models.config", labels_text(base, target, 2))
        while stable_version(session, server) != target:
            assert time.monotonic() - start < 60, server.log()
        latencies.append(time.monotonic() - start)
        current = target
    return latencies


def lookup_costs(serving: Path, lookups: int, rounds: int) -> dict[str, float]:
    """Microseconds per unversioned lookup, median of `rounds` timings."""
    spec = ModelSpec(
        MODEL,
        str(serving / MODEL),
        VersionPolicy("specific", versions=(1, 2)),
        (("canary", 2), ("stable", 1)),
    )
    manager = ModelManager(
        lambda name, version, path: SimpleNamespace(version=version),
        lambda: [spec],
        unversioned_to_stable=True,
        unloader=lambda servable: None,
    )
    manager.poll()
    cases = {}

    def timed(percent: float, key: str | None) -> float:
        manager.set_routing(Routing(percent))
        get = manager.get
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(lookups):
                get(MODEL, None, None, check_request_key(key))
            samples.append((time.perf_counter() - start) / lookups * 1e6)
        return statistics.median(samples)

    cases["no canary"] = timed(0, None)
    cases["no canary, keyed request"] = timed(0, "user-12345")
    cases["10% canary, random"] = timed(10, None)
    cases["10% canary, by request key"] = timed(10, "user-12345")
    return cases


def outcome_cost(calls: int, rounds: int) -> float:
    """Microseconds per request outcome record on the serving path (format the line, queue
    it), with the logger's writer thread writing to a temporary directory meanwhile."""
    from beamline_serving.request_log.config import RequestLogSettings
    from beamline_serving.request_log.logger import RequestLogRouter

    router = RequestLogRouter(RequestLogSettings(directory=tempfile.mkdtemp()))
    samples = []
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                router.outcome(MODEL, 2, "predict", "OK", 812.5)
            samples.append((time.perf_counter() - start) / calls * 1e6)
            time.sleep(0.2)  # let the writer drain, so each round starts with an empty queue
    finally:
        router.close()
    return statistics.median(samples)


def rest_p50(session, server, serving: Path, rounds: int, requests_per_round: int):
    body = json.dumps({"instances": [example_rows()[0]]})
    url = f"{server.rest_url}/v1/models/{MODEL}:predict"
    # A key in the 10 % canary: tells when a routing.json change is in force.
    probe = next(f"k{i}" for i in range(100_000) if bucket(f"k{i}") < BUCKETS // 10)
    p50s: dict[int, list[float]] = {0: [], 10: []}
    for _ in range(rounds):
        for percent in (0, 10):
            routing = {"models": {MODEL: {"canary_percent": percent}}}
            write(serving / "routing.json", json.dumps(routing))
            deadline = time.monotonic() + 30
            while True:
                resp = session.post(url, data=body, headers={REQUEST_KEY_HEADER: probe})
                if (resp.headers[VERSION_HEADER] == "2") == bool(percent):
                    break
                assert time.monotonic() < deadline, server.log()
            times = []
            for i in range(requests_per_round):
                start = time.perf_counter()
                resp = session.post(url, data=body, headers={REQUEST_KEY_HEADER: f"user-{i}"})
                times.append((time.perf_counter() - start) * 1e6)
                assert resp.status_code == 200, resp.text
            p50s[percent].append(statistics.median(times))
    return {percent: statistics.median(values) for percent, values in p50s.items()}


def main() -> None:
    import requests

    args = parse_args()
    root = Path(tempfile.mkdtemp(prefix="beamline-versions-bench-"))
    serving = root / "serving"
    for version in (1, 2):
        write_test_model(serving / MODEL / str(version), version, hidden_units=64)
    server = start_server(args=[f"--root={root}"], ready_model=MODEL)
    try:
        with requests.Session() as session:
            latencies = promote_latency(session, server, serving, args.promotes)
            rest = rest_p50(session, server, serving, args.rounds, args.requests)
    finally:
        server.stop()
    costs = lookup_costs(serving, args.lookups, args.rounds)
    outcome_us = outcome_cost(min(args.lookups, 9000), args.rounds)  # under the queue's bound
    print(
        f"promote-to-applied over {len(latencies)} promotes: median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        "(target <= 1000 ms)"
    )
    print("unversioned lookup, in-process (median us per request):")
    base = costs["no canary"]
    for case, micros in costs.items():
        print(f"  {case:28s} {micros:6.2f} us  (+{micros - base:5.2f} us over no canary)")
    print(f"request outcome record (request logging on), in-process: {outcome_us:.2f} us")
    print(
        f"REST predict p50 (median of {args.rounds} rounds of {args.requests}, keyed): "
        f"canary 0%: {rest[0]:.0f} us, canary 10%: {rest[10]:.0f} us "
        f"(+{rest[10] - rest[0]:.0f} us)"
    )


if __name__ == "__main__":
    main()
