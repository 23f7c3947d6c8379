"""`beamline run`: a complete local pipeline run."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.beam import AUTO, profile_names
from beamline.commands.options import root_option
from beamline.settings import DEFAULT_MAX_PARALLEL, MEMORY_LIMIT_ENV


@click.command()
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
@click.option("--beam", "--beam-mode", "beam_profile", type=click.Choice(profile_names()),
              default=AUTO, show_default=True,
              help="Beam profile; auto = in-process for small data, multi-processing for large.")
@click.option("--beam-arg", "beam_extra", multiple=True,
              help="Raw Beam pipeline arg, overriding the profile's (repeatable).")
@click.option("--flink-master", default=None, metavar="HOST:PORT", envvar="BEAMLINE_FLINK_MASTER",
              help="--beam flink: a team's Flink REST endpoint [default: the local cluster of "
              "`beamline flink up`; env BEAMLINE_FLINK_MASTER].")
@click.option("--flink-worker-pool", default=None, metavar="HOST:PORT",
              envvar="BEAMLINE_FLINK_WORKER_POOL",
              help="--beam flink: the Beam worker pool beside that cluster's TaskManagers "
              "[env BEAMLINE_FLINK_WORKER_POOL].")
@click.option("--metadata", default=None,
              help="MLMD store URI (default: SQLite under the run root).")
@click.option("--no-fast-cache", is_flag=True,
              help="Always compile and ask TFX's cache node by node, even when nothing changed.")
@click.option("--max-parallel", type=click.IntRange(1, 16), default=DEFAULT_MAX_PARALLEL,
              show_default=True, help="Nodes that may run at once when the DAG allows.")
@click.option("--memory-limit", default=None, metavar="SIZE", envvar=MEMORY_LIMIT_ENV,
              help="Stop the run, recorded as failed, once its processes (Beam workers "
              "included) hold more than SIZE (6GiB, 80%) [default: stop only when the "
              f"machine or cgroup is nearly out; env {MEMORY_LIMIT_ENV}].")
def run(
    pipeline, data, root, span, span_range, no_tune, beam_profile, beam_extra, flink_master,
    flink_worker_pool, metadata, no_fast_cache, max_parallel, memory_limit,
) -> None:
    """Run PIPELINE locally on Beam, recording every artifact and execution in MLMD."""
    from beamline.errors import ConfigError
    from beamline.runner.local import RunRequest, memory_budget, raise_for_outcome, run_pipeline
    from beamline.runner.spans import parse_span_range
    from beamline.runner.summary import format_summary
    from beamline.runner.supervisor import Watched, supervise
    from beamline.settings import RootLayout

    if (flink_master or flink_worker_pool) and beam_profile != "flink":
        raise ConfigError("--flink-master and --flink-worker-pool apply to --beam flink only; "
                          f"this run uses --beam {beam_profile}.")
    if beam_profile == "flink":
        from beamline.flink.profile import cli_args

        beam_extra = (*cli_args(flink_master, flink_worker_pool), *beam_extra)
    budget = memory_budget(memory_limit)
    # From here on this code runs in a child; the parent watches its memory (exits with it).
    report_fd = supervise(Watched(pipeline, RootLayout(root), metadata, budget))
    request = RunRequest(
        pipeline=pipeline,
        root=root,
        data=data,
        enable_tuning=not no_tune,
        beam_profile=beam_profile,
        beam_extra=tuple(beam_extra),
        metadata=metadata,
        max_parallel=max_parallel,
        fast_cache=not no_fast_cache,
        span=span,
        span_range=parse_span_range(span_range) if span_range is not None else None,
        memory_limit=memory_limit,
        report_fd=report_fd,
    )
    outcome = run_pipeline(request)
    click.echo(format_summary(outcome))
    raise_for_outcome(outcome)
