"""The experiments page of a pipeline: the table `beamline experiments` prints (its rows, from
beamline.experiments.table, never recomputed here), sortable by a click on a column's header and
filterable with the same `--where` language; a parallel-coordinates plot of the settings against
the headline metric; the training curves of the runs the user checks, overlaid, and those of
their Tuner trials (or of the trials checked one by one).

Everything is drawn on the server (inline SVG) and every control is a link or a GET form: the
page works with the UI's script off and fetches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

from beamline.experiments import table as experiments_table
from beamline.experiments.table import HP_PREFIX, OVERRIDE_PREFIX, RUN, TRIAL, Row
from beamline.experiments.text import cell
from beamline.experiments.where import as_number
from beamline.metrics import higher_is_better
from beamline.ui.layout import experiments_url, model_url, page, pipeline_url, run_url

# Curves drawn when no run is checked: the first runs (in the table's order) with a history.
DEFAULT_CURVES = 3
# Runs shown (with their trials) unless the query asks for more, as on the runs page.
DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000
MAX_CURVES = 20
# Trials drawn at most (a checked run's trials count one by one), to keep the charts legible.
MAX_TRIAL_CURVES = 40
TRIAL_SEPARATOR = "/"  # a trial's curve in the query: RUN/TRIAL (run ids hold no slash)
MAX_WHERE = 2000  # characters, as where.MAX_LENGTH
PALETTE = (
    "#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#4d2d00",
    "#57606a", "#9a6700",
)
LOSS = "loss"


@dataclass
class View:
    """What the page's query asked for, checked by the app (sort and filter by the table)."""

    where: str | None = None
    sort: str | None = None
    experiment: str | None = None
    columns: str | None = None
    curves: list[str] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    trials: list[str] = field(default_factory=list)  # trial_key()s of checked trials


def trial_key(row: Row) -> str:
    """How the page names a trial row (its checkbox's value, its colour's key): RUN/TRIAL."""
    return f"{row.get('run')}{TRIAL_SEPARATOR}{row.get('trial')}"


def curve_key(row: Row) -> str:
    return trial_key(row) if row.kind == TRIAL else str(row.get("run"))


def _query(pipeline: str, view: View, **changes: Any) -> str:
    values = {
        "where": view.where, "experiment": view.experiment, "sort": view.sort,
        "columns": view.columns, "curve": view.curves, "trial": view.trials,
        "limit": str(view.limit) if view.limit != DEFAULT_LIMIT else None,
    }
    values.update(changes)
    pairs = []
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if item:
                pairs.append((key, item))
    return experiments_url(pipeline) + ("?" + urlencode(pairs) if pairs else "")


def headline_metric(rows: list[Row]) -> str | None:
    """The pipeline's headline metric: the first of the table's metric columns (the task's
    blessing metric when recorded)."""
    metrics = experiments_table.metric_columns(rows)
    return metrics[0] if metrics else None


# ---------------------------------------------------------------- the table


def _header(pipeline: str, view: View, column: str) -> str:
    current = (view.sort or "").lstrip("+")
    if current == column:
        target, arrow, state = "-" + column, " ▲", "ascending"
    elif current == "-" + column:
        target, arrow, state = column, " ▼", "descending"
    else:
        target, arrow, state = column, "", "none"
    return (
        f'<th aria-sort="{state}" style="white-space:nowrap">'
        f'<a class="sort" data-column="{escape(column)}" '
        f'href="{escape(_query(pipeline, view, sort=target))}" title="sort by {escape(column)}">'
        f"{escape(column)}{arrow}</a></th>"
    )


