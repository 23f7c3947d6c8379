"""Benchmark: `beamline run --spec --as kubeflow|vertex` against `beamline run` of the pipeline.

Each round, with the same data (the pipeline's embedded CSV) and the Tuner off (`--tune` puts it
in both):
(a) `beamline run PIPELINE` in a fresh root: the local runner (Beam in this process, TFX's
    launcher, nodes in parallel up to --max-parallel);
(b) `beamline run --spec F.json --as kubeflow` of the pipeline compiled for Kubeflow (`--as
    vertex`: for Vertex), in another fresh root: every task a subprocess of its own (TensorFlow
    and TFX imported per task), in parallel as the DAG allows;
(c) the same `run --spec` again in (b)'s root: what the cache serves (on Kubeflow the
    ExampleGen is never cached, so every task that reads its examples runs again; on Vertex the
    driver hook's fingerprint of the unchanged file keys it, and the Evaluator and Pusher run
    again against the newly blessed baseline; see docs/guides/kubeflow-vertex.md).
Each command is a separate process (imports included). Wall and CPU seconds (user + system of
its process tree) per command, the tasks' own times of (b) and (c) from the run's summary, then
the medians and the ratios b/a, c/b and c/a. CPU seconds are what to compare on a machine
others share.

    .venv/bin/python benchmarks/spec_run.py [--pipeline taxi] [--as vertex] [--rounds N]
        [--max-parallel N] [--tune] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
TASK_LINE = re.compile(r"^  (\S+)\s+(\d+\.\d) s\s|^  (\S+)\s+cached from ")


@dataclass
class Timed:
    wall: float
    cpu: float
    proc: subprocess.CompletedProcess


@dataclass
class Round:
    plain: Timed | None = None
    cold: Timed | None = None
    cached: Timed | None = None
    tasks: dict[str, dict[str, str]] = field(default_factory=dict)  # b/c -> task -> seconds
    loads: list[tuple[float, float, float]] = field(default_factory=list)
    code_changed: bool = False


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _beamline(*args: str) -> Timed:
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "beamline", *args], capture_output=True,
                          text=True, cwd=PROJECT)
    timed = Timed(time.perf_counter() - start, _children_cpu() - cpu, proc)
    if proc.returncode != 0:
        sys.exit(f"{proc.args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return timed


def _tasks(out: str) -> dict[str, str]:
    """Task -> its seconds ("12.3") or "cached", from `run --spec`'s summary."""
    found = {}
    for line in out.splitlines():
        match = TASK_LINE.match(line)
        if match:
            found[match.group(1) or match.group(3)] = match.group(2) or "cached"
    return found


def _headline(out: str) -> str:
    return next((line for line in out.splitlines() if line.startswith("Ran ")), "").split(
        "; log")[0]


def one_round(args: argparse.Namespace, work: Path) -> Round:
    r = Round(loads=[os.getloadavg()])
    tune = [] if args.tune else ["--no-tune"]
    parallel = ["--max-parallel", str(args.max_parallel)]
    spec = work / f"{args.pipeline}.json"
    _beamline("compile", args.pipeline, "--target", args.target, "--image",
              "registry.example/beamline:bench", "--pipeline-root", "gs://bench/root", *tune,
              "--out", str(spec))
    r.plain = _beamline("run", args.pipeline, "--root", str(work / "plain"), *tune, *parallel)
    print(f"(a) beamline run {args.pipeline}: {r.plain.wall:.1f} s (cpu {r.plain.cpu:.1f} s)",
          flush=True)
    spec_root = str(work / "spec")
    code = _code_digest()
    for label, attr in (("b", "cold"), ("c", "cached")):
        timed = _beamline("run", "--spec", str(spec), "--as", args.target, "--root", spec_root,
                          *parallel)
        setattr(r, attr, timed)
        r.tasks[label] = _tasks(timed.proc.stdout)
        print(f"({label}) run --spec --as {args.target}, {'cold' if label == 'b' else 'again'}: "
              f"{timed.wall:.1f} s (cpu {timed.cpu:.1f} s); {_headline(timed.proc.stdout)}",
              flush=True)
    r.loads.append(os.getloadavg())
    if _code_digest() != code:
        r.code_changed = True
        print("    the project's code or lock changed during (b) or (c) (another editor?): the "
              "cache key holds it, so (c) measures a miss, not the cache", flush=True)
    return r


def _code_digest() -> str:
    """What the spec cache keys this checkout's code on (beamline.deploy.spec_cache)."""
    from beamline import project
    from beamline.deploy.spec_cache import project_code_digest

    return project_code_digest(project.current())


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _summary(rounds: list[Round]) -> None:
    print(f"\n== medians over {len(rounds)} round(s)")
    rows = [("(a) beamline run", [r.plain for r in rounds]),
            ("(b) run --spec, cold", [r.cold for r in rounds]),
            ("(c) run --spec, again", [r.cached for r in rounds])]
    print(f"{'command':28s} {'wall s':>8s} {'cpu s':>8s}")
    for name, timed in rows:
        print(f"{name:28s} {_median([t.wall for t in timed]):8.1f} "
              f"{_median([t.cpu for t in timed]):8.1f}")
    for name, num, den in (("b/a", "cold", "plain"), ("c/b", "cached", "cold"),
                           ("c/a", "cached", "plain")):
        wall = _median([getattr(r, num).wall / getattr(r, den).wall for r in rounds])
        cpu = _median([getattr(r, num).cpu / getattr(r, den).cpu for r in rounds])
        print(f"{name}: wall {wall:.2f}, cpu {cpu:.2f}")
    last = rounds[-1].tasks
    print(f"\n{'task (own seconds, last round)':32s} {'(b) cold':>9s} {'(c) again':>9s}")
    for task in last.get("b", {}):
        print(f"{task:32s} {last['b'][task]:>9s} {last.get('c', {}).get(task, ''):>9s}")
    changed = sum(r.code_changed for r in rounds)
    if changed:
        print(f"{changed} round(s) had the code change under them: their (c) is a miss")
    ones = [load[0] for r in rounds for load in r.loads]
    print(f"1-minute load average at the rounds' starts and ends: {min(ones):.2f} to "
          f"{max(ones):.2f} ({os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", choices=("penguin", "taxi"), default="penguin")
    parser.add_argument("--as", dest="target", choices=("kubeflow", "vertex"),
                        default="kubeflow", help="compile for and run --spec as this target")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each in fresh roots")
    parser.add_argument("--max-parallel", type=int, default=None,
                        help="for all three commands [default: beamline run's]")
    parser.add_argument("--tune", action="store_true", help="the Tuner in (a), (b) and (c)")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    if args.max_parallel is None:
        from beamline.settings import DEFAULT_MAX_PARALLEL

        args.max_parallel = DEFAULT_MAX_PARALLEL
    base = args.keep or Path(tempfile.mkdtemp(prefix="beamline-bench-spec-"))
    rounds = []
    for i in range(args.rounds):
        print(f"== round {i + 1} ({args.pipeline} as {args.target}, --max-parallel "
              f"{args.max_parallel})",
              flush=True)
        work = base / f"round-{i + 1}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        rounds.append(one_round(args, work))
    _summary(rounds)
    print(f"work directory: {base}")


if __name__ == "__main__":
    main()
