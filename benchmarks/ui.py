"""Benchmark: `beamline ui` server time per page, and what an open UI costs a running pipeline.

(1) A SQLite store holding --runs runs (default 1,000; 4 nodes each, every 10th pushing a model,
    some failed, written with the MLMD API), served by a real `beamline ui` process on
    127.0.0.1. Each page is fetched --repeat times; medians of the server's time (wall time of
    the request on the same machine; the pages are rendered server-side). "warm": the store did
    not change between requests; "changed": the store changed just before each request (what a
    live run causes): the UI answers from the Graph it has while a reload runs in the
    background. Also printed: how long a full load of the Graph takes (how stale a page can be).
(2) --pipeline: the tiny TFX pipeline of the lineage tests, run once with no UI and once with a
    UI polling it the way an open runs page and run page do (both JSON endpoints every 2 s);
    wall times and their ratio.

    .venv/bin/python benchmarks/ui.py [--runs 1000] [--repeat 15] [--keep DIR] [--pipeline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

NODES = (
    (
        "CsvExampleGen",
        "tfx.components.example_gen.csv_example_gen.component.CsvExampleGen",
        "examples",
        "Examples",
    ),
    (
        "StatisticsGen",
        "tfx.components.statistics_gen.component.StatisticsGen",
        "statistics",
        "ExampleStatistics",
    ),
    ("Trainer", "tfx.components.trainer.component.Trainer", "model", "Model"),
    ("Pusher", "tfx.components.pusher.component.Pusher", "pushed_model", "PushedModel"),
)


def build_store(db: Path, runs: int, pipeline: str = "bench") -> list[str]:
    """`runs` runs of a 4-node pipeline, each node consuming the previous node's output."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata import run_context as rc
    from beamline.metadata.connection import open_store, sqlite_config

    store = open_store(sqlite_config(db))
    ctx_type = {
        n: store.put_context_type(pb.ContextType(name=n))
        for n in (rc.PIPELINE_CONTEXT, rc.RUN_CONTEXT, rc.NODE_CONTEXT)
    }
    exec_type = {t: store.put_execution_type(pb.ExecutionType(name=t)) for _, t, _, _ in NODES}
    art_type = {a: store.put_artifact_type(pb.ArtifactType(name=a)) for _, _, _, a in NODES}
    [pipeline_id] = store.put_contexts(
        [pb.Context(type_id=ctx_type[rc.PIPELINE_CONTEXT], name=pipeline)]
    )
    pipeline_ctx = store.get_contexts_by_id([pipeline_id])[0]
    node_ctx = {}
    for node, *_ in NODES:
        [cid] = store.put_contexts(
            [pb.Context(type_id=ctx_type[rc.NODE_CONTEXT], name=f"{pipeline}.{node}")]
        )
        node_ctx[node] = store.get_contexts_by_id([cid])[0]
    run_ids = []
    base = 1_700_000_000
    for i in range(runs):
        run_id = f"2026-01-01T00:00:00.{i:06d}"
        failed = i % 17 == 5
        run = pb.Context(type_id=ctx_type[rc.RUN_CONTEXT], name=run_id)
        run.custom_properties[rc.STATE].string_value = (
            rc.RunState.FAILED if failed else rc.RunState.COMPLETE
        )
        [run_ctx_id] = store.put_contexts([run])
        store.put_parent_contexts([pb.ParentContext(child_id=run_ctx_id, parent_id=pipeline_id)])
        run_ctx = store.get_contexts_by_id([run_ctx_id])[0]
        previous = None
        for j, (node, type_name, key, art_name) in enumerate(NODES):
            if node == "Pusher" and i % 10:
                break
            last = failed and j == 2
            ex = pb.Execution(
                type_id=exec_type[type_name],
                last_known_state=(pb.Execution.FAILED if last else pb.Execution.COMPLETE),
            )
            art = pb.Artifact(
                type_id=art_type[art_name],
                state=pb.Artifact.LIVE,
                uri=f"/nonexistent/{pipeline}/{node}/{i}",
            )
            if art_name == "PushedModel":
                art.custom_properties["pushed"].int_value = 1
                art.custom_properties["pushed_version"].string_value = str(base + i)
                art.custom_properties["pushed_destination"].string_value = f"/srv/{base + i}"
            pairs = []
            if previous is not None:
                event = pb.Event(type=pb.Event.INPUT)
                event.path.steps.add().key = "input"
                event.artifact_id = previous
                pairs.append((None, event))
            if not last:
                event = pb.Event(type=pb.Event.OUTPUT)
                event.path.steps.add().key = key
                pairs.append((art, event))
            _, art_ids, _ = store.put_execution(ex, pairs, [pipeline_ctx, run_ctx, node_ctx[node]])
            previous = art_ids[-1] if art_ids and not last else None
            if last:
                break
        run_ids.append(run_id)
    return run_ids