def _cell(pipeline: str, row: Row, column: str, attr: str, links: bool = True) -> str:
    """A cell; `attr`: the column's name, escaped for an attribute; `links`: runs and versions
    link to their UI pages (not in a static report)."""
    value = row.get(column)
    child = row.kind != RUN
    if column == "run":
        if row.kind == TRIAL:
            best = " (best)" if row.get("best") else ""
            return f'<td class="trial-name">trial {escape(str(row.get("trial")))}{best}</td>'
        run_id = str(value)
        if not links:
            return f'<td style="white-space:nowrap"><code>{escape(run_id)}</code></td>'
        return (
            f'<td style="white-space:nowrap"><a class="run-link" href="{escape(run_url(run_id))}">'
            f"<code>{escape(run_id)}</code></a></td>"
        )
    if column == "version" and value and row.kind == RUN and links:
        return (
            f'<td><a class="version-link" href="{escape(model_url(pipeline, str(value)))}">'
            f"{escape(str(value))}</a></td>"
        )
    numeric = as_number(value) is not None and not isinstance(value, bool | str)
    css = ' class="n"' if numeric else ""
    return f'<td{css} data-column="{attr}">{escape(cell(column, value, child))}</td>'


def _rows_html(pipeline: str, rows: list[Row], columns: list[str], checked: set[str] | None,
               empty: str = "No runs match.", marked: str | None = None,
               checked_trials: frozenset[str] | set[str] = frozenset()) -> str:
    """The table's rows, a run's trials under it. `checked`: the runs whose curves are drawn
    (None: no checkbox column, links nowhere: the static report); `marked`: a run whose row is
    marked (class `this-run`); `checked_trials`: the trials (trial_key) whose curves are drawn."""
    interactive = checked is not None
    out = []
    attrs = [(c, escape(c)) for c in columns]
    for row in rows:
        run_id = str(row.get("run"))
        box = ""
        if interactive:
            box = (
                '<td><input type="checkbox" class="curve-pick" form="experiments-form" '
                f'name="curve" value="{escape(run_id)}"'
                + (" checked" if run_id in checked else "")
                + (" disabled" if row.history is None else "")
                + f' aria-label="training curves of {escape(run_id)}"></td>'
            )
        css = "run this-run" if run_id == marked else "run"
        out.append(
            f'<tr class="{css}" data-run="{escape(run_id)}">{box}'
            + "".join(_cell(pipeline, row, c, a, interactive) for c, a in attrs)
            + "</tr>"
        )
        for child in row.children:
            if child.kind != TRIAL:
                continue
            key = trial_key(child)
            out.append(
                f'<tr class="trial" data-run="{escape(run_id)}" '
                f'data-trial="{escape(str(child.get("trial")))}">'
                + ((
                    '<td><input type="checkbox" class="curve-pick trial-pick" '
                    f'form="experiments-form" name="trial" value="{escape(key)}"'
                    + (" checked" if key in checked_trials else "")
                    + (" disabled" if child.history is None else "")
                    + f' aria-label="training curves of {escape(run_id)} trial '
                    f'{escape(str(child.get("trial")))}"></td>'
                ) if interactive else "")
                + "".join(_cell(pipeline, child, c, a, interactive) for c, a in attrs)
                + "</tr>"
            )
    if not out:
        out.append(
            f'<tr><td colspan="{len(columns) + int(interactive)}" class="muted" '
            f'id="no-experiment-rows">{escape(empty)}</td></tr>'
        )
    return "".join(out)


