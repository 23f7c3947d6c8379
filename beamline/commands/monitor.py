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
from beamline.errors import CanaryWorse, DataQualityVerdict, ThresholdCrossed
from beamline.monitor.canary import (
    DEFAULT_MAX_ERROR_RATE_INCREASE,
    DEFAULT_MAX_P99_RATIO,
    DEFAULT_MIN_REQUESTS,
    CompareThresholds,
)
from beamline.monitor.quality import DEFAULT_MAX_INVALID_FRACTION
from beamline.monitor.thresholds import DEFAULT_PREDICTION_L_INFINITY
from beamline.timefmt import TIME_HELP, TimeType


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
@click.option("--since", type=TimeType(), default=None, help=f"Window start: {TIME_HELP}.")
@click.option(
    "--until", type=TimeType(), default=None, help=f"Window end (exclusive): {TIME_HELP}."
)
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
@click.option(
    "--compare",
    nargs=2,
    default=None,
    metavar="A B",
    help="Instead of monitoring against the training data: put versions A and B (labels such "
    "as `stable canary`, or version numbers) side by side from the request logs (error rate, "
    "p50/p99 latency, predicted classes or numbers); exit 11 when B is past a threshold "
    "against A.",
)
@click.option(
    "--max-error-rate-increase",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_MAX_ERROR_RATE_INCREASE,
    show_default=True,
    help="--compare: how much higher B's error rate may be than A's (absolute share).",
)
@click.option(
    "--max-p99-ratio",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_MAX_P99_RATIO,
    show_default=True,
    help="--compare: how many times A's p99 latency B's may be.",
)
@click.option(
    "--max-prediction-distance",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_PREDICTION_L_INFINITY,
    show_default=True,
    help="--compare: largest allowed difference between A's and B's predictions: in any "
    "predicted class's share (L-infinity), or, for a regression model, in the share of "
    "predicted numbers at or below any value (Kolmogorov-Smirnov).",
)
@click.option(
    "--min-requests",
    type=click.IntRange(min=1),
    default=DEFAULT_MIN_REQUESTS,
    show_default=True,
    help="--compare: requests each version must have answered in the window.",
)
@beam_option(help_text="Beam runner profile of the window's statistics: a local one (auto, "
             "direct, direct-multi) computes them in-process, a cluster's runs TFDV's Beam job.")
@deprecated_alias("--beam-profile", "--beam", type=click.Choice(profile_names()))
def monitor(
    pipeline, requests_dir, root, metadata, since, until, as_json, json_path, thresholds,
    max_invalid_fraction, compare, max_error_rate_increase, max_p99_ratio,
    max_prediction_distance, min_requests, beam_profile, beam_deprecated,
) -> None:
    """Compare the traffic logged in --requests with the data that trained the served version:
    skew (L-infinity for categorical, Jensen-Shannon for numeric features), drift against the
    previous window, and prediction drift (the predicted classes, or a regression model's
    predicted numbers, against the eval split's labels), over the request rows that match the
    schema; schema violations are counted row by row as data quality. Exit code 8 when a
    distribution moved past its threshold, 9 when only data quality failed. With --compare A B,
    two served versions side by side instead (no statistics job); exit code 11 when B is worse.

    Example:

    \b
        beamline monitor penguin --requests logs/requests --since 2026-11-26T00:00:00Z
        beamline monitor penguin --requests logs/requests --compare stable canary
    """
    import json

    from beamline.lineage.access import graph_of
    from beamline.metadata.workspace import Workspace
    from beamline.monitor.monitor import MonitorRequest, run_monitor
    from beamline.monitor.table import report_text
    from beamline.monitor.thresholds import parse_overrides
    from beamline.monitor.window import read_window

    profile = new_or_deprecated(beam_profile, beam_deprecated, "auto")
    overrides = parse_overrides(thresholds)
    with Workspace(root, metadata) as workspace:
        if compare:
            limits = CompareThresholds(
                max_error_rate_increase, max_p99_ratio, max_prediction_distance, min_requests
            )
            _compare(pipeline, requests_dir, workspace, tuple(compare), since, until, as_json,
                     json_path, limits)
            return
        request = MonitorRequest(
            pipeline, requests_dir, workspace.layout.monitoring_dir, since, until, overrides,
            profile, max_invalid_fraction,
        )
        window = read_window(requests_dir, since, until)
        report = run_monitor(request, graph_of(workspace, pipeline), workspace.store, window)
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


def _compare(
    pipeline, requests_dir, workspace, names, since, until, as_json, json_path, limits
) -> None:
    import json

    from beamline.lineage.access import graph_of
    from beamline.monitor.canary import comparison_text
    from beamline.monitor.compare_versions import compare_versions

    comparison = compare_versions(
        pipeline, requests_dir, graph_of(workspace, pipeline), workspace.store, names, since,
        until, limits,
    )
    data = json.dumps(comparison.to_json(), indent=2)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(data)
    click.echo(data if as_json else comparison_text(comparison))
    if comparison.crossed:
        b, a = comparison.candidate, comparison.baseline
        raise CanaryWorse(
            f"{b.name} (version {b.version}) is past its thresholds against {a.name} (version "
            f"{a.version}): {', '.join(comparison.crossed)} (details on stdout). Keep it off "
            f"{a.name} (beamline rollback {pipeline} --label {b.name}, if it holds that label), "
            "or raise the --max-* threshold if the difference is expected."
        )