def timed_get(url: str) -> float:
    import requests

    start = time.perf_counter()
    response = requests.get(url, timeout=120)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{url}: HTTP {response.status_code}\n{response.text[:400]}")
    return elapsed * 1000


def pages_benchmark(runs: int, repeat: int, keep: Path | None) -> None:
    from tests.beamline.ui.conftest import start_ui, stop_ui

    tmp = keep or Path(tempfile.mkdtemp(prefix="beamline-ui-bench-"))
    db = tmp / "metadata.sqlite"
    if db.exists():
        run_ids = [f"2026-01-01T00:00:00.{i:06d}" for i in range(runs)]
        print(f"store: reusing {db} ({runs} runs)")
    else:
        tmp.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        run_ids = build_store(db, runs)
        print(f"store: {runs} runs written in {time.perf_counter() - start:.1f} s ({db})")
    latest, pushed = run_ids[-1], 1_700_000_000 + (runs - 1) // 10 * 10
    paths = {
        "runs page (newest 200)": "/",
        f"runs page (all {runs})": f"/?limit={runs}",
        "runs JSON (live poll)": "/api/runs",
        "run page": f"/runs/{latest}",
        "run JSON (live poll)": f"/api/runs/{latest}",
        "compare": f"/compare?a={run_ids[-2]}&b={latest}",
        "models and loop": "/pipelines/bench",
        "model version": f"/models/bench/{pushed}",
    }
    ui = start_ui("--root", str(tmp))
    try:
        first = timed_get(ui.base + "/")
        print(f"first request (loads the Graph of {runs} runs): {first:.0f} ms")
        print(f"{'page':28} {'warm median':>12} {'changed median':>15}")
        for name, path in paths.items():
            warm = [timed_get(ui.base + path) for _ in range(repeat)]
            changed = []
            for _ in range(max(3, repeat // 3)):
                os.utime(db)  # the store changed: a background reload starts
                changed.append(timed_get(ui.base + path))
            print(
                f"{name:28} {statistics.median(warm):9.1f} ms {statistics.median(changed):11.1f} ms"
            )
    finally:
        stop_ui(ui)


def _pipeline_run(base: Path) -> float:
    script = PROJECT / "tests" / "beamline" / "lineage" / "lineage_tiny_pipeline.py"
    sys.path.insert(0, str(script.parent))
    import lineage_tiny_pipeline as tiny

    tiny.write_data(base / "data")
    tiny.write_module(base / "module")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(script),
            "--root",
            str(base / "root"),
            "--data",
            str(base / "data"),
            "--module-dir",
            str(base / "module"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def live_cost_benchmark() -> None:
    import requests

    from tests.beamline.ui.conftest import start_ui, stop_ui

    closed = _pipeline_run(Path(tempfile.mkdtemp(prefix="beamline-ui-closed-")))
    print(f"tiny pipeline, no UI: {closed:.1f} s")
    base = Path(tempfile.mkdtemp(prefix="beamline-ui-open-"))
    (base / "root").mkdir()
    ui = start_ui("--root", str(base / "root"))
    stop = threading.Event()
    polls = []

    def poll() -> None:  # what an open runs page and run page fetch, every 2 s
        while not stop.wait(2.0):
            try:
                runs = requests.get(ui.base + "/api/runs", timeout=30)
                polls.append(runs.status_code)
                for run in (runs.json().get("runs") or [])[:1]:
                    polls.append(
                        requests.get(ui.base + f"/api/runs/{run['run_id']}", timeout=30).status_code
                    )
            except requests.RequestException:
                polls.append(0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        opened = _pipeline_run(base)
    finally:
        stop.set()
        poller.join()
        stop_ui(ui)
    codes = ", ".join(f"{n} x {code or 'no answer'}" for code, n in Counter(polls).most_common())
    # 503 before the pipeline created its store (nothing to show yet), 200 after.
    print(f"tiny pipeline, UI open and polling: {opened:.1f} s (polls: {codes})")
    print(f"ratio open/closed: {opened / closed:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pipeline", action="store_true", help="Also measure the live cost.")
    parser.add_argument(
        "--keep", type=Path, default=None, help="Store directory; a store there is reused."
    )
    args = parser.parse_args()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {os.cpu_count()} CPUs · "
        f"load {os.getloadavg()[0]:.1f}"
    )
    pages_benchmark(args.runs, args.repeat, args.keep)
    if args.pipeline:
        live_cost_benchmark()


if __name__ == "__main__":
    main()