def report_section(pipeline: str, every: list[Row], run_id: str | None = None,
                   where: str | None = None, sort: str | None = None,
                   columns: str | None = None) -> str:
    """The experiments table of `pipeline` for the static report (`beamline report
    --experiments`): the rows and cells this page shows, without links, sort controls or
    curve checkboxes; `run_id`'s row marked. `where`, `sort` and `columns` as `beamline
    experiments` takes them (their errors are its errors)."""
    rows = experiments_table.order(experiments_table.select(every, where), sort)
    chosen = experiments_table.choose_columns(every, columns)
    trials = sum(1 for r in rows for c in r.children if c.kind == TRIAL)
    count = f"{len(rows)} of {len(every)} runs" + (f", {trials} trials" if trials else "")
    if where:
        count += f" for which {where} holds"
    if sort:
        count += f", sorted by {sort}"
    head = "".join(f'<th style="white-space:nowrap">{escape(c)}</th>' for c in chosen)
    return (
        '<section id="experiments"><h2>Experiments</h2>'
        f'<p class="muted">Every run of <b>{escape(pipeline)}</b> as <code>beamline experiments'
        f'</code> lists it: <span id="experiments-count">{escape(count)}</span>'
        + ("; this run's row is marked" if run_id and any(
            str(r.get("run")) == run_id for r in rows) else "")
        + '.</p><div class="scroll"><table id="experiments-table">'
        f'<thead><tr>{head}</tr></thead><tbody id="experiments-body">'
        f"{_rows_html(pipeline, rows, chosen, None, 'No runs match.', run_id)}</tbody></table>"
        "</div></section>"
    )


# ---------------------------------------------------------------- parallel coordinates


@dataclass
class Axis:
    column: str
    label: str
    numbers: tuple[float, float] | None = None  # (low, high) for a numeric axis
    categories: list[str] = field(default_factory=list)  # otherwise, in order of first sight

    def position(self, value: Any) -> float | None:
        """0 (bottom) to 1 (top); None for a missing value."""
        if value is None:
            return None
        if self.numbers is not None:
            number = as_number(value)
            if number is None:
                return None
            low, high = self.numbers
            return 0.5 if high == low else (number - low) / (high - low)
        text = cell(self.column, value)
        if text not in self.categories:
            return None
        n = len(self.categories)
        return 0.5 if n == 1 else self.categories.index(text) / (n - 1)

    def ticks(self) -> list[tuple[float, str]]:
        if self.numbers is not None:
            low, high = self.numbers
            if high == low:
                return [(0.5, f"{low:.4g}")]
            return [(0.0, f"{low:.4g}"), (1.0, f"{high:.4g}")]
        n = len(self.categories)
        return [(0.5 if n == 1 else i / (n - 1), c) for i, c in enumerate(self.categories)]


def _axis(column: str, label: str, values: Sequence[Any]) -> Axis | None:
    present = [v for v in values if v is not None and v != "" and v != [] and v != {}]
    if not present:
        return None
    numbers = [as_number(v) for v in present]
    if all(n is not None for n in numbers) and not any(isinstance(v, bool) for v in present):
        return Axis(column, label, numbers=(min(numbers), max(numbers)))
    return Axis(column, label, categories=list(dict.fromkeys(cell(column, v) for v in present)))


def plot_lines(rows: list[Row]) -> list[Row]:
    """The plot's lines: every run and every trial."""
    return [r for row in rows for r in (row, *(c for c in row.children if c.kind == TRIAL))]


def plot_axes(rows: list[Row], metric: str | None) -> list[Axis]:
    """An axis per hyperparameter (hp.NAME) and per override that is no hyperparameter
    (set.NAME), then the headline metric, then the trials' score when there are trials."""
    lines = plot_lines(rows)
    names: dict[str, str] = {}
    for line in lines:
        for name in line.get("hyperparameters") or {}:
            names.setdefault(HP_PREFIX + name, name)
    for line in lines:
        for name in line.get("overrides") or {}:
            if HP_PREFIX + name not in names:
                names.setdefault(OVERRIDE_PREFIX + name, OVERRIDE_PREFIX + name)
    wanted = list(names.items())
    if metric:
        wanted.append((metric, metric))
    if any(line.kind == TRIAL for line in lines):
        wanted.append(("score", "trial score"))
    axes = [_axis(column, label, [line.get(column) for line in lines]) for column, label in wanted]
    return [a for a in axes if a is not None]


