"""Benchmark: a pipeline (penguin, or taxi) under stock TFX vs Beamline's runner (not a test).

(a) tfx.orchestration.LocalDagRunner with the Beam args of TFX's own penguin example
    (--direct_running_mode=multi_processing --direct_num_workers=0), fresh root;
(b) `beamline run penguin` with its defaults, fresh root;
(c) an unchanged re-run of (b).
Each run is a separate process (imports included: that is what a user waits for). Prints wall
times, per-component durations read from MLMD, and the ratios b/a and c/b; with --repeat N the
medians of N rounds. --pipeline taxi runs the taxi pipeline (a vs b on the same shipped CSV,
~15k rows), where data rather than start-up dominates. --pipeline stock runs a pipeline written
for stock TFX (tests/e2e/stock_tfx/penguin_stock.py: SchemaGen, Trainer, resolver, Evaluator,
Pusher; a linear DAG) unchanged: (a) its own LocalDagRunner call, without Beam args, as the
file's __main__ does; (b) `beamline run penguin_stock.py:create_pipeline`.

    .venv/bin/python benchmarks/pipeline_e2e.py [--pipeline penguin|taxi|stock] [--repeat N]
        [--keep DIR]
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
STOCK_TFX = PROJECT / "tests" / "e2e" / "stock_tfx"
STOCK_FILE = "penguin_stock.py"


def _stock_copy(base: Path) -> Path:
    """The stock-TFX pipeline, its module file and data, copied to `base/stock_tfx`."""
    import shutil

    directory = base / "stock_tfx"
    directory.mkdir(parents=True, exist_ok=True)
    for name in (STOCK_FILE, "penguin_trainer.py"):
        shutil.copyfile(STOCK_TFX / name, directory / name)
    sys.path.insert(0, str(STOCK_TFX))
    from make_data import write_processed_penguins

    write_processed_penguins(directory / "data" / "penguins.csv")
    return directory


def _run_stock_file(root: Path, directory: Path) -> None:
    """Child process: the stock file's own LocalDagRunner call, its paths under `root`."""
    from beamline.runner.local import prepare_environment

    prepare_environment()
    sys.path.insert(0, str(directory))
    import penguin_stock as stock
    from tfx import v1 as tfx

    name = stock._pipeline_name
    tfx.orchestration.LocalDagRunner().run(
        stock.create_pipeline(
            pipeline_name=name,
            pipeline_root=str(root / "pipelines" / name),
            data_root=stock._data_root,
            module_file=stock._module_file,
            serving_model_dir=str(root / "serving" / name),
            metadata_path=str(root / "metadata.sqlite"),
        )
    )


def _run_stock(root: Path, name: str) -> None:
    """Child process: the same pipeline definition through plain LocalDagRunner."""
    from beamline.runner.local import prepare_environment

    prepare_environment()
    from tfx import v1 as tfx

    from beamline import registry
    from beamline.data.files import resolve_data
    from beamline.metadata.connection import sqlite_config
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
    target = name
    if name == "stock":
        target = f"{_stock_copy(base) / STOCK_FILE}:create_pipeline"
    wall_a = _timed([py, __file__, "--_stock", str(a_root), "--pipeline", name], base / "a.log")
    comp_a = component_seconds(a_root)
    beamline = [py, "-m", "beamline", "run", target, "--root", str(b_root)]
    wall_b = _timed(beamline, base / "b.log")
    comp_b = component_seconds(b_root)
    wall_c = _timed(beamline, base / "c.log")
    comp_c = component_seconds(b_root)
    return {"a": (wall_a, comp_a), "b": (wall_b, comp_b), "c": (wall_c, comp_c)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=["penguin", "taxi", "stock"], default="penguin")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep run roots here")
    parser.add_argument("--_stock", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._stock and args.pipeline == "stock":
        _run_stock_file(args._stock, args._stock.parent / "stock_tfx")
        return
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
