"""Benchmark: `beamline experiments PIPELINE` and the UI's experiments page over a large store
(issue 31's target: <= 200 ms each, server side).

The store (SQLite, written with MLMD's API through the tests' experiments Writer,
tests/beamline/experiments/test_table.py, and the files runs leave beside it, as
tests/beamline/ui/experiments_demo.py writes them): --runs runs (default 1,000) of pipeline
"penguin" across three experiments and unnamed runs; every run has an ExampleGen (span, input
fingerprint), a Trainer with a --epochs-epoch history.json, an Evaluator with TFMA metrics
(Overall and three island slices) and a blessing. Every --tuned-every-th run's Tuner searched
--trials trials (defaults: every 4th, 20 trials: 5,000 trials), a failed trial among them, the
completed ones each with its --epochs-epoch curve in the search's histories.json; the
sweep runs fix their hyperparameters (`--set`), some runs import an earlier search's best
hyperparameters (an Importer of its directory). Every 100th blessed run pushed, and the
labels stable and canary moved across the pushed versions.

Timed in this process, median of --repeat repetitions, the Graph of the store already loaded
unless said (what a warm `beamline ui` has; the CLI loads it first, timed apart):

- load: reading the store into a Graph (beamline.lineage.access.open_graph_and_store);
- table: what `beamline experiments penguin --json` does after the load (label history, the
  rows of beamline/experiments/table.py, their JSON);
- where+sort: the same with `--where "auc > 0.9 and blessed and units >= 16" --sort -auc`;
- cli --json, no row cache: the whole command through the CLI's entry point with no
  experiments-cache.sqlite in the run root (its first answer: the Graph loaded, every row
  built, then kept);
- cli --json, cli --json where+sort, cli text table: the same with the row cache (the store
  unchanged since the last answer: no MLMD read);
- cli --json, a label moved / one new run: a copy of the store changed (a label change
  recorded; a run of three nodes added) before each answer: the run contexts and label changes
  read, the new run's row built from its own runs' records (beamline.lineage.load.load_runs);
- process: `beamline --help` and `beamline experiments penguin --json` in new processes (the
  interpreter and the CLI's imports: what the in-process figures leave out);
- UI page, UI page filtered: GET /experiments/penguin (and ?where=...&sort=...) through the UI's
  WSGI app (beamline/ui/app.py) on a warm Reader, the time to the last byte of the body;
- UI page, rows rebuilt: the filtered page with the Reader's kept rows dropped first, what the
  first page after the store changed costs (every run's row read again).

    .venv/bin/python benchmarks/experiments_scale.py [--runs 1000] [--trials 20]
        [--tuned-every 4] [--repeat 7] [--keep DIR] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

PIPELINE = "penguin"
EXPERIMENTS = ("lr-sweep", "units-sweep", "dropout-sweep", None)  # None: runs of no experiment
ISLANDS = ("Biscoe", "Dream", "Torgersen")
WHERE = "auc > 0.9 and blessed and units >= 16"
SORT = "-auc"
BASE_MS = 1_764_000_000_000


def _auc(i: int) -> float:
    return round(0.80 + 0.19 * ((i * 7919) % 1000) / 1000, 4)


def build_store(base: Path, runs: int, trials: int, tuned_every: int, epochs: int) -> Path:
    """The store and files under `base`; returns the run root."""
    from beamline.metadata import run_context as rc
    from beamline.metadata.connection import open_store, sqlite_config
    from tests.beamline.experiments.test_table import Writer
    from tests.beamline.lineage.test_trials import (
        best_hyperparameters,
        trial_history,
        trial_state,
        write_project,
        write_trial_histories,
    )
    from tests.beamline.ui import writer
    from tests.beamline.ui.experiments_demo import history

    root, files = base / "root", base / "files"
    store = open_store(sqlite_config(root / "metadata.sqlite"))
    w = Writer(store, root)
    last_best = None  # (artifact uri, run id) of the latest search
    pushed_versions: list[tuple[int, int]] = []  # (version, PushedModel id)
    for i in range(runs):
        run_id = f"2026-12-01T00:00:00.{i:06d}"
        experiment = EXPERIMENTS[i % len(EXPERIMENTS)]
        auc = _auc(i)
        learning_rate = (0.001, 0.003, 0.01, 0.03)[i % 4]
        units = (8, 16, 32, 64)[(i // 4) % 4]
        custom = {}
        if experiment is not None:
            overrides = {"learning_rate": learning_rate, "units": units}
            if experiment == "dropout-sweep":
                overrides = {"dropout": round(0.1 * (i % 5), 1), "units": units}
            custom = {rc.EXPERIMENT: experiment, rc.OVERRIDES: json.dumps(overrides)}
        run = w.run(run_id, **custom)
        d = files / run_id
        examples = w.artifact("Examples", d / "examples", span=1 + i // 100,
                              input_fingerprint=f"split:single_split,num_files:1,"
                              f"total_bytes:{13240 + i // 100},xor_checksum:{i // 100}")
        w.execution(run, "ExampleGen", outputs={"examples": examples}, input_base=str(files))
        trainer_inputs, trainer_props = None, {}
        if i % tuned_every == 0:
            results = d / "tuner_results"
            states, curves = [], {}
            for t in range(trials):
                values = {"learning_rate": (0.001, 0.003, 0.01, 0.03)[t % 4],
                          "units": (8, 16, 32, 64)[(t // 4) % 4]}
                if t == trials - 1:
                    states.append(trial_state(f"{t:02d}", values, status="FAILED",
                                              message="Traceback: ResourceExhaustedError"))
                    continue
                score = round(auc - 0.002 * (t % 9), 4)
                val_acc = tuple(round(score - 0.05 * (epochs - 1 - e), 4) for e in range(epochs))
                states.append(trial_state(f"{t:02d}", values, score=score, val_acc=val_acc))
                curves[f"{t:02d}"] = trial_history(val_acc)
            write_project(results / "keras_tuner", states,
                          search={"objective": "val_auc", "direction": "max"})
            write_trial_histories(results / "keras_tuner", curves)
            best = w.artifact("HyperParameters",
                              best_hyperparameters(d / "best", states[0]["hyperparameters"]
                                                   ["values"]))
            w.execution(run, "Tuner", outputs={
                "best_hyperparameters": best,
                "tuner_results": w.artifact("TunerResults", results),
            })
            trainer_inputs = {"hyperparameters": best}
            last_best = best.uri
        elif experiment is None and last_best is not None:
            # An Importer of the latest search's best hyperparameters.
            imported = w.artifact("HyperParameters", last_best)
            w.execution(run, "Importer", outputs={"result": imported})
            trainer_inputs = {"hyperparameters": imported}
        if experiment is not None:
            trainer_props["custom_config"] = json.dumps(
                {rc.FIXED_HYPERPARAMETERS_KEY: json.loads(custom[rc.OVERRIDES])}
            )
        model_run = d / "model_run"
        model_run.mkdir(parents=True)
        (model_run / "history.json").write_text(json.dumps(history(auc, epochs)))
        w.execution(run, "Trainer", inputs=trainer_inputs,
                    outputs={"model_run": w.artifact("ModelRun", model_run)}, **trainer_props)
        writer.write_tfma_metrics(d / "evaluation", {
            "Overall": {"auc": auc, "binary_accuracy": round(auc - 0.03, 4),
                        "example_count": 100.0},
            **{f"island={name}": {"auc": round(auc - 0.01 * k, 4), "example_count": 30.0}
               for k, name in enumerate(ISLANDS)},
        })
        blessed = auc >= 0.85
        w.execution(run, "Evaluator", outputs={
            "evaluation": w.artifact("ModelEvaluation", d / "evaluation"),
            "blessing": w.artifact("ModelBlessing", d / "blessing", blessed=int(blessed)),
        })
        if blessed and i % 100 == 0:
            version = 1_764_000_000 + i
            pushed = w.artifact("PushedModel", d / "pushed", pushed=1,
                                pushed_version=str(version),
                                pushed_destination=str(root / "serving" / PIPELINE / str(version)))
            w.execution(run, "Pusher", outputs={"pushed_model": pushed})
            pushed_versions.append((version, pushed.id))
    # Labels moved across the pushes: stable trails canary by one version.
    canary = stable = -1
    for n, (version, pushed_id) in enumerate(pushed_versions):
        writer.label_change(store, PIPELINE, "canary", canary, version, "promote", pushed_id,
                            at_ms=BASE_MS + n * 60_000)
        canary = version
        if n:
            previous, previous_id = pushed_versions[n - 1]
            writer.label_change(store, PIPELINE, "stable", stable, previous, "promote",
                                previous_id, at_ms=BASE_MS + n * 60_000 + 1)
            stable = previous
    return root


def table_json(graph, store, where=None, sort=None) -> str:
    """The body of `beamline experiments PIPELINE --json [--where] [--sort]` after the load."""
    from beamline.experiments import table
    from beamline.metadata import labels as label_history

    held = label_history.holders(label_history.history(store, PIPELINE))
    rows = table.build(graph, PIPELINE, label_history.labels_by_version(held))
    rows = table.order(table.select(rows, where, None), sort)
    return json.dumps([row.to_json() for row in rows], indent=2, default=str)


def cli_json(root: Path, *args: str) -> str:
    from click.testing import CliRunner

    from beamline.cli import cli

    result = CliRunner().invoke(cli, ["experiments", PIPELINE, "--root", str(root), *args])
    if result.exit_code != 0:
        raise SystemExit(f"beamline experiments failed:\n{result.output}")
    return result.output


def cold_cli_json(root: Path) -> str:
    """The command with no row cache (its first answer): every row built, then kept."""
    from beamline.experiments.cache import ROW_CACHE_FILE

    (root / ROW_CACHE_FILE).unlink(missing_ok=True)
    return cli_json(root, "--json")


class Changes:
    """Changes of a copy of the store between two answers: a label moved, a new run."""

    def __init__(self, root: Path) -> None:
        from beamline.metadata.connection import open_store, sqlite_config
        from tests.beamline.experiments.test_table import Writer

        self.root = root
        self.store = open_store(sqlite_config(root / "metadata.sqlite"))
        self.writer = Writer(self.store, root)
        self.pushed = [a for a in self.store.get_artifacts_by_type("PushedModel")][-2:]
        self.moves = 0

    def move_label(self) -> None:
        from tests.beamline.ui import writer

        old, new = self.pushed[self.moves % 2], self.pushed[(self.moves + 1) % 2]
        writer.label_change(self.store, PIPELINE, "canary", _version(old), _version(new),
                            "promote", new.id)
        self.moves += 1

    def new_run(self) -> None:
        """A run like the store's sweep runs: ExampleGen, Trainer (its history), Evaluator."""
        from beamline.metadata import run_context as rc
        from tests.beamline.ui import writer
        from tests.beamline.ui.experiments_demo import history

        self.moves += 1
        w, d = self.writer, self.root.parent / "new-runs" / str(self.moves)
        run = w.run(f"2026-12-02T00:00:00.{self.moves:06d}", **{rc.EXPERIMENT: "lr-sweep"})
        w.execution(run, "ExampleGen", outputs={"examples": w.artifact(
            "Examples", d / "examples", span=99, input_fingerprint="new")})
        (d / "model_run").mkdir(parents=True)
        (d / "model_run" / "history.json").write_text(json.dumps(history(0.9, 10)))
        w.execution(run, "Trainer", outputs={"model_run": w.artifact("ModelRun",
                                                                     d / "model_run")})
        writer.write_tfma_metrics(d / "evaluation", {"Overall": {"auc": 0.9}})
        w.execution(run, "Evaluator", outputs={
            "evaluation": w.artifact("ModelEvaluation", d / "evaluation"),
            "blessing": w.artifact("ModelBlessing", d / "blessing", blessed=1),
        })