def colours_of(rows: list[Row]) -> dict[str, str]:
    """A colour per run, the same in the plot and the curves (and on every filtered view)."""
    return {str(r.get("run")): PALETTE[i % len(PALETTE)] for i, r in enumerate(rows)}


def parallel_svg(rows: list[Row], metric: str | None, colours: dict[str, str],
                 width: int = 900, height: int = 300) -> str:
    axes = plot_axes(rows, metric)
    lines = plot_lines(rows)
    if not lines:
        return '<p class="muted" id="no-parallel-plot">No runs to plot.</p>'
    if len(axes) < 2:
        return (
            '<p class="muted" id="no-parallel-plot">Nothing to plot: the runs record fewer than '
            "two of hyperparameters, overrides and a metric.</p>"
        )
    left, right, top, bottom = 70, 70, 28, 40
    step = (width - left - right) / (len(axes) - 1)
    plot_h = height - top - bottom

    def y(position: float) -> float:
        return top + plot_h * (1 - position)

    out = [
        f'<svg id="parallel-plot" class="pcoords" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="11">'
    ]
    for i, axis in enumerate(axes):
        x = left + i * step
        out.append(
            f'<g class="axis" data-column="{escape(axis.column)}">'
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#57606a"/>'
            f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" font-weight="600">'
            f"{escape(axis.label)}</text>"
        )
        for position, text in axis.ticks():
            short = text if len(text) <= 14 else text[:13] + "…"
            out.append(
                f'<text x="{x - 4:.1f}" y="{y(position) + 4:.1f}" text-anchor="end" '
                f'fill="#57606a">{escape(short)}</text>'
            )
        out.append("</g>")
    for line in lines:
        points = [
            (left + i * step, y(p))
            for i, axis in enumerate(axes)
            if (p := axis.position(line.get(axis.column))) is not None
        ]
        if not points:
            continue
        run_id = str(line.get("run"))
        colour = colours.get(run_id, PALETTE[0])
        d = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in
                     enumerate(points))
        if line.kind == TRIAL:
            name = f"{run_id} trial {line.get('trial')}"
            kind = f' class="trial-line" data-trial="{escape(str(line.get("trial")))}"'
            dash = ' stroke-dasharray="4 3" stroke-opacity="0.7"'
        else:
            name, kind, dash = run_id, ' class="run-line"', ""
        values = ", ".join(
            f"{a.label}={cell(a.column, line.get(a.column))}" for a in axes
        )
        out.append(
            f'<path{kind} data-run="{escape(run_id)}" d="{d}" fill="none" stroke="{colour}" '
            f'stroke-width="1.8"{dash}><title>{escape(name)}: {escape(values)}</title></path>'
        )
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------- training curves


def curve_metric(rows: list[Row], metric: str | None) -> str | None:
    """The history's name for the headline metric (`auc`, or the first metric of the curves
    whose name holds it), else the first recorded metric that is no loss."""
    names: dict[str, None] = {}
    for row in rows:
        if row.history is not None:
            names.update(dict.fromkeys(row.history.metrics))
    bare = [n for n in names if not n.startswith("val_")]
    if metric:
        for name in bare:
            if name == metric or metric in name or name in metric:
                return name
    others = [n for n in bare if "loss" not in n]
    return others[0] if others else None


def chosen_curves(every: list[Row], rows: list[Row], view: View) -> list[Row]:
    """The runs whose curves to draw: the checked ones (of `every` run, shown or not), else the
    first shown ones with a history."""
    by_id = {str(r.get("run")): r for r in every}
    if view.curves:
        return [by_id[run_id] for run_id in view.curves if run_id in by_id]
    return [r for r in rows if r.history is not None][:DEFAULT_CURVES]


def _curve_name(row: Row) -> str:
    if row.kind != TRIAL:
        return str(row.get("run"))
    return f"{row.get('run')} trial {row.get('trial')}" + (" (best)" if row.get("best") else "")


