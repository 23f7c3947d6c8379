"""`beamline run PIPELINE --set NAME=V1,V2 ...`: one run per combination, one after another.

Every variant is a recorded run of its own, stamped with the experiment and its overrides. They
run in one process (TensorFlow and TFX are imported once) and one after another: a pipeline
has one live run per run root (its lock). Nodes whose inputs a variant does not change
(ExampleGen, StatisticsGen, the validator, Transform for a hyperparameter) come from TFX's
cache: recorded once in MLMD, reused by every later variant.

What a sweep pushes is chosen: its variants run without a Pusher, so by default nothing is
pushed; `--push best` then runs the best blessed variant once more with its Pusher (every other
node from the cache), under the pipeline's push policy, and says which and why.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import replace
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


def run_all(
    requests: Sequence, run_one: Callable, echo: Callable[[str], None],
    then: Callable[[list[tuple[Any, str]]], None] | None = None,
) -> None:
    """Runs each request with `run_one(request) -> outcome` (which prints its summary and
    raises BeamlineError for a failed run). A failed variant does not stop the others; `then`
    gets the (request, run id) of each that succeeded, and the first failure is raised after."""
    if len(requests) == 1:
        run_one(requests[0])
        return
    first_failure: BeamlineError | None = None
    lines = []
    done: list[tuple[Any, str]] = []
    for i, request in enumerate(requests, 1):
        # A run logs the framework at INFO into its own log file; between runs that level
        # would print the next variant's checks (which build its pipeline) on the console.
        quiet_library_logs()
        echo(f"beamline: experiment {request.experiment!r}, run {i} of {len(requests)}: "
             f"{show(dict(request.overrides))}")
        try:
            outcome = run_one(request)
            done.append((request, outcome.run_id))
            lines.append(f"  {outcome.run_id}  {show(dict(request.overrides))}")
        except BeamlineError as exc:
            if i == 1 and isinstance(exc, ConfigError):
                raise  # the checks of every variant: nothing ran
            first_failure = first_failure or exc
            lines.append(f"  (failed)  {show(dict(request.overrides))}: {exc}")
    pipeline = requests[0].pipeline
    echo(f"beamline: experiment {requests[0].experiment!r}: {len(requests)} runs\n"
         + "\n".join(lines)
         + f"\nbeamline: compare them: beamline experiments {pipeline} "
         f"--experiment {requests[0].experiment}")
    if then is not None:
        then(done)
    if first_failure is not None:
        raise first_failure


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
    run_one(replace(request, push=True, check_also=()))
