"""`beamline monitor`: logged traffic against training data (skew), the previous window (drift)
and the schema; records a monitoring execution; exits 8 when a threshold is crossed."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.beam import profile_names
from beamline.commands.help import Command
from beamline.commands.options import (
    beam_option,
    deprecated_alias,
    json_option,
    metadata_option,
    new_or_deprecated,
    root_option,
    threshold_options,
)
from beamline.errors import DataQualityVerdict, ThresholdCrossed
from beamline.monitor.quality import DEFAULT_MAX_INVALID_FRACTION


class MonitorCommand(Command):
    """`monitor`, telling a user of the old `--json PATH` spelling what it is now."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "--json" and not value.startswith("-") and (
                value.endswith(".json") or "/" in value
            ):
                raise click.UsageError(
                    f"--json prints the result to stdout and takes no value; to write it to "
                    f"{value}, use --json-out {value}.",
                    ctx,
                )
        return super().parse_args(ctx, args)


@click.command(cls=MonitorCommand)
@click.argument("pipeline")
@click.option(
    "--requests",
    "requests_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Request log directory (`beamline serve --request_log_dir`, or a logging_config "
    "filename_prefix's directory).",
)
@root_option("Run root whose MLMD to read; monitoring output goes to <root>/monitoring/.")
@metadata_option
@click.option("--since", default=None, help="Window start, ISO 8601 (UTC if no offset).")
@click.option("--until", default=None, help="Window end (exclusive), ISO 8601.")
@json_option
@click.option(
    "--json-out",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help="Also write the full result as JSON to this file.",
)
@threshold_options(DEFAULT_MAX_INVALID_FRACTION)
@beam_option(help_text="Beam runner profile for the statistics job (as `beamline run`).")
@deprecated_alias("--beam-profile", "--beam", type=click.Choice(profile_names()))
def monitor(
    pipeline, requests_dir, root, metadata, since, until, as_json, json_path, thresholds,
    max_invalid_fraction, beam_profile, beam_deprecated,
) -> None:
    """Compare the traffic logged in --requests with the data that trained the served version:
    skew (L-infinity for categorical, Jensen-Shannon for numeric features), drift against the
    previous window and the predicted classes, over the request rows that match the schema;
    schema violations are counted row by row as data quality. Exit code 8 when a distribution
    moved past its threshold, 9 when only data quality failed.

    Example:

    \b
        beamline monitor penguin --requests logs/requests --since 2026-11-26T00:00:00Z
    """
    import json

    from beamline.beam import beam_args
    from beamline.lineage.access import open_graph_and_store
    from beamline.monitor.monitor import run_monitor
    from beamline.monitor.table import report_text
    from beamline.monitor.thresholds import parse_overrides
    from beamline.monitor.window import parse_time, read_window
    from beamline.settings import RootLayout

    profile = new_or_deprecated(beam_profile, beam_deprecated, "auto")
    overrides = parse_overrides(thresholds)
    since_t = parse_time(since, "--since") if since else None
    until_t = parse_time(until, "--until") if until else None
    window = read_window(requests_dir, since_t, until_t)
    graph, store = open_graph_and_store(root, metadata, pipeline)
    report = run_monitor(
        pipeline,
        requests_dir,
        RootLayout(root).monitoring_dir,
        graph,
        store,
        since_t,
        until_t,
        overrides,
        lambda size: beam_args(profile, size),
        window=window,
        max_invalid_fraction=max_invalid_fraction,
    )
    data = json.dumps(report.to_json(), indent=2, default=str)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(data)
    click.echo(data if as_json else report_text(report))
    if report.crossed:
        crossed = sorted({f for v in report.versions for f in v.crossed})
        raise ThresholdCrossed(
            f"Monitoring thresholds crossed for {', '.join(crossed)} (details on stdout"
            + (f" and in {json_path}" if json_path else "")
            + "): the served traffic no longer looks like the training data. Retrain on "
            f"the newest data (beamline run {pipeline}, or beamline loop {pipeline}), or raise "
            "a threshold with --threshold FEATURE=VALUE if the change is expected."
        )
    if report.data_quality:
        summaries = "; ".join(
            f"version {v.version}: {v.quality.summary()}" for v in report.versions
            if v.data_quality
        )
        raise DataQualityVerdict(
            f"Requests violate the schema ({summaries}; example rows above"
            + (f" and in {json_path}" if json_path else "")
            + "). This is data quality, not drift: retraining cannot fix bad requests. Fix the "
            "clients that send them, or change the schema if the new values are valid; "
            "--max-invalid-fraction sets how many bad rows a window may hold."
        )