def curves_svg(runs: list[Row], name: str, element_id: str, colours: dict[str, str],
               width: int = 440, height: int = 240) -> str:
    """`name` (solid) and `val_name` (dashed) per epoch, a colour per run or trial row
    (`colours` by curve_key)."""
    series = []
    for row in runs:
        if row.history is None:
            continue
        colour = colours.get(curve_key(row), PALETTE[0])
        for metric, dash in ((name, ""), ("val_" + name, "5 3")):
            values = row.history.metrics.get(metric) or []
            points = [(e + 1, v) for e, v in enumerate(values) if v is not None]
            if points:
                series.append((row, metric, colour, dash, points))
    if not series:
        drawn = "trial" if any(r.kind == TRIAL for r in runs) else "run"
        return (
            f'<p class="muted" id="{escape(element_id)}-none">No {drawn} drawn recorded '
            f"{escape(name)} per epoch.</p>"
        )
    left, right, top, bottom = 56, 12, 22, 34
    xs = [x for s in series for x, _ in s[4]]
    ys = [v for s in series for _, v in s[4]]
    x0, x1 = 1, max(max(xs), 2)
    y0, y1 = min(ys), max(ys)
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + pw * (x - x0) / (x1 - x0)

    def sy(v: float) -> float:
        return top + ph * (1 - (v - y0) / (y1 - y0))

    better = "lower" if not higher_is_better(name) else "higher"
    out = [
        f'<svg id="{escape(element_id)}" class="curves" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" '
        'font-size="11">',
        f'<text x="{left}" y="14" font-weight="600">{escape(name)} per epoch ({better} is '
        "better; dashed: validation)</text>",
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#57606a"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#57606a"/>',
    ]
    for value in (y0 + pad, (y0 + y1) / 2, y1 - pad):
        out.append(
            f'<text x="{left - 4}" y="{sy(value) + 4:.1f}" text-anchor="end" fill="#57606a">'
            f"{value:.3g}</text>"
        )
    for epoch, anchor in ((x0, "start"), (x1, "end")):
        out.append(
            f'<text x="{sx(epoch):.1f}" y="{height - 18}" text-anchor="{anchor}" '
            f'fill="#57606a">epoch {epoch:g}</text>'
        )
    for row, metric, colour, dash, points in series:
        d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(v):.1f}"
                     for i, (x, v) in enumerate(points))
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        trial = (f' data-trial="{escape(str(row.get("trial")))}"' if row.kind == TRIAL else "")
        out.append(
            f'<path class="curve" data-run="{escape(str(row.get("run")))}"{trial} '
            f'data-metric="{escape(metric)}" data-epochs="{len(points)}" d="{d}" fill="none" '
            f'stroke="{colour}" stroke-width="1.8"{dashed}><title>{escape(_curve_name(row))} '
            f"{escape(metric)}</title></path>"
        )
    out.append("</svg>")
    return "".join(out)


def _legend(runs: list[Row], colours: dict[str, str], element_id: str = "curves-legend") -> str:
    items = []
    for row in runs:
        run_id = str(row.get("run"))
        missing = "" if row.history is not None else (
            ' <span class="muted">(no history recorded)</span>'
        )
        trial = ""
        if row.kind == TRIAL:
            trial = f' trial {escape(str(row.get("trial")))}' + (
                " (best)" if row.get("best") else "")
        items.append(
            f'<li data-run="{escape(run_id)}"><span style="color:'
            f'{colours.get(curve_key(row), PALETTE[0])}">━━</span> '
            f'<a href="{escape(run_url(run_id))}"><code>{escape(run_id)}</code></a>{trial}'
            f"{missing}</li>"
        )
    return f'<ul id="{element_id}">{"".join(items)}</ul>'


