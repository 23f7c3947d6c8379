"""A run's page: DAG with node states, Gantt timeline with its critical path, each node's `why`,
artifacts and their paths, the log tail, anomalies, statistics, metrics, lineage, monitoring.
While the run is live, /api/runs/<id> serves the changing parts and the page swaps them in."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from html import escape
from pathlib import Path

from beamline.lineage.format import why_text
from beamline.lineage.model import Execution, Graph, Run
from beamline.lineage.runs import RunSummary, previous_run, summarize
from beamline.lineage.why import explain_execution
from beamline.metadata import run_context as rc
from beamline.monitor.report import monitoring_section
from beamline.report import sections
from beamline.report.page import badge, table
from beamline.settings import RootLayout
from beamline.ui.layout import page, pipeline_url, run_url, url

LOG_TAIL_LINES = 60
LOG_TAIL_BYTES = 64 * 1024
POLL_MS = 2000


OUTSIDE_LOGS = "log not shown: recorded path is outside this root's log directory"


def log_path(layout: RootLayout, run: Run) -> Path:
    recorded = run.properties.get(rc.LOG_PATH)
    return Path(str(recorded)) if recorded else layout.log_path(run.pipeline, run.id)


class _NotShown(Exception):
    """The recorded log is not one this page may show; the message says why."""


def _read_tail(path: Path, logs_dir: Path) -> bytes:
    """At most LOG_TAIL_BYTES from the end of `path`, which must be a regular file directly in
    `logs_dir`. The store names the file, and a store may be shared or received: it must not
    make the page show other files, follow a symlink, or read a device or a pipe."""
    named = Path(os.path.abspath(path))
    if named.parent.resolve() != logs_dir.resolve():
        raise _NotShown(OUTSIDE_LOGS)
    # Opened by name under the directory's own descriptor: no component can be swapped for a
    # symlink between the check above and the open, and the last one is never followed.
    directory = os.open(logs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(named.name, flags, dir_fd=directory)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _NotShown("log not shown: the recorded path is a symlink") from None
            raise
    finally:
        os.close(directory)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotShown("log not shown: the recorded path is not a regular file")
        return os.pread(fd, LOG_TAIL_BYTES, max(0, info.st_size - LOG_TAIL_BYTES))
    finally:
        os.close(fd)


def log_tail(path: Path, logs_dir: Path) -> str:
    """The last lines of the run's log, if it is a regular file in `logs_dir`."""
    shown = f"<code>{escape(str(path))}</code>"
    try:
        text = _read_tail(path, logs_dir).decode("utf-8", "replace")
    except _NotShown as refused:
        return f'<p class="muted" id="log-refused">{escape(str(refused))}: {shown}</p>'
    except OSError:
        return f'<p class="muted">No log file at {shown}.</p>'
    lines = text.splitlines()[-LOG_TAIL_LINES:]
    return (
        f'<p class="muted">Last {len(lines)} lines of {shown}</p>'
        f'<pre id="log-text">{escape(chr(10).join(lines))}</pre>'
    )


def _artifacts(graph: Graph, ex: Execution) -> str:
    rows = []
    for direction, keyed in (("in", ex.inputs), ("out", ex.outputs)):
        for key, ids in keyed.items():
            for aid in ids:
                art = graph.artifacts.get(aid)
                if art is None:
                    continue
                rows.append(
                    [
                        direction,
                        escape(key),
                        f"{escape(art.type)} #{aid}",
                        escape(art.state),
                        f"<code>{escape(art.uri)}</code>",
                    ]
                )
    if not rows:
        return '<p class="muted">No artifacts recorded.</p>'
    return table(["", "Key", "Artifact", "State", "Path"], rows, class_="artifacts")


def _node_details(graph: Graph, execs: list[Execution]) -> str:
    out = []
    for ex in execs:
        try:
            why = why_text(explain_execution(graph, ex))
        except Exception as exc:  # noqa: BLE001 - an odd record: say so, keep the page
            why = f"(cannot explain: {type(exc).__name__}: {exc})"
        out.append(
            f'<details class="node-detail" id="detail-{ex.id}" data-node="{escape(ex.node_id)}">'
            f"<summary><b>{escape(ex.node_id)}</b> {badge(ex.state)} "
            f'<span class="muted">execution #{ex.id} · {escape(ex.component)}</span></summary>'
            f'<h3>Why</h3><pre class="why">{escape(why)}</pre>'
            f"<h3>Artifacts</h3>{_artifacts(graph, ex)}</details>"
        )
    return "".join(out) or '<p class="muted">No executions recorded for this run.</p>'


