"""`beamline report`: one self-contained HTML file for a run."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, store_options


@click.command(cls=Command)
@click.argument("run_ref", metavar="[RUN]", required=False, default="latest")
@store_options
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the HTML [default: <root>/reports/<pipeline>-<run>.html].",
)
@click.option(
    "--experiments",
    "with_experiments",
    is_flag=True,
    help="Add the experiments table of RUN's pipeline: every run as `beamline experiments` "
    "lists it (settings, metrics, blessing, version, labels), RUN's row marked.",
)
@click.option("--where", metavar="EXPRESSION", default=None,
              help="With --experiments: only the runs for which EXPRESSION holds, as "
              "`beamline experiments --where` takes it.")
@click.option("--sort", metavar="[-]COLUMN", default=None,
              help="With --experiments: order the table by COLUMN (-COLUMN: descending).")
@json_option
def report(run_ref, root, metadata, pipeline, out, with_experiments, where, sort,
           as_json) -> None:
    """Write an HTML report of RUN [default: latest]: DAG with states and durations, TFDV
    statistics and anomalies, TFMA metrics against the baseline, lineage graph; with
    --experiments, the table of every run of its pipeline.

    Example:

    \b
        beamline report latest --pipeline penguin --out penguin.html
        beamline report latest --pipeline penguin --experiments --sort -auc
    """
    import json

    from beamline.lineage.access import graph_of
    from beamline.lineage.runs import resolve_run
    from beamline.metadata.workspace import Workspace
    from beamline.monitor.report import monitoring_section, run_monitoring
    from beamline.report.html import render_report, report_json

    if (where or sort) and not with_experiments:
        raise click.UsageError("--where and --sort order the experiments table: add --experiments.")
    workspace = Workspace(root, metadata)
    graph, store = graph_of(workspace, pipeline), workspace.store
    run = resolve_run(graph, run_ref, pipeline)
    if out is None:
        out = workspace.layout.report_path(run.pipeline, run.id)
    monitoring = run_monitoring(store, graph, run)
    extra = [monitoring_section(monitoring)]
    rows = None
    if with_experiments:
        from beamline.experiments import table as experiments_table
        from beamline.metadata import labels as label_history
        from beamline.ui.experiments_page import report_section

        held = label_history.holders(label_history.history(store, run.pipeline))
        rows = experiments_table.build(graph, run.pipeline, label_history.labels_by_version(held))
        extra.append(report_section(run.pipeline, rows, run.id, where, sort))
    html = render_report(graph, run, tuple(extra))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    if as_json:
        data = {"path": str(out), **report_json(graph, run)}
        data["monitoring"] = [m.execution_id for m in monitoring]
        if rows is not None:
            shown = experiments_table.order(experiments_table.select(rows, where), sort)
            data["experiments"] = [str(row.get("run")) for row in shown]
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"Report for run {run.id} ({run.pipeline}): {out}")
