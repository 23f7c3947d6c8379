"""`beamline monitor`: logged traffic against training data (skew), the previous window (drift)
and the schema; records a monitoring execution; exits non-zero when a threshold is crossed."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.options import metadata_option, root_option
from beamline.errors import DataQualityVerdict, ThresholdCrossed
from beamline.monitor.quality import DEFAULT_MAX_INVALID_FRACTION


@click.command()
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
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the full result as JSON to this file.",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="FEATURE=VALUE",
    help="Override one feature's skew/drift threshold (repeatable; `prediction=V` for the "
    "predicted classes).",
)
@click.option(
    "--max-invalid-fraction",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_MAX_INVALID_FRACTION,
    show_default=True,
    help="Share of request rows that may violate the schema (out of range, unknown category, "
    "missing/extra feature, wrong type) before the verdict is `data quality` (exit 9).",
)
@click.option(
    "--beam-profile",
    default="auto",
    show_default=True,
    help="Beam runner profile for the statistics job (as `beamline run`).",
)
def monitor(
    pipeline, requests_dir, root, metadata, since, until, json_path, thresholds,
    max_invalid_fraction, beam_profile,
) -> None:
    """Compare the traffic logged in --requests with the data that trained the served version:
    skew (L-infinity for categorical, Jensen-Shannon for numeric features), drift against the
    previous window and the predicted classes, over the request rows that match the schema;
    schema violations are counted row by row as data quality. Exit code 8 when a distribution
    moved past its threshold, 9 when only data quality failed."""
    import json

    from beamline.beam import beam_args
    from beamline.lineage.access import open_graph_and_store
    from beamline.monitor.monitor import run_monitor
    from beamline.monitor.table import report_text
    from beamline.monitor.thresholds import parse_overrides
    from beamline.monitor.window import parse_time, read_window
    from beamline.settings import RootLayout

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
        lambda size: beam_args(beam_profile, size),
        window=window,
        max_invalid_fraction=max_invalid_fraction,
    )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), indent=2, default=str))
    click.echo(report_text(report))
    if report.crossed:
        crossed = sorted({f for v in report.versions for f in v.crossed})
        raise ThresholdCrossed(
            f"Monitoring thresholds crossed for {', '.join(crossed)} (details above"
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
