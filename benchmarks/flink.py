"""Benchmark: a pipeline's Beam nodes on the local Flink cluster vs in-process (not a test).

Runs `beamline run PIPELINE --no-tune` twice in fresh roots, each a separate process: once with
`--beam flink` (the cluster `beamline flink up` started; started here if it is not up) and once
with `--beam direct` (in-process DirectRunner). For each Beam node it prints, from MLMD and
Flink's REST API:

- node: the node's wall time (its MLMD execution's create -> last update);
- submit: node start -> Flink job INITIALIZING (TFX's driver, Beam's pipeline build, copying
  and uploading the ~157 MB runner jar with the pipeline's artifacts);
- flink: the Flink job (INITIALIZING -> FINISHED);
- workers: SDK workers the pool started in that window (each starts a python that imports
  Beam/TFX: `worker import` below is that import, measured once in this process's venv);
- after: Flink job end -> node end (result polling, Beam deleting the jar, TFX publishing);
- direct: the same node in-process.

    .venv/bin/python benchmarks/flink.py [--pipeline penguin] [--json OUT]
        [--flink-root DIR] [--direct-root DIR]   # read the latest run there instead of running
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

BEAM_NODES = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beamline", *args], capture_output=True,
                          text=True)


def _run(pipeline: str, root: Path, profile: str) -> tuple[float, str]:
    start = time.monotonic()
    proc = _cli("run", pipeline, "--no-tune", "--beam", profile, "--root", str(root))
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{profile} run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took, re.search(r"run id (\S+)", proc.stdout).group(1)


def _latest(root: Path) -> tuple[float, str]:
    """(duration, run id) of the latest run recorded in `root`."""
    proc = _cli("runs", "--root", str(root), "--json", "-n", "1")
    [run] = json.loads(proc.stdout)
    return run["duration_s"], run["run_id"]


def _executions(root: Path, pipeline: str, run_id: str) -> dict[str, object]:
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config
    from beamline.runner.flink_jobs import _node_execution

    store = mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))
    return {n: _node_execution(store, pipeline, run_id, n) for n in BEAM_NODES}


def _pool_starts(log: Path) -> list[float]:
    """Unix times at which the worker pool started a worker (its own log lines)."""
    out = []
    if not log.is_file():
        return out
    for line in log.read_text(errors="replace").splitlines():
        if "Starting worker with command" in line:
            stamp = line[:23]
            try:
                out.append(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp())
            except ValueError:
                continue
    return out


def _worker_import_seconds() -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "from apache_beam.runners.worker.sdk_worker import "
                    "SdkHarness; import tfx, tensorflow_transform, tensorflow_model_analysis"],
                   check=True, capture_output=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="penguin")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--flink-root", type=Path, default=None,
                        help="a root whose latest run was on this cluster: read, do not run")
    parser.add_argument("--direct-root", type=Path, default=None)
    args = parser.parse_args()

    from beamline.flink.cluster import ClusterState, local_cluster
    from beamline.flink.home import FlinkHome
    from beamline.flink.orphans import recorded_jobs
    from beamline.flink.rest import FlinkRest

    home = FlinkHome.default()
    if local_cluster(home) is None:
        up = _cli("flink", "up")
        if up.returncode != 0:
            raise SystemExit(up.stdout + up.stderr)
    state = ClusterState.load(home)
    rest = FlinkRest(state.rest)
    base = Path(tempfile.mkdtemp(prefix="beamline-bench-flink-"))
    flink_root = args.flink_root or base / "flink"
    direct_root = args.direct_root or base / "direct"
    if args.flink_root:
        flink_wall, flink_run = _latest(flink_root)
    else:
        flink_wall, flink_run = _run(args.pipeline, flink_root, "flink")
    if args.direct_root:
        direct_wall, direct_run = _latest(direct_root)
    else:
        direct_wall, direct_run = _run(args.pipeline, direct_root, "direct")
    flink_ex = _executions(flink_root, args.pipeline, flink_run)
    direct_ex = _executions(direct_root, args.pipeline, direct_run)
    starts = _pool_starts(Path(state.parts["worker_pool"].log))
    rows = []
    for node in BEAM_NODES:
        ex, dex = flink_ex[node], direct_ex[node]
        node_start = ex.create_time_since_epoch / 1000
        node_end = ex.last_update_time_since_epoch / 1000
        _, jids = recorded_jobs(ex)
        first = last = None
        workers = 0
        for jid in jids:
            info = rest._call("GET", f"/jobs/{jid}")  # noqa: SLF001 - timestamps only here
            begin = info["timestamps"]["INITIALIZING"] / 1000
            end = info["end-time"] / 1000
            first = begin if first is None else min(first, begin)
            last = end if last is None else max(last, end)
            workers += sum(1 for t in starts if begin <= t <= end)
        rows.append({
            "node": node,
            "node_s": round(node_end - node_start, 1),
            "submit_s": round(first - node_start, 1) if first else None,
            "flink_s": round(last - first, 1) if first else None,
            "workers": workers,
            "after_s": round(node_end - last, 1) if last else None,
            "direct_s": round((dex.last_update_time_since_epoch
                               - dex.create_time_since_epoch) / 1000, 1),
            "jobs": jids,
        })
    worker_import = _worker_import_seconds()
    print(f"{args.pipeline} --no-tune, {datetime.now():%Y-%m-%d %H:%M}, "
          f"Flink 2 slots on 127.0.0.1; runs in {flink_root} and {direct_root}")
    print(f"{'node':<14}{'node':>8}{'submit':>8}{'flink':>8}{'workers':>9}{'after':>8}"
          f"{'direct':>8}{'ratio':>7}")
    for r in rows:
        ratio = r["node_s"] / r["direct_s"] if r["direct_s"] else float("nan")
        print(f"{r['node']:<14}{r['node_s']:>8}{r['submit_s']!s:>8}{r['flink_s']!s:>8}"
              f"{r['workers']:>9}{r['after_s']!s:>8}{r['direct_s']:>8}{ratio:>7.1f}")
    total = sum(r["node_s"] for r in rows)
    direct_total = sum(r["direct_s"] for r in rows)
    print(f"Beam nodes: flink {total:.0f} s, direct {direct_total:.0f} s "
          f"(x{total / direct_total:.1f}); whole run: flink {flink_wall:.0f} s, direct "
          f"{direct_wall:.0f} s (wall time with preflight when run here; MLMD's record with "
          f"--*-root); worker import {worker_import:.1f} s each")
    if args.json:
        args.json.write_text(json.dumps({
            "rows": rows, "flink_wall_s": flink_wall, "direct_wall_s": direct_wall,
            "worker_import_s": worker_import}, indent=2))


if __name__ == "__main__":
    main()
