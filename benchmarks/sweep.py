"""Benchmark: a 2x2 `beamline run --set` sweep against the same four runs by hand (not a test).

Side by side in one benchmark run, each in a fresh root, on the penguin pipeline (`--no-tune`,
the pipeline's own train steps):
(a) one cold run: the sweep's first variant alone (`--set learning_rate=L1 --set units=U1`,
    `--no-tune` as the sweep);
(t) one cold run as the pipeline runs by default, with its Tuner (what a sweep of the
    hyperparameters by hand replaces);
(b) the sweep: `--set learning_rate=L1,L2 --set units=U1,U2`, once with `--jobs 1` (one variant
    after another in one process) and once with `--jobs 2` (the first alone, then two at a time,
    one of them in a child process);
(c) the same four variants as four `beamline run --set` commands one after another into one
    root, as a user would: the second to fourth take ExampleGen, StatisticsGen, the validator
    and Transform from the cache too, but each process imports TensorFlow and builds the
    pipeline again.
Each command is a separate process (imports included). Wall and CPU seconds (user + system of
the command's process tree) are printed per command, then the ratios to (a) and (t) (target:
the sweep <= 1.6x one cold run) and, from MLMD, the seconds each node of each of the sweep's
runs took (where the time goes). CPU seconds are what to compare on a machine others share.

    nice -n 19 .venv/bin/python benchmarks/sweep.py [--rounds N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.loop import Timed, _beamline, _check  # noqa: E402

AXES = (("learning_rate", ("0.003", "0.1")), ("units", ("8", "16")))
VARIANTS = [(("learning_rate", lr), ("units", u)) for lr in AXES[0][1] for u in AXES[1][1]]
COMMON = ("--no-tune",)
SHARED = ("CsvExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "Transform")


@dataclass
class Round:
    cold: Timed | None = None
    tuned: Timed | None = None
    sweeps: dict[int, Timed] = field(default_factory=dict)  # --jobs -> the sweep
    by_hand: list[Timed] = field(default_factory=list)
    nodes: dict[int, list[dict[str, float]]] = field(default_factory=dict)  # --jobs -> runs
    loads: list[tuple[float, float, float]] = field(default_factory=list)


def _sets(variant) -> list[str]:
    return [x for name, value in variant for x in ("--set", f"{name}={value}")]


def run_nodes(root: Path) -> list[dict[str, float]]:
    """Per-node execution seconds (MLMD create -> last update) of each run in `root`, oldest run
    first; a node the run took from the cache is absent."""
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    store = mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))
    node_of = {e.id: ctx.name.split(".", 1)[1]
               for ctx in store.get_contexts_by_type("node")
               for e in store.get_executions_by_context(ctx.id)}
    runs = sorted(store.get_contexts_by_type("pipeline_run"),
                  key=lambda c: c.create_time_since_epoch)
    out = []
    for run in runs:
        nodes = {}
        for e in store.get_executions_by_context(run.id):
            if e.last_known_state == e.COMPLETE and e.id in node_of:
                nodes[node_of[e.id]] = (
                    e.last_update_time_since_epoch - e.create_time_since_epoch) / 1e3
        out.append(nodes)
    return out


def _say(label: str, timed: Timed) -> None:
    print(f"{label}: {timed.wall:.1f} s (cpu {timed.cpu:.1f} s)", flush=True)


def one_round(base: Path, jobs: list[int]) -> Round:
    result = Round(loads=[os.getloadavg()])
    result.cold = _check(_beamline("run", "penguin", "--root", str(base / "cold"), *COMMON,
                                   *_sets(VARIANTS[0])))
    _say("(a) one cold run", result.cold)
    result.tuned = _check(_beamline("run", "penguin", "--root", str(base / "tuned")))
    _say("(t) one cold run with the Tuner", result.tuned)
    grid = [x for name, values in AXES for x in ("--set", f"{name}={','.join(values)}")]
    for n in jobs:
        root = base / f"sweep-jobs-{n}"
        timed = _check(_beamline("run", "penguin", "--root", str(root), *COMMON, *grid,
                                 "--jobs", str(n)))
        result.sweeps[n] = timed
        result.nodes[n] = run_nodes(root)
        _say(f"(b) 2x2 sweep, --jobs {n}", timed)
    for i, variant in enumerate(VARIANTS, 1):
        timed = _check(_beamline("run", "penguin", "--root", str(base / "by-hand"), *COMMON,
                                 *_sets(variant)))
        result.by_hand.append(timed)
        _say(f"(c) by hand, run {i} of 4", timed)
    result.loads.append(os.getloadavg())
    print("    load average (1, 5, 15 min) at the round's start and end: "
          + "; ".join(" ".join(f"{x:.2f}" for x in load) for load in result.loads))
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _print_nodes(r: Round) -> None:
    for n, runs in r.nodes.items():
        print(f"    --jobs {n}: seconds per node of each run (MLMD), absent = from the cache")
        names = []
        for nodes in runs:
            names += [name for name in nodes if name not in names]
        print(f"    {'node':20s} " + " ".join(f"{'run ' + str(i):>7s}"
                                            for i in range(1, len(runs) + 1)))
        for name in names:
            print(f"    {name:20s} " + " ".join(
                f"{nodes[name]:7.1f}" if name in nodes else f"{'-':>7s}" for nodes in runs))
        shared = sum(runs[0].get(name, 0.0) for name in SHARED) if runs else 0.0
        later = [sum(nodes.values()) for nodes in runs[1:]]
        print(f"    shared nodes {shared:.1f} s in run 1; nodes of each later run: "
              + ", ".join(f"{s:.1f}" for s in later) + " s")


def _summary(rounds: list[Round], jobs: list[int]) -> None:
    print(f"\n== medians over {len(rounds)} round(s)")
    cold = [r.cold.wall for r in rounds]
    cold_cpu = _median([r.cold.cpu for r in rounds])
    print(f"(a) one cold run: {_median(cold):.1f} s (cpu {cold_cpu:.1f} s)")
    print(f"(t) one cold run with the Tuner: {_median([r.tuned.wall for r in rounds]):.1f} s "
          f"(cpu {_median([r.tuned.cpu for r in rounds]):.1f} s)")
    for n in jobs:
        wall = [r.sweeps[n].wall for r in rounds]
        cpu = [r.sweeps[n].cpu for r in rounds]
        print(f"(b) sweep --jobs {n}: {_median(wall):.1f} s (cpu {_median(cpu):.1f} s); "
              f"b/a {_median([r.sweeps[n].wall / r.cold.wall for r in rounds]):.2f} "
              f"(cpu {_median([r.sweeps[n].cpu / r.cold.cpu for r in rounds]):.2f}), "
              f"b/t {_median([r.sweeps[n].wall / r.tuned.wall for r in rounds]):.2f} "
              f"(cpu {_median([r.sweeps[n].cpu / r.tuned.cpu for r in rounds]):.2f}); "
              "target <= 1.6")
    hand = [sum(t.wall for t in r.by_hand) for r in rounds]
    hand_cpu = [sum(t.cpu for t in r.by_hand) for r in rounds]
    print(f"(c) four runs by hand: {_median(hand):.1f} s (cpu {_median(hand_cpu):.1f} s); "
          f"c/a {_median([h / r.cold.wall for h, r in zip(hand, rounds, strict=True)]):.2f}")
    for n in jobs:
        print(f"c/b (--jobs {n}): "
              f"{_median([h / r.sweeps[n].wall for h, r in zip(hand, rounds, strict=True)]):.2f}")
    if 1 in jobs and 2 in jobs:
        print(f"--jobs 2 / --jobs 1: "
              f"{_median([r.sweeps[2].wall / r.sweeps[1].wall for r in rounds]):.2f} wall, "
              f"{_median([r.sweeps[2].cpu / r.sweeps[1].cpu for r in rounds]):.2f} cpu")
    ones = [load[0] for r in rounds for load in r.loads]
    print(f"1-minute load average at the rounds' starts and ends: {min(ones):.2f} to "
          f"{max(ones):.2f} ({os.cpu_count()} CPUs)")
    _print_nodes(rounds[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each in fresh roots")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                        help="the sweep's --jobs values to time")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="beamline-bench-sweep-"))
    rounds = []
    for i in range(args.rounds):
        print(f"== round {i + 1}", flush=True)
        work = base / f"round-{i + 1}"
        shutil.rmtree(work, ignore_errors=True)
        rounds.append(one_round(work, args.jobs))
    _summary(rounds, args.jobs)
    print(f"work directory: {base}")


if __name__ == "__main__":
    main()
