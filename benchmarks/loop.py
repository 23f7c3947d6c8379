"""Benchmark: `beamline loop` steps on the penguin (or taxi) pipeline (not a test).

Each round, in a fresh root:
(a) a cold `beamline run` on span 1 (with the Tuner, as a first run of a team's pipeline;
    `--no-tune` leaves it out of both (a) and the loop);
(b) loop steps that decide not to retrain (normal traffic, no new span): wall time of
    `beamline loop --once` and where it goes (the step prints its phases);
(c) a loop step that retrains on a new span 2 (one feature shifted, shifted traffic): wall time,
    against (a). With the Tuner, the loop's run reuses (a)'s tuned hyperparameters (the module
    file and schema are unchanged), which is where a recurring retrain saves its time;
(d) the same retrain as a plain `beamline run --trigger "new data"` of span 3 (span 2's rows
    again): the same hyperparameters reused, the same baseline for the Evaluator, the same
    server beside it. (c)'s node times should match (d)'s: the loop adds its step, not time
    inside the run.
Each command is a separate process (imports included: what a cron job waits for), with a real
`beamline serve` logging real requests. Wall and CPU seconds (user + system of the command's
process tree) are printed per command, the per-node times (MLMD) of (a), (c) and (d), then the
medians over the rounds. CPU seconds are what to compare on a machine others share.

    .venv/bin/python benchmarks/loop.py [--pipeline taxi] [--rounds N] [--steps N] [--no-tune]
        [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
MISSING = ("", "NA", "N/A", "NaN", "nan", "null", "NULL")
# The feature each pipeline's span 2 and traffic move (by SHIFT, capped at CAP) to cause drift.
SHIFTS = {"penguin": ("body_mass_g", 700, 7000), "taxi": ("fare", 25.0, None)}
TUNER = "Tuner"


@dataclass
class Timed:
    wall: float
    cpu: float
    proc: subprocess.CompletedProcess


@dataclass
class Round:
    cold: Timed | None = None
    steps: list[Timed] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    loop_run: Timed | None = None
    plain: Timed | None = None
    nodes: dict[str, dict[str, float]] = field(default_factory=dict)  # a/c/d -> node -> s
    notes: list[str] = field(default_factory=list)
    loads: list[tuple[float, float, float]] = field(default_factory=list)  # round start, end


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _beamline(*args: str) -> Timed:
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "beamline", *args], capture_output=True,
                          text=True, cwd=PROJECT)
    return Timed(time.perf_counter() - start, _children_cpu() - cpu, proc)


def _check(timed: Timed, codes=(0,)) -> Timed:
    proc = timed.proc
    if proc.returncode not in codes:
        sys.exit(f"{proc.args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return timed


def _source_csv(pipeline: str) -> Path:
    from beamline import registry

    root = Path(registry.load_module(pipeline).default_data_root())
    return root if root.is_file() else sorted(root.glob("*.csv"))[0]


def _rows(pipeline: str) -> tuple[list[str], list[dict[str, str]]]:
    with open(_source_csv(pipeline), newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def _shifted(value: str, kind: type, shift: float, cap: float | None) -> str:
    moved = kind(float(value) + shift)
    return str(min(moved, kind(cap)) if cap is not None else moved)


def _instances(pipeline: str, rows: list[dict[str, str]], shift: bool = False) -> list[dict]:
    """Request instances of the serving features (the pipeline's SAMPLE_INSTANCE keys)."""
    from beamline import registry

    sample = registry.load_module(pipeline).SAMPLE_INSTANCE
    name, by, cap = SHIFTS[pipeline]
    out = []
    for row in rows:
        if any(row.get(k, "") in MISSING for k in sample):
            continue
        kinds = {k: type(v) for k, v in sample.items()}
        item = {k: kinds[k](float(row[k])) if kinds[k] in (int, float) else row[k]
                for k in sample}
        if shift:
            item[name] = kinds[name](float(_shifted(row[name], kinds[name], by, cap)))
        out.append(item)
    return out


def _shifted_rows(pipeline: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    from beamline import registry

    name, by, cap = SHIFTS[pipeline]
    kind = type(registry.load_module(pipeline).SAMPLE_INSTANCE[name])
    return [dict(r, **{name: _shifted(r[name], kind, by, cap)}) if r[name] not in MISSING else r
            for r in rows]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, instances: list[dict]) -> None:
    for start in range(0, len(instances), 16):
        body = json.dumps({"instances": instances[start : start + 16]}).encode()
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("beamline serve exited")
        try:
            status = json.loads(urllib.request.urlopen(url, timeout=5).read())
            if any(v.get("state") == "AVAILABLE" for v in status["model_version_status"]):
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("beamline serve never became ready")


def _next_second() -> int:
    boundary = math.floor(time.time()) + 1
    time.sleep(max(0.0, boundary - time.time()) + 0.05)
    return boundary


def _iso(secs: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))


