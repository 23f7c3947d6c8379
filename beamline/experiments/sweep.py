"""`beamline run PIPELINE --set NAME=V1,V2 ...`: one run per combination, `--jobs N` at a time.

Every variant is a recorded run of its own, stamped with the experiment and its overrides. The
first runs alone, in this process: nodes whose inputs a variant does not change (ExampleGen,
StatisticsGen, the validator, Transform for a hyperparameter) execute once there, and every
later variant takes them from TFX's cache (recorded once in MLMD, reused). With `--jobs 1` the
others follow one after another in this process (TensorFlow and TFX imported once). With
`--jobs N` they run N at a time: one in this process, the others each in a child `beamline run`
of one variant (a process has one working directory, one stdout and one run log at a time, so
concurrent variants cannot share it). The sweep holds the pipeline's lock for all of them
(beamline.runner.run_lock.sweep_lock); their MLMD writes are separate SQLite transactions, which
MLMD retries when another process holds the store, and no two variants write the same node's
cache entry (their hyperparameters differ).

What a sweep pushes is chosen: its variants run without a Pusher, so by default nothing is
pushed; `--push best` then runs the best blessed variant once more with its Pusher (every other
node from the cache), under the pipeline's push policy, and says which and why.
"""

from __future__ import annotations

import datetime
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from beamline.errors import BeamlineError, ConfigError
from beamline.metrics import higher_is_better
from beamline.quiet import quiet_library_logs

PUSH_NONE, PUSH_BEST = "none", "best"
PUSH_CHOICES = (PUSH_NONE, PUSH_BEST)


