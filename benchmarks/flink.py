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

    .venv/bin/python benchmarks/flink.py [--pipeline penguin|taxi] [--rows N] [--json OUT]
        [--flink-root DIR] [--direct-root DIR]   # read the latest run there instead of running

`--rows N` runs both on the pipeline's shipped CSV repeated to N rows (0: the shipped data).
The Beam nodes are those that recorded Flink jobs in the Flink run.
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


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beamline", *args], capture_output=True,
                          text=True)


def _data(pipeline: str, rows: int, base: Path) -> list[str]:
    """`--data` for a run over the shipped CSV repeated to `rows` rows ([] for 0)."""
    if not rows:
        return []
    import importlib

    shipped = Path(importlib.import_module(f"beamline_pipelines.{pipeline}").default_data_root())
    source = next(shipped.glob("*.csv")) if shipped.is_dir() else shipped
    header, *body = source.read_text().splitlines()
    out = base / "data" / f"{pipeline}-{rows}" / "data.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        f.write(header + "\n")
        for i in range(rows):
            f.write(body[i % len(body)] + "\n")
    return ["--data", str(out.parent if shipped.is_dir() else out)]


def _run(pipeline: str, root: Path, profile: str, data: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    proc = _cli("run", pipeline, "--no-tune", "--beam", profile, "--root", str(root), *data)
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
    """Each node's execution in the run, in the order the nodes started."""
    import ml_metadata as mlmd

    from beamline.metadata import run_context as rc
    from beamline.metadata.connection import sqlite_config
    from beamline.runner.flink_jobs import _node_execution

    store = mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))
    prefix = f"{pipeline}."
    nodes = [c.name[len(prefix):] for c in store.get_contexts_by_type(rc.NODE_CONTEXT)
             if c.name.startswith(prefix)]
    found = {n: _node_execution(store, pipeline, run_id, n) for n in nodes}
    ordered = sorted((e.create_time_since_epoch, n) for n, e in found.items() if e is not None)
    return {n: found[n] for _, n in ordered}


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
    parser.add_argument("--rows", type=int, default=0,
                        help="the shipped CSV repeated to this many rows (0: as shipped)")
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
    data = _data(args.pipeline, args.rows, base)
    if args.flink_root:
        flink_wall, flink_run = _latest(flink_root)
    else:
        flink_wall, flink_run = _run(args.pipeline, flink_root, "flink", data)
    if args.direct_root:
        direct_wall, direct_run = _latest(direct_root)
    else:
        direct_wall, direct_run = _run(args.pipeline, direct_root, "direct", data)
    flink_ex = _executions(flink_root, args.pipeline, flink_run)
    direct_ex = _executions(direct_root, args.pipeline, direct_run)
    starts = _pool_starts(Path(state.parts["worker_pool"].log))
    rows = []
    for node, ex in flink_ex.items():
        _, jids = recorded_jobs(ex)
        dex = direct_ex.get(node)
        if not jids or dex is None:
            continue  # not a Beam node (or cached in one of the runs)
        node_start = ex.create_time_since_epoch / 1000
        node_end = ex.last_update_time_since_epoch / 1000
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
    size = f"{args.rows:,} rows" if args.rows else "shipped data"
    print(f"{args.pipeline} --no-tune, {size}, {datetime.now():%Y-%m-%d %H:%M}, "
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
            "pipeline": args.pipeline, "input_rows": args.rows,
            "rows": rows, "flink_wall_s": flink_wall, "direct_wall_s": direct_wall,
            "worker_import_s": worker_import}, indent=2))


if __name__ == "__main__":
    main()