def chosen_trials(every: list[Row], rows: list[Row], view: View) -> list[Row]:
    """The trials whose curves to draw: those of the checked runs and the checked trials; with
    nothing checked, the trials of the first shown run whose Tuner recorded trial curves. At
    most MAX_TRIAL_CURVES."""
    if view.curves or view.trials:
        by_run = {str(r.get("run")): r for r in every}
        wanted = set(view.trials)
        found = [
            c for run_id in dict.fromkeys([*view.curves, *(
                t.rsplit(TRIAL_SEPARATOR, 1)[0] for t in view.trials)])
            if run_id in by_run
            for c in by_run[run_id].children
            if c.kind == TRIAL and c.history is not None
            and (run_id in view.curves or trial_key(c) in wanted)
        ]
        return found[:MAX_TRIAL_CURVES]
    for row in rows:
        found = [c for c in row.children if c.kind == TRIAL and c.history is not None]
        if found:
            return found[:MAX_TRIAL_CURVES]
    return []


def _trial_curves(every: list[Row], rows: list[Row], view: View, metric: str | None) -> str:
    if not any(c.kind == TRIAL for r in every for c in r.children):
        return ""
    trials = chosen_trials(every, rows, view)
    head = '<h3 id="trial-curves-title">Tuner trials</h3>'
    if not trials:
        return head + (
            '<p class="muted" id="no-trial-curves">No trial drawn: check a run whose Tuner '
            "recorded its trials' epochs, or trials in the table (a search recorded before "
            "Beamline's Tuner kept every epoch has scores only).</p>"
        )
    colours = {trial_key(t): PALETTE[i % len(PALETTE)] for i, t in enumerate(trials)}
    which = (
        "the trials of the checked runs and the checked trials" if view.curves or view.trials
        else f"the trials of {trials[0].get('run')}; check runs or trials in the table to choose"
    )
    charts = curves_svg(trials, LOSS, "trial-curve-loss", colours)
    name = curve_metric(trials, metric)
    if name:
        charts += curves_svg(trials, name, "trial-curve-metric", colours)
    return (
        f'{head}<p class="muted">Showing {escape(which)}: each trial\'s epochs as its Tuner '
        "recorded them (its score is its best epoch's).</p>"
        f'{_legend(trials, colours, "trial-curves-legend")}<div>{charts}</div>'
    )


def _curves(every: list[Row], rows: list[Row], view: View, metric: str | None) -> str:
    runs = chosen_curves(every, rows, view)
    colours = colours_of(every)
    trials = _trial_curves(every, rows, view, metric)
    if not runs:
        return (
            '<p class="muted" id="no-curves">No run here recorded a training history (the '
            "Trainer writes history.json as each epoch ends).</p>" + trials
        )
    which = (
        "the checked runs" if view.curves
        else f"the first {len(runs)} runs with a history; check runs in the table and press "
        "“Draw curves of checked rows” to choose"
    )
    charts = curves_svg(runs, LOSS, "curve-loss", colours)
    name = curve_metric(runs, metric)
    if name:
        charts += curves_svg(runs, name, "curve-metric", colours)
    legend = _legend(runs, colours)
    return f'<p class="muted">Showing {escape(which)}.</p>{legend}<div>{charts}</div>{trials}'


# ---------------------------------------------------------------- the page


