"""Benchmark: the taxi pipeline at 100k, 300k and 1M rows on one box (not a test).

Generates taxi-shaped CSVs once (the shipped 15k trips replicated with multiplicative noise on
the numeric columns, coordinates jittered, and categorical columns shuffled within each chunk so
the category frequencies stay realistic), then for every size and Beam mode runs
`beamline run taxi --no-tune` (bounded training steps, through Pusher) in its own process and
reports, per node:

- wall seconds (MLMD execution create -> last update),
- rows per second (input rows / node seconds),
- peak RSS of the whole process tree while the node ran (Beam workers included; sampled).

Modes: `auto` plus the two modes it chooses between (`direct` = in-memory, `direct-multi` =
multi-processing), so the crossing point of the two curves can be read off. With --stock, the
stock LocalDagRunner runs the same pipeline definition and data at the smallest size.

    .venv/bin/python benchmarks/scale.py [--sizes 100000,300000,1000000]
        [--modes auto,direct,direct-multi] [--stock] [--data-dir DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT / ".bench-data" / "taxi-scale"
SAMPLE_SECONDS = 0.25
NOISY = ("fare", "trip_miles", "trip_seconds", "tips")
JITTER = ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")
SHUFFLED = ("payment_type", "company", "pickup_community_area", "dropoff_community_area",
            "pickup_census_tract", "dropoff_census_tract")
CHUNK_ROWS = 50_000


def shipped_csv() -> Path:
    from beamline_pipelines import taxi

    return Path(taxi.default_data_root()) / "data.csv"


def _noisy(value: str, factor: float, integer: bool) -> str:
    if value == "":
        return value
    scaled = float(value) * factor
    return str(round(scaled)) if integer else f"{scaled:.2f}"


def generate(rows: int, out: Path, seed: int = 0) -> Path:
    """Writes `rows` taxi-shaped rows to `out/data.csv` once; an existing file is reused."""
    target = out / "data.csv"
    if target.exists():
        return target
    out.mkdir(parents=True, exist_ok=True)
    with shipped_csv().open(newline="") as src:
        reader = csv.DictReader(src)
        header = list(reader.fieldnames or [])
        base = list(reader)
    rng = random.Random(seed)
    partial = out / "data.csv.partial"
    with partial.open("w", newline="") as dst:
        writer = csv.DictWriter(dst, fieldnames=header)
        writer.writeheader()
        written = 0
        while written < rows:
            n = min(CHUNK_ROWS, rows - written)
            chunk = [dict(rng.choice(base)) for _ in range(n)]
            for column in SHUFFLED:
                values = [r[column] for r in chunk]
                rng.shuffle(values)
                for r, v in zip(chunk, values, strict=True):
                    r[column] = v
            for r in chunk:
                # One factor for fare and tips keeps the label (tip > 20% of fare) meaningful.
                money = rng.lognormvariate(0.0, 0.15)
                r["fare"] = _noisy(r["fare"], money, integer=False)
                r["tips"] = _noisy(r["tips"], money, integer=False)
                r["trip_miles"] = _noisy(r["trip_miles"], rng.lognormvariate(0.0, 0.2), False)
                r["trip_seconds"] = _noisy(r["trip_seconds"], rng.lognormvariate(0.0, 0.2), True)
                for column in JITTER:
                    if r[column]:
                        r[column] = f"{float(r[column]) + rng.gauss(0.0, 0.005):.6f}"
            writer.writerows(chunk)
            written += n
    partial.rename(target)
    return target


@dataclass
class TreeSampler:
    """Samples the summed RSS of a process and all its descendants, in a background thread."""

    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> TreeSampler:
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        from beamline.runner.memory import tree_rss

        while not self._stop.is_set():
            total, count = tree_rss(self.pid)
            if count == 0:  # the process has ended
                return
            self.samples.append((time.time(), total))
            self._stop.wait(SAMPLE_SECONDS)

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside, default=0)


def node_intervals(root: Path) -> dict[str, tuple[float, float]]:
    """Per node of the newest run: (start, end) in epoch seconds, from MLMD."""
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    store = mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        return {}
    newest = max(runs, key=lambda c: c.create_time_since_epoch)
    in_run = {e.id for e in store.get_executions_by_context(newest.id)}
    spans = {}
    for ctx in store.get_contexts_by_type("node"):
        for e in store.get_executions_by_context(ctx.id):
            if e.id in in_run:
                node = ctx.name.split(".", 1)[1]
                spans[node] = (e.create_time_since_epoch / 1e3,
                               e.last_update_time_since_epoch / 1e3)
    return spans


@dataclass
class Result:
    label: str
    rows: int
    wall: float
    peak_rss: int
    ok: bool
    nodes: dict[str, tuple[float, int]]  # node -> (seconds, peak RSS while it ran)


def measure(label: str, rows: int, cmd: list[str], root: Path, log: Path) -> Result:
    start = time.perf_counter()
    with log.open("w") as out:
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT, env=env)
        sampler = TreeSampler(proc.pid).start()
        code = proc.wait()
        sampler.stop()
    wall = time.perf_counter() - start
    nodes = {}
    for node, (t0, t1) in node_intervals(root).items():
        nodes[node] = (t1 - t0, sampler.peak(t0 - SAMPLE_SECONDS, t1 + SAMPLE_SECONDS))
    if code != 0:
        print(f"  {label}: exited {code}; see {log}", flush=True)
    return Result(label, rows, wall, sampler.peak(), code == 0, nodes)


def _run_stock(data: Path, root: Path) -> None:
    """Child process: the taxi pipeline definition through plain LocalDagRunner."""
    from beamline.runner.local import prepare_environment

    prepare_environment()
    from tfx import v1 as tfx

    from beamline import registry
    from beamline.metadata.connection import sqlite_config
    from beamline.settings import PipelineSettings, RootLayout
    from beamline_pipelines import taxi

    layout = RootLayout(root)
    settings = PipelineSettings(
        pipeline_name="taxi",
        pipeline_root=str(layout.pipeline_root("taxi")),
        data_root=str(data.parent),
        data_pattern=data.name,
        serving_dir=str(layout.serving_dir("taxi")),
        schema_path=str(registry.get("taxi").schema_path),
        enable_tuning=False,
        beam_pipeline_args=("--direct_running_mode=multi_processing", "--direct_num_workers=0"),
        metadata_connection_config=sqlite_config(layout.metadata_path),
    )
    tfx.orchestration.LocalDagRunner().run(taxi.create_pipeline(settings))


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def print_result(r: Result) -> None:
    state = "ok" if r.ok else "FAILED"
    print(f"\n{r.label}: {r.rows:,} rows, wall {r.wall:.1f}s, peak RSS {_mb(r.peak_rss)} MiB "
          f"({state})")
    print(f"  {'node':<22}{'seconds':>9}{'rows/s':>12}{'peak RSS MiB':>14}")
    for node, (secs, rss) in sorted(r.nodes.items(), key=lambda kv: kv[0]):
        rate = r.rows / secs if secs > 0 else 0.0
        print(f"  {node:<22}{secs:>9.1f}{rate:>12,.0f}{_mb(rss):>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--modes", default="auto,direct,direct-multi")
    parser.add_argument("--stock", action="store_true", help="stock LocalDagRunner at min size")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--keep", type=Path, default=None, help="keep run roots here")
    parser.add_argument("--_stock", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._stock:
        _run_stock(*args._stock)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    py = sys.executable
    results: list[Result] = []
    for rows in sizes:
        data = generate(rows, args.data_dir / f"rows-{rows}")
        print(f"data: {data} ({data.stat().st_size / 2**20:.1f} MiB)", flush=True)
        for mode in modes:
            base = Path(tempfile.mkdtemp(prefix=f"scale-{rows}-{mode}-", dir=args.keep))
            cmd = [py, "-m", "beamline", "run", "taxi", "--no-tune", "--data", str(data),
                   "--root", str(base / "root"), "--beam", mode]
            results.append(measure(f"beamline --beam {mode}", rows, cmd, base / "root",
                                   base / "run.log"))
            print_result(results[-1])
        if args.stock and rows == min(sizes):
            base = Path(tempfile.mkdtemp(prefix=f"scale-{rows}-stock-", dir=args.keep))
            cmd = [py, __file__, "--_stock", str(data), str(base / "root")]
            stock = measure("stock LocalDagRunner", rows, cmd, base / "root", base / "run.log")
            results.append(stock)
            print_result(stock)
    print("\nsummary: wall seconds / peak RSS MiB")
    print(f"{'rows':>10}  " + "".join(f"{m:>24}" for m in modes))
    for rows in sizes:
        cells = []
        for mode in modes:
            r = next(r for r in results if r.rows == rows and r.label.endswith(f" {mode}"))
            cells.append(f"{r.wall:>10.1f} / {_mb(r.peak_rss):>8}" + ("" if r.ok else "!"))
        print(f"{rows:>10,}  " + "".join(f"{c:>24}" for c in cells))
    auto = [r for r in results if r.label.endswith(" auto") and r.ok]
    if len(auto) >= 2:
        growth = auto[-1].peak_rss / max(auto[0].peak_rss, 1)
        print(f"\npeak RSS growth {auto[0].rows:,} -> {auto[-1].rows:,} rows (auto): "
              f"{growth:.2f}x (target < 2x)")
    stock = [r for r in results if r.label.startswith("stock")]
    if stock:
        same = next((r for r in auto if r.rows == stock[0].rows), None)
        if same:
            print(f"beamline auto / stock at {same.rows:,} rows: "
                  f"{same.wall / stock[0].wall:.3f} ({same.wall:.1f}s vs "
                  f"{stock[0].wall:.1f}s)")


if __name__ == "__main__":
    main()
