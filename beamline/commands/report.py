"""`beamline report`: one self-contained HTML file for a run."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.lineage.access import json_option, store_options


@click.command()
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
    statistics and anomalies, TFMA metrics against the baseline, lineage graph."""
    import json
    import re

    from beamline.lineage.access import open_graph
    from beamline.lineage.runs import resolve_run
    from beamline.report.html import render_report, report_json
    from beamline.settings import default_root

    graph = open_graph(root, metadata, pipeline)
    run = resolve_run(graph, run_ref, pipeline)
    if out is None:
        safe_id = re.sub(r"[^A-Za-z0-9_.-]+", "-", run.id)
        out = Path(root or default_root()) / "reports" / f"{run.pipeline}-{safe_id}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(graph, run), encoding="utf-8")
    if as_json:
        click.echo(json.dumps({"path": str(out), **report_json(graph, run)}, indent=2))
    else:
        click.echo(f"Report for run {run.id} ({run.pipeline}): {out}")