def render(pipeline: str, source: str, every: list[Row], view: View,
           error: str | None = None) -> str:
    """The page over `every` row of the pipeline (table.build); `error`: why the filter was
    refused (shown beside the filter; no rows then)."""
    if error is None:
        rows = experiments_table.select(every, view.where, view.experiment)
        if rows:
            rows = experiments_table.order(rows, view.sort)
        else:
            experiments_table.order(every, view.sort)  # a bad column is an error all the same
        columns = experiments_table.choose_columns(every, view.columns)
    else:
        rows, columns = [], experiments_table.default_columns(every)
    metric = headline_metric(every)
    experiments = sorted({str(r.get("experiment")) for r in every if r.get("experiment")})
    options = "".join(
        f'<option value="{escape(e)}"{" selected" if e == view.experiment else ""}>'
        f"{escape(e)}</option>"
        for e in experiments
    )
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(value)}">'
        for name, value in (
            ("sort", view.sort), ("columns", view.columns),
            ("limit", str(view.limit) if view.limit != DEFAULT_LIMIT else None),
        ) if value
    )
    trials = sum(1 for r in rows for c in r.children if c.kind == TRIAL)
    count = f"{len(rows)} of {len(every)} runs" + (f", {trials} trials" if trials else "")
    more = ""
    if len(rows) > view.limit:
        count += f"; the first {view.limit} shown"
        every_one = _query(pipeline, view, limit=str(min(len(rows), MAX_LIMIT)))
        more = f' <a id="show-all" href="{escape(every_one)}">show all</a>'
    rows = rows[: view.limit]
    empty = "No rows until the filter above is fixed." if error else "No runs match."
    problem = (
        f'<p class="anomaly" id="where-error" role="alert">{escape(error)}</p>' if error else ""
    )
    headers = '<th><span class="muted">curves</span></th>' + "".join(
        _header(pipeline, view, c) for c in columns
    )
    body = (
        f"<h1>{escape(pipeline)}: experiments</h1>"
        f'<p class="muted"><a href="{escape(pipeline_url(pipeline))}">its models and loop</a>'
        f' · <a href="{escape("/?" + urlencode({"pipeline": pipeline}))}">its runs</a>'
        + (f" · headline metric <b>{escape(metric)}</b>" if metric else "")
        + "</p>"
        f'<form id="experiments-form" class="filters" method="get" '
        f'action="{escape(experiments_url(pipeline))}">'
        '<label>Where <input type="text" name="where" id="where" size="48" '
        f'maxlength="{MAX_WHERE}" placeholder="auc &gt; 0.9 and blessed" '
        f'value="{escape(view.where or "")}"></label>'
        '<label>Experiment <select name="experiment" id="experiment">'
        f'<option value="">all</option>{options}</select></label>{hidden}'
        '<button type="submit" id="apply">Apply</button>'
        '<button type="submit" id="draw-curves">Draw curves of checked rows</button>'
        f'<span class="muted"><span id="experiments-count">{escape(count)}</span>{more}</span>'
        f"</form>{problem}"
        '<div style="overflow-x:auto"><table id="experiments-table">'
        f'<thead><tr>{headers}</tr></thead><tbody id="experiments-body">'
        f"{_rows_html(pipeline, rows, columns, set(view.curves), empty, None, set(view.trials))}"
        "</tbody></table></div>"
        '<p class="muted">The <code>--where</code> language of <code>beamline experiments'
        "</code>: comparisons of columns (= != &lt; &lt;= &gt; &gt;= ~) with numbers or quoted "
        "text, joined by and, or, not and parentheses. A click on a header sorts by it (again: "
        "descending).</p>"
        '<section id="parallel"><h2>Settings against the metric</h2>'
        '<p class="muted">One line per run (solid) and per Tuner trial (dashed); an axis per '
        "hyperparameter and override, then the headline metric.</p>"
        + parallel_svg(rows, metric, colours_of(every))
        + '</section><section id="curves"><h2>Training curves</h2>'
        + _curves(every, rows, view, metric)
        + "</section>"
    )
    return page(f"{pipeline} · experiments", body, source)


def render_index(pipelines: list[str], counts: dict[str, int], source: str) -> str:
    items = "".join(
        f'<li><a href="{escape(experiments_url(p))}">{escape(p)}</a> '
        f'<span class="muted">{counts.get(p, 0)} runs</span></li>'
        for p in pipelines
    )
    body = "<h1>Experiments</h1>" + (
        f'<ul id="experiment-pipelines">{items}</ul>' if items
        else '<p class="muted">The store holds no runs yet.</p>'
    )
    return page("Beamline · experiments", body, source)
