"""`beamline run`: a complete local pipeline run."""

from __future__ import annotations

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
)


@click.command(cls=Command)
@click.argument("pipeline")
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
@metadata_option
@click.option("--no-fast-cache", is_flag=True,
              help="Always compile and ask TFX's cache node by node, even when nothing changed.")
@click.option("--max-parallel", type=click.IntRange(1, 16), default=DEFAULT_MAX_PARALLEL,
              show_default=True, help="Nodes that may run at once when the DAG allows.")
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
@click.option("--trigger-execution", type=int, default=None, hidden=True,
              help="The beamline.Trigger execution that decided this run (set by `beamline "
              "loop`).")
def run(
    pipeline, data, root, span, span_range, no_tune, retune, beam_profile, beam_deprecated,
    beam_extra, metadata, no_fast_cache, max_parallel, memory_limit, push_policy, run_id,
    trigger, trigger_execution,
) -> None:
    """Run PIPELINE locally on Beam, recording every artifact and execution in MLMD.

    PIPELINE is a pipeline of the project (`beamline pipelines` lists them), a file
    FILE.py[:FUNCTION] or a module:function. The function is either the project form,
    create_pipeline(settings), or a stock-TFX function returning a tfx.dsl.Pipeline: Beamline
    fills its pipeline root, metadata and Beam arguments and says what it overrode.

    Nodes whose inputs did not change come from the cache; a blessed model is pushed to
    `<root>/serving/PIPELINE/`. Exit codes: docs/reference/exit-codes.md.

    Example:

    \b
        beamline run penguin --no-tune
    """
    from beamline.runner.local import RunRequest, memory_budget, raise_for_outcome, run_pipeline
    from beamline.runner.spans import parse_span_range
    from beamline.runner.summary import format_summary
    from beamline.runner.supervisor import Watched, supervise
    from beamline.settings import RootLayout

    pipeline, module = resolve_target(pipeline)
    budget = memory_budget(memory_limit)
    # From here on this code runs in a child; the parent watches its memory (exits with it).
    report_fd = supervise(Watched(pipeline, RootLayout(root), metadata, budget))
    request = RunRequest(
        pipeline=pipeline,
        root=root,
        data=data,
        enable_tuning=not no_tune,
        retune=retune,
        beam_profile=new_or_deprecated(beam_profile, beam_deprecated, "auto"),
        beam_extra=tuple(beam_extra),
        metadata=metadata,
        max_parallel=max_parallel,
        fast_cache=not no_fast_cache,
        span=span,
        span_range=parse_span_range(span_range) if span_range is not None else None,
        memory_limit=memory_limit,
        report_fd=report_fd,
        push_policy=push_policy,
        run_id=run_id,
        trigger=trigger,
        trigger_execution_id=trigger_execution,
    )
    outcome = run_pipeline(request, module=module)
    click.echo(format_summary(outcome))
    raise_for_outcome(outcome)


def resolve_target(text: str):
    """(pipeline name, pipeline module or None) for a name, FILE.py[:FUNCTION] or module:function.

    A project-form file that is one of the project's own pipelines runs under its name."""
    from beamline import project, registry
    from beamline.runner import foreign

    if not foreign.is_target(text):
        registry.get(text)  # a clear error before the run's child process starts
        return text, None
    target = foreign.parse_target(text)
    current = project.current()
    entry = registry.discover(current).get(target.path.stem)
    if target.project_form and entry is not None and entry.path == target.path:
        if target.function == foreign.DEFAULT_FUNCTION:
            return entry.name, None
    module = foreign.pipeline_module(target)
    if target.project_form and current.schema_path(target.pipeline_name).is_file():
        module.SCHEMA_PATH = str(current.schema_path(target.pipeline_name))
    return target.pipeline_name, module
