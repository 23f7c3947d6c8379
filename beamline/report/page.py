"""The page pieces the static report and `beamline ui` share: style sheet, badges, tables and
the document shell. One copy: the report inlines the style sheet, the UI serves it as a file."""

from __future__ import annotations

from html import escape

# The static report: everything inline, nothing fetched.
STATIC_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)

STYLE = """
:root { --ok:#1a7f37; --cache:#0969da; --bad:#cf222e; --warn:#9a6700; --fg:#1f2328;
        --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa; --kill:#6e40c9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: var(--muted); } code, pre { font: 12px ui-monospace, monospace; }
.canary-review { color: var(--muted); font-size: 12px; margin-top: 2px; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px;
      overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; } td.n { text-align: right;
     font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.card b { display: block; font-size: 17px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px;
         color: #fff; background: var(--muted); }
.b-COMPLETE, .b-complete, .b-yes { background: var(--ok); } .b-CACHED { background: var(--cache); }
.b-ok { background: var(--ok); } .b-crossed { background: var(--bad); }
.b-FAILED, .b-failed, .b-NO { background: var(--bad); } .b-RUNNING, .b-running,
.b-stopped { background: var(--warn); } .b-killed, .b-CANCELED { background: var(--kill); }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
          background: #fff; }
/* A DAG scales down to its container's width (style attribute: beamline.report.svg). */
svg.dag .node rect { fill: #fff; stroke: var(--muted); stroke-width: 1.5; }
svg.dag .node text.t { font: 600 12px system-ui, sans-serif; fill: var(--fg); }
svg.dag .node text.s { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg.dag .state-COMPLETE rect { stroke: var(--ok); fill: #dafbe1; }
svg.dag .state-CACHED rect { stroke: var(--cache); fill: #ddf4ff; }
svg.dag .state-FAILED rect, svg.dag .state-CANCELED rect { stroke: var(--bad); fill: #ffebe9; }
svg.dag .state-RUNNING rect, svg.dag .state-NEW rect { stroke: var(--warn); fill: #fff8c5; }
svg.dag .artifact rect { fill: var(--bg); stroke-dasharray: 4 2; }
svg.dag .baseline rect { fill: #fff; stroke: var(--warn); stroke-dasharray: 2 2; }
svg.dag .source rect { fill: #fbefff; stroke: #8250df; }
svg.dag .edge { fill: none; stroke: #8c959f; stroke-width: 1.3; }
svg.dag .arrowhead { fill: #8c959f; }
svg.hist rect { fill: #54aeff; }
svg text.axis, svg text.label, svg text.dur, svg text.value {
  font: 11px system-ui, sans-serif; fill: var(--muted); }
svg text.label { fill: var(--fg); }
svg line.axis, svg line.tick { stroke: var(--line); }
svg.gantt .bar rect { fill: #8c959f; } svg.gantt .state-COMPLETE rect { fill: #4ac26b; }
svg.gantt .state-CACHED rect { fill: #54aeff; } svg.gantt .state-FAILED rect,
svg.gantt .state-CANCELED rect { fill: #ff8182; } svg.gantt .state-RUNNING rect,
svg.gantt .state-NEW rect { fill: #d4a72c; }
svg.gantt .critical rect { stroke: var(--fg); stroke-width: 2; }
svg.chart path.line { fill: none; stroke: var(--cache); stroke-width: 1.6; }
svg.chart path.line.drift { stroke: var(--warn); }
svg.chart circle.pt { fill: #fff; stroke: var(--cache); stroke-width: 1.5; }
svg.chart circle.blessed { fill: var(--ok); stroke: var(--ok); }
svg.chart circle.pushed { fill: var(--cache); }
svg.chart circle.labelled { stroke: #8250df; stroke-width: 3; }
svg.chart circle.crossed { fill: var(--bad); stroke: var(--bad); }
svg.chart circle.trigger { fill: #8250df; stroke: #8250df; }
svg line.threshold { stroke: var(--bad); stroke-dasharray: 4 3; stroke-width: 1.3; }
svg.bars rect { fill: #54aeff; } svg.bars .over rect { fill: #ff8182; }
.anomaly { color: var(--bad); } .good { color: var(--ok); }
.delta-better { color: var(--ok); } .delta-worse { color: var(--bad); }
details > summary { cursor: pointer; }
nav.top { display: flex; gap: 16px; align-items: baseline; border-bottom: 1px solid var(--line);
          padding-bottom: 8px; margin-bottom: 16px; }
nav.top a { text-decoration: none; color: var(--cache); } nav.top b { margin-right: 12px; }
form.filters { display: flex; gap: 10px; align-items: center; margin: 8px 0; }
.legend span { margin-right: 12px; }
#runs-table code { white-space: nowrap; }
#experiments-table tr.this-run td { background: #fff8c5; }
"""


def badge(text: str) -> str:
    return f'<span class="badge b-{escape(text)}">{escape(text)}</span>'


def table(
    headers: list[str], rows: list[list[str]], numeric: set[int] | None = None, **attrs
) -> str:
    """`rows` cells are HTML already; attrs become the table's attributes (class_ -> class)."""
    numeric = numeric or set()
    attr = "".join(f' {k.rstrip("_")}="{escape(str(v))}"' for k, v in attrs.items())
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def document(
    title: str, body: str, head: str = "", csp: str = STATIC_CSP, style: bool = True
) -> str:
    """A whole HTML document. `style`: inline the style sheet (the UI links it instead, in
    `head`)."""
    css = f"<style>{STYLE}</style>" if style else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{css}{head}</head><body>" + body + "</body></html>\n"
    )
