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
@json_option
def report(run_ref, root, metadata, pipeline, out, as_json) -> None:
    """Write an HTML report of RUN [default: latest]: DAG with states and durations, TFDV
    statistics and anomalies, TFMA metrics against the baseline, lineage graph.

    Example:

    \b
        beamline report latest --pipeline penguin --out penguin.html
    """
    import json

    from beamline.lineage.access import graph_of
    from beamline.lineage.runs import resolve_run
    from beamline.metadata.workspace import Workspace
    from beamline.monitor.report import monitoring_section, run_monitoring
    from beamline.report.html import render_report, report_json

    workspace = Workspace(root, metadata)
    graph, store = graph_of(workspace, pipeline), workspace.store
    run = resolve_run(graph, run_ref, pipeline)
    if out is None:
        out = workspace.layout.report_path(run.pipeline, run.id)
    out.parent.mkdir(parents=True, exist_ok=True)
    monitoring = run_monitoring(store, graph, run)
    html = render_report(graph, run, (monitoring_section(monitoring),))
    out.write_text(html, encoding="utf-8")
    if as_json:
        data = {"path": str(out), **report_json(graph, run)}
        data["monitoring"] = [m.execution_id for m in monitoring]
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"Report for run {run.id} ({run.pipeline}): {out}")
