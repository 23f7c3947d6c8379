"""Benchmark: a pipeline (penguin, or taxi) under stock TFX vs Beamline's runner (not a test).

(a) tfx.orchestration.LocalDagRunner with the Beam args of TFX's own penguin example
    (--direct_running_mode=multi_processing --direct_num_workers=0), fresh root;
(b) `beamline run penguin` with its defaults, fresh root;
(c) an unchanged re-run of (b).
Each run is a separate process (imports included: that is what a user waits for). Prints wall
times, per-component durations read from MLMD, and the ratios b/a and c/b; with --repeat N the
medians of N rounds. --pipeline taxi runs the taxi pipeline (a vs b on the same shipped CSV,
~15k rows), where data rather than start-up dominates.

    .venv/bin/python benchmarks/pipeline_e2e.py [--pipeline penguin|taxi] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
STOCK_BEAM_ARGS = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def _run_stock(root: Path, name: str) -> None:
    """Child process: the same pipeline definition through plain LocalDagRunner."""
    from beamline.runner.local import prepare_environment

    prepare_environment()
    from tfx import v1 as tfx

    from beamline import registry
    from beamline.metadata.connection import sqlite_config
    from beamline.runner.preflight import resolve_data
    from beamline.settings import PipelineSettings, RootLayout

    module = importlib.import_module(f"beamline_pipelines.{name}")
    layout = RootLayout(root)
    data = resolve_data(Path(module.default_data_root()))  # as `beamline run` reads it
    settings = PipelineSettings(
        pipeline_name=name,
        pipeline_root=str(layout.pipeline_root(name)),
        data_root=str(data.root),
        data_pattern=data.pattern,
        serving_dir=str(layout.serving_dir(name)),
        schema_path=str(registry.get(name).schema_path),
        beam_pipeline_args=tuple(STOCK_BEAM_ARGS),
        metadata_connection_config=sqlite_config(layout.metadata_path),
    )
    tfx.orchestration.LocalDagRunner().run(module.create_pipeline(settings))


def _timed(cmd: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
        )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed ({' '.join(cmd)}); see {log}")
    return elapsed


def component_seconds(root: Path, newest_run_only: bool = True) -> dict[str, float]:
    """Per-node execution durations (MLMD create -> last update) of the newest run in `root`."""
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    store = mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))
    runs = store.get_contexts_by_type("pipeline_run")
    newest = max(runs, key=lambda c: c.create_time_since_epoch)
    in_run = {e.id: e for e in store.get_executions_by_context(newest.id)}
    durations = {}
    for ctx in store.get_contexts_by_type("node"):
        for e in store.get_executions_by_context(ctx.id):
            if e.id in in_run:
                node = ctx.name.split(".", 1)[1]
                durations[node] = (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1e3
    return durations


def one_round(base: Path, name: str) -> dict:
    a_root, b_root = base / "stock", base / "beamline"
    py = sys.executable
    wall_a = _timed([py, __file__, "--_stock", str(a_root), "--pipeline", name], base / "a.log")
    comp_a = component_seconds(a_root)
    beamline = [py, "-m", "beamline", "run", name, "--root", str(b_root)]
    wall_b = _timed(beamline, base / "b.log")
    comp_b = component_seconds(b_root)
    wall_c = _timed(beamline, base / "c.log")
    comp_c = component_seconds(b_root)
    return {"a": (wall_a, comp_a), "b": (wall_b, comp_b), "c": (wall_c, comp_c)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=["penguin", "taxi"], default="penguin")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep run roots here")
    parser.add_argument("--_stock", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._stock:
        _run_stock(args._stock, args.pipeline)
        return
    rounds = []
    for i in range(args.repeat):
        base = Path(tempfile.mkdtemp(prefix=f"bench{i}-", dir=args.keep))
        rounds.append(one_round(base, args.pipeline))
        print(
            f"round {i + 1}/{args.repeat}: a={rounds[-1]['a'][0]:.1f}s "
            f"b={rounds[-1]['b'][0]:.1f}s c={rounds[-1]['c'][0]:.1f}s (roots in {base})",
            flush=True,
        )
    med = {k: statistics.median(r[k][0] for r in rounds) for k in "abc"}
    nodes = sorted({n for r in rounds for k in "abc" for n in r[k][1]})
    print("\nper-component seconds (median over rounds, from MLMD execution timestamps)")
    print(f"{'node':<20}{'a: stock TFX':>14}{'b: beamline':>14}{'c: re-run':>12}")
    for node in nodes:
        cells = [statistics.median(r[k][1].get(node, 0.0) for r in rounds) for k in "abc"]
        print(f"{node:<20}{cells[0]:>14.1f}{cells[1]:>14.1f}{cells[2]:>12.1f}")
    print(
        f"\nwall (median of {args.repeat}): a={med['a']:.1f}s b={med['b']:.1f}s c={med['c']:.1f}s"
    )
    print(f"b/a = {med['b'] / med['a']:.3f}   (target <= 0.4)")
    print(f"c/b = {med['c'] / med['b']:.3f}   (target <= 0.05)")


if __name__ == "__main__":
    main()