def newest_run_nodes(root: Path) -> dict[str, float]:
    """Per-node execution durations (MLMD create -> last update) of the newest run in `root`."""
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    store = mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))
    newest = max(store.get_contexts_by_type("pipeline_run"),
                 key=lambda c: c.create_time_since_epoch)
    in_run = {e.id for e in store.get_executions_by_context(newest.id)}
    durations = {}
    for ctx in store.get_contexts_by_type("node"):
        for e in store.get_executions_by_context(ctx.id):
            if e.id in in_run:
                durations[ctx.name.split(".", 1)[1]] = (
                    e.last_update_time_since_epoch - e.create_time_since_epoch
                ) / 1e3
    return durations


def one_round(args, base: Path) -> Round:
    tune = ("--no-tune",) if args.no_tune else ()
    pipeline = args.pipeline
    root, data, logs = base / "root", base / "data", base / "requests"
    header, rows = _rows(pipeline)
    _write(data / "span-1" / "data.csv", header, rows)
    result = Round(loads=[os.getloadavg()])
    result.cold = _check(_beamline("run", pipeline, "--data", str(data), "--root", str(root),
                                   *tune))
    result.nodes["a"] = newest_run_nodes(root)
    print(f"(a) cold run, span 1{', --no-tune' if tune else ', with the Tuner'}: "
          f"{result.cold.wall:.1f} s (cpu {result.cold.cpu:.1f} s)", flush=True)

    rest = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "beamline", "serve", f"--port={_free_port()}",
         f"--rest_api_port={rest}", f"--model_name={pipeline}",
         f"--model_base_path={root / 'serving' / pipeline}", f"--request_log_dir={logs}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT,
    )
    loop = ("loop", pipeline, "--data", str(data), "--requests", str(logs), "--once",
            *tune, "--root", str(root))
    try:
        url = f"http://127.0.0.1:{rest}/v1/models/{pipeline}"
        _wait_ready(url, server)
        normal = _instances(pipeline, rows)
        # Data files are often sorted (penguins by species): a window of its first rows skews.
        random.Random(0).shuffle(normal)
        # Windows of 150 rows: with 60, sampling noise alone put a feature's JSD against the
        # previous window past 0.10 (an alert, exit 12). Either way no run starts.
        size = min(150, len(normal) // max(args.steps, 1))
        for i in range(args.steps):
            _post(f"{url}:predict", normal[i * size : (i + 1) * size])
            step = _check(_beamline(*loop, "--until", _iso(_next_second())), codes=(0, 12))
            result.steps.append(step)
            result.phases += re.findall(r"step timings: .*", step.proc.stdout)
            print(f"(b) no-retrain step {i + 1}: {step.wall:.1f} s (cpu {step.cpu:.1f} s)",
                  flush=True)
        for line in result.phases:
            print(f"    {line}")
        shifted = _shifted_rows(pipeline, rows)
        _write(data / "span-2" / "data.csv", header, shifted)
        traffic = _instances(pipeline, rows, shift=True)
        random.Random(1).shuffle(traffic)
        _post(f"{url}:predict", traffic[:400])
        result.loop_run = _check(_beamline(*loop, "--until", _iso(_next_second())))
        out = result.loop_run.proc.stdout
        if "blessed and pushed" not in out and "not blessed" not in out:
            sys.exit(f"the step did not retrain:\n{out}")
        result.nodes["c"] = newest_run_nodes(root)
        result.notes = [line.strip() for line in out.splitlines()
                        if "hyperparameters" in line or " took " in line]
        print(f"(c) loop step retraining on span 2: {result.loop_run.wall:.1f} s "
              f"(cpu {result.loop_run.cpu:.1f} s)", flush=True)
        for line in result.notes:
            print(f"    {line}")
        # The same retrain without the loop: span 3 holds span 2's rows again.
        _write(data / "span-3" / "data.csv", header, shifted)
        result.plain = _check(_beamline("run", pipeline, "--data", str(data), "--root",
                                        str(root), "--span", "3", "--trigger", "new data",
                                        *tune))
        result.nodes["d"] = newest_run_nodes(root)
        print(f"(d) plain `beamline run --trigger 'new data'` on span 3 (= span 2's rows): "
              f"{result.plain.wall:.1f} s (cpu {result.plain.cpu:.1f} s)", flush=True)
    finally:
        server.terminate()
        server.wait()
    result.loads.append(os.getloadavg())
    # The Beam arguments each run chose (its console's `beam args` line): (c) must get (d)'s.
    for run, timed in (("a", result.cold), ("c", result.loop_run), ("d", result.plain)):
        print(f"    ({run}) {_beam_line(timed.proc.stdout)}")
    print("    load average (1, 5, 15 min) at the round's start and end: "
          + "; ".join(" ".join(f"{x:.2f}" for x in load) for load in result.loads))
    _print_nodes([result])
    return result


def _beam_line(stdout: str) -> str:
    found = re.search(r"beam args .*", stdout)
    return found.group(0) if found else "no `beam args` line"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _print_nodes(rounds: list[Round]) -> None:
    names = []
    for r in rounds:
        for run in ("a", "c", "d"):
            names += [n for n in r.nodes.get(run, {}) if n not in names]
    print(f"    {'node (MLMD seconds)':28s} {'(a) cold':>9s} {'(c) loop':>9s} {'(d) plain':>9s}")
    for name in names:
        cells = []
        for run in ("a", "c", "d"):
            values = [r.nodes[run][name] for r in rounds if name in r.nodes.get(run, {})]
            cells.append(f"{_median(values):9.1f}" if values else f"{'-':>9s}")
        print(f"    {name:28s} {' '.join(cells)}")


def _summary(rounds: list[Round]) -> None:
    cold = [r.cold.wall for r in rounds]
    tuner = [r.nodes["a"].get(TUNER, 0.0) for r in rounds]
    print(f"\n== medians over {len(rounds)} round(s)")
    print(f"(a) cold run: {_median(cold):.1f} s (cpu {_median([r.cold.cpu for r in rounds]):.1f}"
          f" s); its Tuner {_median(tuner):.1f} s; (a) minus its Tuner "
          f"{_median([c - t for c, t in zip(cold, tuner, strict=True)]):.1f} s")
    steps = [s for r in rounds for s in r.steps]
    print(f"(b) no-retrain step: {_median([s.wall for s in steps]):.1f} s "
          f"(cpu {_median([s.cpu for s in steps]):.1f} s; target <= 5 s)")
    print(f"(c) loop retrain: {_median([r.loop_run.wall for r in rounds]):.1f} s "
          f"(cpu {_median([r.loop_run.cpu for r in rounds]):.1f} s)")
    print(f"(d) plain retrain: {_median([r.plain.wall for r in rounds]):.1f} s "
          f"(cpu {_median([r.plain.cpu for r in rounds]):.1f} s)")
    print(f"c/a: {_median([r.loop_run.wall / r.cold.wall for r in rounds]):.2f} "
          f"(cpu {_median([r.loop_run.cpu / r.cold.cpu for r in rounds]):.2f}; target <= 0.6)")
    print(f"d/a: {_median([r.plain.wall / r.cold.wall for r in rounds]):.2f}; c/d: "
          f"{_median([r.loop_run.wall / r.plain.wall for r in rounds]):.2f}")
    ones = [load[0] for r in rounds for load in r.loads]
    print(f"1-minute load average at the rounds' starts and ends: {min(ones):.2f} to "
          f"{max(ones):.2f} ({os.cpu_count()} CPUs)")
    _print_nodes(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=sorted(SHIFTS), default="penguin")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each in a fresh root")
    parser.add_argument("--steps", type=int, default=3, help="no-retrain steps per round")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    parser.add_argument("--no-tune", action="store_true", help="no Tuner in (a) nor the loop")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="beamline-bench-loop-"))
    rounds = []
    for i in range(args.rounds):
        print(f"== round {i + 1} ({args.pipeline})", flush=True)
        work = base / f"round-{i + 1}"
        shutil.rmtree(work, ignore_errors=True)
        rounds.append(one_round(args, work))
    _summary(rounds)
    print(f"work directory: {base}")


if __name__ == "__main__":
    main()
