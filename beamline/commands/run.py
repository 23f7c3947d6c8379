"""`beamline run`: a complete local pipeline run."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from beamline.beam import profile_names
from beamline.commands.help import Command
from beamline.commands.options import (
    beam_option,
    deprecated_alias,
    metadata_option,
    new_or_deprecated,
    root_option,
)
from beamline.metadata.records import TriggerKind
from beamline.settings import DEFAULT_MAX_PARALLEL, MEMORY_LIMIT_ENV, PushPolicy

TRIGGER_KINDS = (
    TriggerKind.MANUAL, TriggerKind.SCHEDULE, TriggerKind.DRIFT, TriggerKind.NEW_DATA,
    TriggerKind.REPRODUCE,
)


@click.command(cls=Command)
@click.argument("pipeline", required=False)
@click.option("--spec", "spec_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              metavar="FILE.json", help="Run this compiled KFP v2 spec (`beamline compile --out`) "
              "task by task on this machine, as --as would, instead of a pipeline.")
@click.option("--as", "spec_target", type=click.Choice(("kubeflow", "vertex")), default=None,
              help="--spec: the orchestrator to act as (its rules, hooks and executors).")
@click.option("--data", type=click.Path(path_type=Path), help="CSV file or directory of CSVs "
              "(default: the pipeline's embedded data).")
@root_option()
@click.option("--span", type=click.IntRange(0), default=None,
              help="Read this TFX span of --data (span-N/ directories, or the pipeline's "
              "SPAN_PATTERN) [default: the latest span].")
@click.option("--span-range", default=None, metavar="FIRST:LAST",
              help="Read every span from FIRST to LAST (inclusive) in one ExampleGen.")
@click.option("--no-tune", is_flag=True, help="Skip the Tuner; train with default hyperparameters.")
@click.option("--tune", "retune", is_flag=True,
              help="Search hyperparameters again, even when the last search could be reused "
              "(by default a recurring run, --trigger other than manual, reuses it while the "
              "model module and schema are unchanged).")
@beam_option()
@deprecated_alias("--beam-mode", "--beam", type=click.Choice(profile_names()))
@click.option("--beam-arg", "beam_extra", multiple=True,
              help="Raw Beam pipeline arg, overriding the profile's (repeatable).")
@click.option("--flink-master", default=None, metavar="HOST:PORT", envvar="BEAMLINE_FLINK_MASTER",
              help="--beam flink: a team's Flink REST endpoint [default: the local cluster of "
              "`beamline flink up`; env BEAMLINE_FLINK_MASTER].")
@click.option("--flink-worker-pool", default=None, metavar="HOST:PORT",
              envvar="BEAMLINE_FLINK_WORKER_POOL",
              help="--beam flink: the Beam worker pool beside that cluster's TaskManagers "
              "[env BEAMLINE_FLINK_WORKER_POOL].")
@metadata_option
@click.option("--no-fast-cache", is_flag=True,
              help="Always compile and ask TFX's cache node by node, even when nothing changed.")
@click.option("--no-versions", is_flag=True,
              help="Keep no copy of the input files and code in the run root's object store "
              "(`beamline data checkout` cannot restore this run's data).")
@click.option("--max-parallel", type=click.IntRange(1, 16), default=DEFAULT_MAX_PARALLEL,
              show_default=True, help="Nodes (with --spec: tasks) that may run at once when "
              "the DAG allows.")
@click.option("--memory-limit", default=None, metavar="SIZE", envvar=MEMORY_LIMIT_ENV,
              help="Stop the run, recorded as failed, once its processes (Beam workers "
              "included) hold more than SIZE (6GiB, 80%) [default: stop only when the "
              f"machine or cgroup is nearly out; env {MEMORY_LIMIT_ENV}].")
@click.option("--push-policy", type=click.Choice(PushPolicy.ALL), default=None,
              help="live: a blessed push takes the stable label (served at once); canary: it "
              "takes the canary label and stable stays until promoted [default: the pipeline's "
              "PUSH_POLICY, else live].")
@click.option("--run-id", default=None, metavar="ID",
              help="Use this run id (must be new in the store) [default: the start time].")
@click.option("--trigger", type=click.Choice(TRIGGER_KINDS), default=None,
              help="What started this run, for the TRIGGER column of `beamline runs` "
              "[default: manual]; a cron job passes `schedule`.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Change a pipeline spec field (train_steps, bless_bounds.METRIC, ...) or a "
              "model hyperparameter (the model module's search space: learning_rate, units, "
              "...) for this run; repeatable. NAME=V1,V2 runs one variant per value, several "
              "of them the grid, one run after another (a sweep).")
@click.option("--experiment", default=None, metavar="NAME",
              help="Record the run(s) under this experiment (`beamline experiments PIPELINE "
              "--experiment NAME`) [default: a sweep gets sweep-<start time>, one run none].")
@click.option("--push", "sweep_push", type=click.Choice(("none", "best")), default=None,
              help="What a sweep pushes: none, or the best blessed variant by the pipeline's "
              "headline metric, under its push policy [default: none; a single run pushes "
              "its model when blessed].")
@click.option("--jobs", type=int, default=1, show_default=True, metavar="N",
              help="How many of a sweep's variants run at once, after its first (which runs "
              "alone, so that the upstream nodes they share execute once); each beyond one "
              "runs in a child process of its own.")
@click.option("--sweep-variant", is_flag=True, hidden=True,
              help="This run is one variant of a sweep started with --jobs: no Pusher, under "
              "the sweep's lock.")
@click.option("--trigger-execution", type=int, default=None, hidden=True,
              help="The beamline.Trigger execution that decided this run (set by `beamline "
              "loop`).")
def run(
    pipeline, spec_file, spec_target, data, root, span, span_range, no_tune, retune, beam_profile,
    beam_deprecated, beam_extra, flink_master, flink_worker_pool, metadata, no_fast_cache,
    no_versions, max_parallel, memory_limit, push_policy, run_id, trigger, sets, experiment,
    sweep_push, jobs, sweep_variant, trigger_execution,
) -> None:
    """Run PIPELINE locally on Beam, recording every artifact and execution in MLMD.

    PIPELINE is a pipeline of the project (`beamline pipelines` lists them), a file
    FILE.py[:FUNCTION] or a module:function. The function is either the project form,
    create_pipeline(settings), or a stock-TFX function returning a tfx.dsl.Pipeline: Beamline
    fills its pipeline root, metadata and Beam arguments and says what it overrode.

    Nodes whose inputs did not change come from the cache; a blessed model is pushed to
    `<root>/serving/PIPELINE/`. Exit codes: docs/reference/exit-codes.md.

    With --spec FILE.json --as kubeflow|vertex (no PIPELINE), runs a compiled spec instead:
    each task's container command in this environment, with the ExecutorInput the
    orchestrator's driver would build (docs/guides/kubeflow-vertex.md).

    --set NAME=VALUE changes a spec field or a model hyperparameter for this run; an explicit
    hyperparameter beats the Tuner's choice (the Tuner searches only the others, and is
    skipped when none is left). --set NAME=V1,V2 runs a sweep, recorded as one --experiment;
    its variants push nothing unless --push best; --jobs N runs them N at a time.

    Example:

    \b
        beamline run penguin --no-tune
        beamline run penguin --experiment lr --set learning_rate=0.003,0.03 --no-tune
        beamline run penguin --set learning_rate=0.003,0.03 --set layers=1,2 --jobs 2
        beamline run --spec penguin.json --as kubeflow
    """
    if spec_file is not None or spec_target is not None:
        _run_spec(pipeline, spec_file, spec_target, root, max_parallel)
        return
    if pipeline is None:
        raise click.UsageError("Name a PIPELINE to run, or pass --spec FILE.json --as TARGET.")
    from beamline.data.spans import parse_span_range
    from beamline.errors import ConfigError
    from beamline.experiments import overrides, sweep
    from beamline.runner.local import RunRequest, memory_budget, raise_for_outcome, run_pipeline
    from beamline.runner.summary import format_summary
    from beamline.runner.supervisor import Watched, supervise
    from beamline.settings import RootLayout

    pipeline, module = resolve_target(pipeline)
    beam_profile = new_or_deprecated(beam_profile, beam_deprecated, "auto")
    if (flink_master or flink_worker_pool) and beam_profile != "flink":
        raise ConfigError("--flink-master and --flink-worker-pool apply to --beam flink only; "
                          f"this run uses --beam {beam_profile}.")
    if beam_profile == "flink":
        from beamline.flink.profile import cli_args

        beam_extra = (*cli_args(flink_master, flink_worker_pool), *beam_extra)
    grid = overrides.variants(overrides.parse_sets(sets))
    sweep.check_jobs(jobs)
    budget = memory_budget(memory_limit)
    # From here on this code runs in a child; the parent watches its memory (exits with it).
    report_fd = supervise(Watched(pipeline, RootLayout(root), metadata, budget))
    request = RunRequest(
        pipeline=pipeline,
        root=root,
        data=data,
        enable_tuning=not no_tune,
        retune=retune,
        beam_profile=beam_profile,
        beam_extra=tuple(beam_extra),
        metadata=metadata,
        max_parallel=max_parallel,
        fast_cache=not no_fast_cache,
        keep_versions=not no_versions,
        span=span,
        span_range=parse_span_range(span_range) if span_range is not None else None,
        memory_limit=memory_limit,
        report_fd=report_fd,
        push_policy=push_policy,
        run_id=run_id,
        trigger=trigger,
        trigger_execution_id=trigger_execution,
        experiment=experiment,
    )

    def run_one(one: RunRequest):
        outcome = run_pipeline(one if not sweep_variant else replace(one, push=False),
                               module=module)
        click.echo(format_summary(outcome))
        raise_for_outcome(outcome)
        return outcome

    def push_best(done):
        sweep.push_best(done, lambda ids: _rows_of(root, metadata, pipeline, ids),
                        _headline_of, run_one, click.echo)

    requests = sweep.plan(request, grid, sweep_push)
    if len(requests) == 1:
        run_one(requests[0])
        return
    from beamline.runner.local import clean_before_sweep
    from beamline.runner.run_lock import sweep_lock

    with sweep_lock(RootLayout(root), pipeline, requests[0].experiment) as lock:
        clean_before_sweep(request)
        child = sweep.ChildRun(_variant_command(click.get_current_context()), Path.cwd(),
                               dict(os.environ), lock.fd)
        sweep.run_all(requests, run_one, click.echo,
                      then=push_best if sweep_push == sweep.PUSH_BEST else None,
                      jobs=jobs, child=child)


# What a sweep's child variant is not given from the sweep's command line: the sweep's own
# options, and those it passes resolved.
_SWEEP_ONLY = {"pipeline", "root", "sets", "experiment", "sweep_push", "run_id", "jobs",
               "sweep_variant", "beam_profile", "beam_deprecated"}


def _variant_command(context: click.Context):
    """request, run id -> the argv of a `beamline run` of that one variant: this command's
    options as given (the environment's are inherited), its overrides, the experiment, the
    run id the sweep chose and --sweep-variant."""
    import sys

    given = []
    for param in context.command.params:
        if param.name in _SWEEP_ONLY or context.get_parameter_source(
                param.name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        value, flag = context.params[param.name], param.opts[0]
        if getattr(param, "is_flag", False):
            given += [flag] if value else []
        elif getattr(param, "multiple", False):
            given += [x for v in value for x in (flag, str(v))]
        else:
            given += [flag, str(value)]
    params = context.params
    beam = new_or_deprecated(params["beam_profile"], params["beam_deprecated"], "auto")

    def command(request, run_id: str) -> list[str]:
        sets = [x for name, value in request.overrides
                for x in ("--set", f"{name}={_literal_text(value)}")]
        return [sys.executable, "-m", "beamline", "run", params["pipeline"],
                "--root", str(request.root), "--beam", beam, *given, *sets,
                "--experiment", request.experiment, "--run-id", run_id, "--sweep-variant"]

    return command


def _literal_text(value) -> str:
    """A --set value as overrides.literal reads it back (true/false for a bool)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _rows_of(root, metadata, pipeline: str, run_ids: list[str]) -> list:
    """The experiments-table rows of these runs (for --push best)."""
    from beamline.experiments import table
    from beamline.lineage.access import open_graph_and_store

    graph, _ = open_graph_and_store(root, metadata, pipeline)
    return [r for r in table.build(graph, pipeline) if r.get("run") in set(run_ids)]


def _headline_of(rows: list) -> str | None:
    from beamline.experiments import table

    names = table.metric_columns(rows)
    return names[0] if names else None


def _run_spec(pipeline, spec_file, spec_target, root, max_parallel) -> None:
    from beamline.deploy.spec_runner import run_spec
    from beamline.errors import ConfigError

    if pipeline is not None:
        raise ConfigError(f"--spec runs the pipeline its file holds; drop {pipeline!r}, or "
                          "drop --spec to run that pipeline.")
    if spec_file is None or spec_target is None:
        raise ConfigError("--spec FILE.json and --as kubeflow|vertex go together: the file "
                          "`beamline compile --out` wrote and the orchestrator to act as.")
    context = click.get_current_context()
    given = [
        param.opts[0] for param in context.command.params
        if param.name not in ("pipeline", "spec_file", "spec_target", "root", "max_parallel")
        and context.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise ConfigError(f"--spec runs the compiled spec as it is; {given[0]} applies to a "
                          "pipeline run only (compile the pipeline again to change the spec).")
    if not spec_file.is_file():
        raise ConfigError(f"--spec {spec_file}: no such file. Write one with `beamline "
                          "compile PIPELINE --target TARGET --out FILE.json`.")
    click.echo(run_spec(spec_file, spec_target, root, echo=click.echo,
                        max_parallel=max_parallel).summary())


def resolve_target(text: str):
    """(pipeline name, pipeline module or None) for a name, FILE.py[:FUNCTION] or module:function.

    A project-form file that is one of the project's own pipelines runs under its name."""
    from beamline import project, registry
    from beamline.runner import run_targets

    if not run_targets.is_target(text):
        registry.get(text)  # a clear error before the run's child process starts
        return text, None
    target = run_targets.parse_target(text)
    current = project.current()
    entry = registry.discover(current).get(target.path.stem)
    if target.project_form and entry is not None and entry.path == target.path:
        if target.function == run_targets.DEFAULT_FUNCTION:
            return entry.name, None
    module = run_targets.pipeline_module(target)
    if target.project_form and current.schema_path(target.pipeline_name).is_file():
        module.SCHEMA_PATH = str(current.schema_path(target.pipeline_name))
    return target.pipeline_name, module