def _version(pushed) -> int:
    return int(pushed.custom_properties["pushed_version"].string_value)


def process_ms(*argv: str, repeat: int) -> float:
    """Median wall time of `beamline ARGV...` in a new process (interpreter start included)."""
    import subprocess

    beamline = str(Path(sys.executable).parent / "beamline")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([beamline, *argv], check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def page(client, path: str) -> bytes:
    response = client.get(path)
    body = response.get_data()
    if response.status_code != 200:
        raise SystemExit(f"{path}: HTTP {response.status_code}\n{body[:400]!r}")
    return body


def profile(label: str, fn) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(f"\n--- profile: {label} ---\n{out.getvalue()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=20, help="Trials per Tuner search.")
    parser.add_argument("--tuned-every", type=int, default=4,
                        help="Every Nth run's Tuner searched.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None,
                        help="Store directory; a store there is reused.")
    parser.add_argument("--profile", action="store_true",
                        help="Print a cProfile of each measurement once.")
    args = parser.parse_args()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {platform.machine()} · "
        f"{os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    base = args.keep or Path(tempfile.mkdtemp(prefix="beamline-experiments-bench-"))
    root = base / "root"
    if (root / "metadata.sqlite").exists():
        print(f"store: reusing {root / 'metadata.sqlite'}")
    else:
        start = time.perf_counter()
        build_store(base, args.runs, args.trials, args.tuned_every, args.epochs)
        print(f"store: written in {time.perf_counter() - start:.1f} s ({root / 'metadata.sqlite'})")

    from werkzeug.test import Client

    from beamline.lineage.access import open_graph_and_store
    from beamline.ui.app import UiApp
    from beamline.ui.store import Reader

    graph, store = open_graph_and_store(root, None, PIPELINE)
    text = table_json(graph, store)
    rows = json.loads(text)
    print(f"experiments --json: {len(text.encode()) / 1e6:.1f} MB")
    trial_rows = sum(len(r["trials"]) for r in rows)
    chosen = json.loads(table_json(graph, store, WHERE, SORT))
    print(f"store: {len(rows)} runs, {trial_rows} trials, {len(graph.executions)} executions, "
          f"{len(graph.artifacts)} artifacts; {len(chosen)} runs pass --where {WHERE!r}")

    # The row cache gives what a fresh build gives, byte for byte.
    cold_cli_json(root)
    for flags in (("--json",), ("--json", "--where", WHERE, "--sort", SORT)):
        fresh = table_json(graph, store, *flags[1:][1::2]) + "\n"
        if cli_json(root, *flags) != fresh:
            raise SystemExit(f"experiments {' '.join(flags)} differs from a fresh build")
    # Changes are written to a copy: the kept store stays as built.
    import shutil

    changed = base / "changed"
    shutil.rmtree(changed, ignore_errors=True)
    shutil.copytree(root, changed / "root")
    changes = Changes(changed / "root")
    cli_json(changes.root, "--json")

    reader = Reader(root, None)
    client = Client(UiApp(reader))
    query = f"/experiments/{PIPELINE}?where={WHERE.replace(' ', '+')}&sort={SORT}"
    page(client, f"/experiments/{PIPELINE}")  # the Reader loads its Graph once
    measured = {
        "load (Graph from MLMD)": lambda: open_graph_and_store(root, None, PIPELINE),
        "table (experiments --json)": lambda: table_json(graph, store),
        "where+sort (--json)": lambda: table_json(graph, store, WHERE, SORT),
        "cli --json, no row cache": lambda: cold_cli_json(root),
        "cli --json": lambda: cli_json(root, "--json"),
        "cli --json where+sort": lambda: cli_json(root, "--json", "--where", WHERE, "--sort",
                                                 SORT),
        "cli text table": lambda: cli_json(root),
        # The store changed since the last answer (timed after the change is written).
        "cli --json, a label moved": (changes.move_label,
                                      lambda: cli_json(changes.root, "--json")),
        "cli --json, one new run": (changes.new_run, lambda: cli_json(changes.root, "--json")),
        "UI /experiments/penguin": lambda: page(client, f"/experiments/{PIPELINE}"),
        "UI page, filtered+sorted": lambda: page(client, query),
        # The first page of a new Graph (the store changed): every row built again.
        "UI page, rows rebuilt": lambda: (reader._rows.clear(), page(client, query)),
    }
    print(f"{'measure':30} {'median':>10} {'min':>10}  (of {args.repeat})")
    for name, fn in measured.items():
        before, fn = fn if isinstance(fn, tuple) else (None, fn)
        times = []
        for _ in range(args.repeat):
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        print(f"{name:30} {statistics.median(times):7.1f} ms {min(times):7.1f} ms")
    # A new process: the interpreter and the CLI's imports, then the command.
    startup = process_ms("--help", repeat=args.repeat)
    whole = process_ms("experiments", PIPELINE, "--root", str(root), "--json",
                       repeat=args.repeat)
    print(f"{'process: beamline --help':30} {startup:7.1f} ms  (interpreter + CLI start-up)")
    print(f"{'process: experiments --json':30} {whole:7.1f} ms")
    if args.profile:
        for name, fn in measured.items():
            profile(name, fn[1] if isinstance(fn, tuple) else fn)


if __name__ == "__main__":
    main()