def default_experiment(now: datetime.datetime | None = None) -> str:
    """The experiment name of a sweep started without --experiment: `sweep-<start time>`."""
    return "sweep-" + (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")


def show(overrides: dict[str, Any]) -> str:
    return " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                    for k, v in overrides.items())


def check_jobs(jobs: int) -> int:
    if jobs < 1:
        raise ConfigError(
            f"--jobs {jobs}: a sweep runs at least one variant at a time; give --jobs 1 (one "
            "after another, the default) or more (that many at once)."
        )
    return jobs


def plan(request, grid: Sequence[dict[str, Any]], push: str | None = None) -> list:
    """One RunRequest per variant of `grid`; the first also checks every other variant's
    overrides before it starts. A sweep (more than one variant) always has an experiment, and
    its variants have no Pusher (`push`: PUSH_BEST pushes the best one afterwards)."""
    if push is not None and len(grid) < 2:
        raise ConfigError(
            f"--push {push} chooses what a sweep pushes, and this is one run (it pushes its "
            "model when blessed, as every run does); drop --push, or give a --set several "
            "values."
        )
    if len(grid) > 1 and request.run_id:
        raise ConfigError(
            f"--run-id names one run, but the --set values give {len(grid)} runs; drop "
            "--run-id (each run gets its own id) or give each --set one value."
        )
    experiment = request.experiment
    if len(grid) > 1 and not experiment:
        experiment = default_experiment()
    variants = [tuple(v.items()) for v in grid]
    return [
        replace(request, overrides=overrides, experiment=experiment,
                check_also=tuple(variants[1:]) if i == 0 else (), push=len(grid) < 2)
        for i, overrides in enumerate(variants)
    ]


@dataclass(frozen=True)
class ChildRun:
    """How to run one variant in a child process: `command(request, run_id)` is its argv (a
    `beamline run` of that one variant under the sweep's lock, claiming `run_id`), started in
    `cwd` with `env` (both as they were before any variant ran: a run changes its process's
    working directory and temporary directory while it runs), keeping `keep_fd` open."""

    command: Callable[[Any, str], list[str]]
    cwd: Path
    env: Mapping[str, str]
    keep_fd: int


def run_all(
    requests: Sequence, run_one: Callable, echo: Callable[[str], None],
    then: Callable[[list[tuple[Any, str]]], None] | None = None,
    jobs: int = 1, child: ChildRun | None = None,
) -> None:
    """Runs each request with `run_one(request) -> outcome` (which prints its summary and
    raises BeamlineError for a failed run); with `jobs` > 1 and `child`, the ones after the
    first `jobs` at a time (module docstring). A failed variant does not stop the others;
    `then` gets the (request, run id) of each that succeeded, in grid order, and the first
    failure is raised after."""
    if len(requests) == 1:
        run_one(requests[0])
        return
    total = len(requests)
    lines: dict[int, str] = {}
    done: dict[int, tuple[Any, str]] = {}
    failures: dict[int, BeamlineError] = {}

    def here(i: int, request) -> None:
        # A run logs the framework at INFO into its own log file; between runs that level
        # would print the next variant's checks (which build its pipeline) on the console.
        quiet_library_logs()
        echo(f"beamline: experiment {request.experiment!r}, run {i} of {total}: "
             f"{show(dict(request.overrides))}")
        try:
            outcome = run_one(request)
            done[i] = (request, outcome.run_id)
            lines[i] = f"  {outcome.run_id}  {show(dict(request.overrides))}"
        except BeamlineError as exc:
            if i == 1 and isinstance(exc, ConfigError):
                raise  # the checks of every variant: nothing ran
            failures[i] = exc
            lines[i] = f"  (failed)  {show(dict(request.overrides))}: {exc}"

    here(1, requests[0])
    queue = deque(enumerate(requests[1:], 2))
    if jobs > 1 and child is not None and len(queue) > 1:
        _run_with_children(queue, here, child, jobs, total, echo, done, lines, failures)
    for i, request in queue:
        here(i, request)
    pipeline, experiment = requests[0].pipeline, requests[0].experiment
    echo(f"beamline: experiment {experiment!r}: {total} runs\n"
         + "\n".join(lines[i] for i in sorted(lines))
         + f"\nbeamline: compare them: beamline experiments {pipeline} "
         f"--experiment {experiment}")
    if then is not None:
        then([done[i] for i in sorted(done)])
    if failures:
        raise failures[min(failures)]


def _run_with_children(
    queue: deque, here: Callable, child: ChildRun, jobs: int, total: int,
    echo: Callable[[str], None], done: dict, lines: dict, failures: dict,
) -> None:
    """Empties `queue`: this thread runs variants here while `jobs - 1` threads each run one at
    a time in a child process. A child's output is printed when this thread is between two of
    its own runs (while one runs, this process's stdout is that run's log file)."""
    taken = threading.Lock()
    finished: list[str] = []
    ids: set[str] = set()

    def next_variant():
        with taken:
            return queue.popleft() if queue else None

    def claim_id() -> str:
        with taken:  # the default run id form (a start time), distinct within the sweep
            run_id = datetime.datetime.now().isoformat()
            while run_id in ids:
                run_id = (datetime.datetime.fromisoformat(run_id)
                          + datetime.timedelta(microseconds=1)).isoformat()
            ids.add(run_id)
            return run_id

    def worker() -> None:
        while (item := next_variant()) is not None:
            i, request = item
            run_id = claim_id()
            said = show(dict(request.overrides))
            proc = subprocess.run(
                child.command(request, run_id), cwd=child.cwd, env=dict(child.env),
                stdin=subprocess.DEVNULL, capture_output=True, encoding="utf-8",
                errors="replace",
                pass_fds=(child.keep_fd,), check=False,
            )
            output = (f"beamline: experiment {request.experiment!r}, run {i} of {total} "
                      f"(in a child process): {said}\n{proc.stdout}{proc.stderr}")
            with taken:
                if proc.returncode == 0:
                    done[i] = (request, run_id)
                    lines[i] = f"  {run_id}  {said}"
                else:
                    failures[i] = _child_failure(proc, run_id)
                    lines[i] = f"  (failed)  {said}: {failures[i]}"
                finished.append(output.rstrip("\n"))

    def flush() -> None:
        with taken:
            ready, finished[:] = list(finished), []
        for output in ready:
            echo(output)

    threads = [threading.Thread(target=worker, name=f"variant-{n}", daemon=True)
               for n in range(jobs - 1)]
    for thread in threads:
        thread.start()
    while (item := next_variant()) is not None:
        flush()
        here(*item)
    for thread in threads:
        thread.join()
    flush()


def _child_failure(proc: subprocess.CompletedProcess, run_id: str) -> BeamlineError:
    """A child variant's failure as the error it printed, with the exit code it ended with."""
    said = [line.removeprefix("error: ") for line in proc.stderr.splitlines()
            if line.startswith("error: ")]
    message = said[-1] if said else f"run {run_id} exited with status {proc.returncode}"
    return BeamlineError(message, exit_code=proc.returncode if proc.returncode > 0 else 1)


def best_of(rows: Sequence, metric: str | None) -> tuple[Any | None, str]:
    """The experiments-table row `--push best` pushes: the blessed one best by `metric` (the
    pipeline's headline metric; the first run wins a tie), and one line saying why."""
    blessed = [r for r in rows if r.get("blessed")]
    scored = [r for r in blessed if metric and isinstance(r.get(metric), int | float)]
    if not scored:
        return None, (f"none of the {len(rows)} variants was blessed" if not blessed
                      else f"no blessed variant recorded {metric or 'a metric'}")
    higher = higher_is_better(metric)
    best = scored[0]
    for row in scored[1:]:
        if (row.get(metric) > best.get(metric)) if higher else (row.get(metric) < best.get(metric)):
            best = row
    return best, (f"{metric} {best.get(metric):.4g}, the {'highest' if higher else 'lowest'} "
                  f"of the {len(blessed)} blessed variant(s) of {len(rows)}")


def push_best(done: list[tuple[Any, str]], rows_of: Callable[[list[str]], list],
              metric_of: Callable[[list], str | None], run_one: Callable,
              echo: Callable[[str], None]) -> None:
    """Runs the best blessed variant of `done` again with its Pusher (the other nodes from the
    cache), or says why nothing is pushed. `rows_of(run ids)` gives their table rows."""
    if not done:
        echo("beamline: --push best: no variant succeeded; nothing pushed")
        return
    rows = rows_of([run_id for _, run_id in done])
    best, why = best_of(rows, metric_of(rows))
    if best is None:
        echo(f"beamline: --push best: {why}; nothing pushed")
        return
    request = next(r for r, run_id in done if run_id == best.get("run"))
    echo(f"beamline: --push best: run {best.get('run')} ({show(dict(request.overrides))}): "
         f"{why}; running it again with its Pusher (every other node from the cache)")
    quiet_library_logs()  # as between variants: the last one left the framework at INFO
    run_one(replace(request, push=True, check_also=()))