def _versioned(html: str) -> dict:
    return {"html": html, "version": hashlib.sha1(html.encode()).hexdigest()}


def live_parts(graph: Graph, run: Run, layout: RootLayout) -> tuple[RunSummary, dict[str, str]]:
    execs = graph.run_executions(run.id)
    summary = summarize(graph, run)
    dag, edges = sections.dag(graph, execs)
    reason = (
        f'<p class="anomaly" id="run-reason">{escape(summary.reason)}</p>' if summary.reason else ""
    )
    return summary, {
        "run-cards": f'<div class="cards" id="cards">{sections.summary_cards(summary)}</div>'
        + reason,
        "run-dag": f'<div class="scroll">{dag}</div>' + sections.nodes_table(graph, execs),
        "run-timeline": sections.timeline(execs, edges),
        "run-log": log_tail(log_path(layout, run), layout.logs_dir),
    }


def fragment(graph: Graph, run: Run, layout: RootLayout) -> dict:
    summary, parts = live_parts(graph, run, layout)
    return {
        "live": summary.state == rc.RunState.RUNNING,
        "run": summary.to_json(),
        "fragments": {k: _versioned(v) for k, v in parts.items()},
    }


def render(graph: Graph, run: Run, layout: RootLayout, monitoring: list) -> str:
    execs = graph.run_executions(run.id)
    summary, parts = live_parts(graph, run, layout)
    live = summary.state == rc.RunState.RUNNING
    poll = (
        f' data-poll="{escape("/api" + run_url(run.id))}" data-interval="{POLL_MS}"' if live else ""
    )
    before = previous_run(graph, run)
    compare = (
        f' · <a id="compare-previous" href="{escape(url("/compare", a=before.id, b=run.id))}">'
        "compare with the previous run</a>"
        if before
        else ""
    )

    def part(name: str) -> str:
        v = _versioned(parts[name])
        return f'<div id="{name}" data-version="{v["version"]}">{v["html"]}</div>'

    body = [
        f'<div id="run-page" data-run="{escape(run.id)}"{poll}>',
        f"<h1>{escape(run.pipeline)} · run <code>{escape(run.id)}</code></h1>",
        f'<p class="muted">Pipeline <a href="{escape(pipeline_url(run.pipeline))}">'
        f"{escape(run.pipeline)}</a>{compare}</p>",
        part("run-cards"),
        '<section id="dag"><h2>Pipeline</h2><p class="muted">Green: executed · blue: from '
        "cache · red: failed · yellow: running. Hover a node for details.</p>",
        part("run-dag"),
        "</section>",
        '<section id="timeline"><h2>Timeline</h2><p class="muted">Each bar spans an '
        "execution's MLMD create and last-update times; outlined bars are the critical path."
        "</p>",
        part("run-timeline"),
        "</section>",
        '<section id="nodes"><h2>Nodes: why they ran, what they read and wrote</h2>',
        _node_details(graph, execs),
        "</section>",
        '<section id="anomalies"><h2>Anomalies</h2>',
        sections.anomalies(graph, execs),
        "</section>",
        '<section id="log"><h2>Log</h2>',
        part("run-log"),
        "</section>",
        '<section id="statistics"><h2>Data statistics (TFDV)</h2><details><summary>Show '
        "the statistics</summary>",
        sections.statistics(graph, execs),
        "</details></section>",
        '<section id="metrics"><h2>Model evaluation (TFMA)</h2>',
        sections.metrics(graph, execs, summary.blessed),
        "</section>",
        '<section id="lineage"><h2>Lineage</h2>',
        f'<div class="scroll">{sections.lineage(graph, execs)}</div>',
        sections.sources(graph, execs),
        "</section>",
        monitoring_section(monitoring),
        "</div>",
    ]
    return page(f"{run.pipeline} · run {run.id}", "".join(body), graph.source)
