"""A data version's page: its files (SHA-256, bytes; remote inputs said to be not kept), bytes,
rows, span, the runs that read it, the model versions trained on it with the labels they hold,
and the command that restores it. The row is `beamline data log`'s
(beamline.lineage.data_versions), so the page and the command never disagree."""

from __future__ import annotations

from html import escape

from beamline.errors import ConfigError
from beamline.lineage.format import when
from beamline.report.page import table
from beamline.ui.layout import model_url, page, pipeline_url, run_url
from beamline.versions.remote import describe


class UnknownDataVersion(ConfigError):
    """No run of the pipeline kept that data version."""


def unknown(pipeline: str, key: str, source: str) -> UnknownDataVersion:
    return UnknownDataVersion(
        f"No run of pipeline {pipeline!r} in {source} kept data version {key!r}. "
        f"`beamline data log {pipeline}` lists the versions its runs kept; a model version's "
        "page links the one it was trained on."
    )


def _file_rows(row: dict) -> list[list[str]]:
    out = []
    for f in row["files"]:
        if f.get("remote"):
            kept = f"no: remote input, its bytes are not kept; {describe(f.get('identity'))}"
            digest = "-"
        else:
            kept, digest = "yes", f"<code>{escape(f['sha256'])}</code>"
        size = f"{f['bytes']:,}" if f["bytes"] is not None else "-"
        out.append([f"<code>{escape(f['path'])}</code>", size, digest, escape(kept)])
    return out


def _run_rows(row: dict) -> list[list[str]]:
    return [
        [
            f'<a href="{escape(run_url(r["run_id"]))}"><code>{escape(r["run_id"])}</code></a>',
            escape(when(r["time_ms"])),
            f"<code>{escape(r['code_version'][:12])}</code>" if r["code_version"] else "-",
            ", ".join(str(v) for v in r["pushed"]) or "-",
        ]
        for r in row["read_by"]
    ]


def _model_rows(pipeline: str, row: dict) -> list[list[str]]:
    return [
        [
            f'<a href="{escape(model_url(pipeline, str(m["version"])))}">{m["version"]}</a>',
            escape(", ".join(m["labels"])) or '<span class="muted">none now</span>',
        ]
        for m in row["models"]
    ]


def render(pipeline: str, row: dict, source: str) -> str:
    key = row["data_version"]
    span = row["span"]
    if span is not None and row["extra_spans"]:
        spans = sorted({span, *row["extra_spans"]})
        span_text = f"{spans[0]}-{spans[-1]}"
    else:
        span_text = "-" if span is None else str(span)
    facts = [
        ("Files", str(len(row["files"]))),
        ("Bytes", f"{row['bytes']:,}" if row["bytes"] is not None else "-"),
        ("Rows", f"{row['rows']:,}" if row["rows"] is not None else "not counted"),
        ("Span", escape(span_text)),
        ("Runs", str(row["runs"])),
    ]
    cards = "".join(
        f'<div class="card" data-fact="{escape(k.lower())}"><span class="muted">{k}</span>'
        f"<b>{v}</b></div>"
        for k, v in facts
    )
    problem = (f'<p class="anomaly" id="version-problem">{escape(row["problem"])}</p>'
               if row["problem"] else "")
    models = (
        table(["Model version", "Labels it holds"], _model_rows(pipeline, row),
              id="models-table")
        if row["models"]
        else '<p class="muted" id="no-models">No run that read it pushed a model version.</p>'
    )
    rows_note = (
        "Rows as the run's StatisticsGen counted them (train and eval splits)."
        if row["rows"] is not None
        else "Rows not counted: no run that read it recorded statistics (StatisticsGen)."
    )
    body = (
        f"<h1>{escape(pipeline)} · data version <code>{escape(key[:12])}</code></h1>"
        f'<p class="muted">Pipeline <a href="{escape(pipeline_url(pipeline))}">'
        f"{escape(pipeline)}</a> · <code id=\"data-version-key\">{escape(key)}</code></p>"
        f'<div class="cards" id="cards">{cards}</div><p class="muted">{rows_note}</p>{problem}'
        '<section id="files"><h2>Files</h2>'
        + table(["Path", "Bytes", "SHA-256", "Kept"], _file_rows(row), numeric={1},
                id="files-table")
        + '</section><section id="read-by"><h2>Runs that read it</h2>'
        + table(["Run", "Started", "Code version", "Pushed"], _run_rows(row), id="runs-table")
        + '</section><section id="trained"><h2>Model versions trained on it</h2>'
        + models
        + '</section><section id="restore"><h2>Restore it</h2><p>The files byte for byte, '
        "each checked against its SHA-256, into an empty directory:</p>"
        f'<pre id="checkout-command"><code>{escape(row["checkout"])}</code></pre></section>'
    )
    return page(f"{pipeline} · data version {key[:12]}", body, source)
