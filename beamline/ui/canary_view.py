"""The pipeline page's "Canary against stable" section: what `beamline monitor --compare stable
canary` says about the two versions' served traffic in the last hours, read from the request
outcome files of the directory `beamline ui --requests` names (beamline.monitor.canary).

Read on each page load: the outcome files are the server's, appended to while it runs, and a
comparison is a scan of one window of them (no statistics job).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

from beamline.errors import DataError
from beamline.lineage.model import Graph
from beamline.metadata.labels import LabelChange
from beamline.metadata.labels import holders as current_labels
from beamline.metadata.records import CANARY_LABEL, STABLE_LABEL
from beamline.monitor.canary import (
    CompareThresholds,
    Comparison,
    compare_sides,
    prediction_rows,
)
from beamline.report.page import badge, table


def compare_labels(
    graph: Graph,
    pipeline: str,
    changes: list[LabelChange],
    requests_dir: Path,
    hours: float,
    now: dt.datetime | None = None,
) -> Comparison | str:
    """The comparison of the canary with stable over the last `hours`, or why there is none
    (one sentence)."""
    from beamline.monitor.compare_versions import stable_and_canary

    held = current_labels(changes)
    stable, canary = held.get(STABLE_LABEL), held.get(CANARY_LABEL)
    if stable is None or canary is None or stable == canary:
        return (
            "No canary apart from stable: a canary push (`beamline run --push-policy canary`) "
            "or `beamline promote ... --label canary` starts one."
        )
    until = now or dt.datetime.now(dt.timezone.utc)
    try:
        model_name, base, candidate = stable_and_canary(
            graph, requests_dir, stable, canary, until - dt.timedelta(hours=hours), until
        )
        return compare_sides(pipeline, model_name, base, candidate, CompareThresholds())
    except DataError as exc:
        return str(exc)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def render(result: Comparison | str | None, requests_dir: Path | None, hours: float) -> str:
    """The section's HTML: a note without --requests, the reason when there is no comparison."""
    if result is None:
        return (
            '<p class="muted" id="canary-off">Start the UI with <code>--requests DIR</code> (the '
            "server's <code>--request_log_dir</code>) to compare stable and canary here.</p>"
        )
    where = (
        f'<p class="muted">Requests answered in the last {hours:g} h, from the outcome files '
        f"under <code>{escape(str(requests_dir))}</code>; the checks of <code>beamline monitor "
        "--compare stable canary</code>.</p>"
    )
    if isinstance(result, str):
        return where + f'<p class="muted" id="canary-none">{escape(result)}</p>'
    a, b = result.baseline, result.candidate
    rows = [
        ["requests", str(a.requests), str(b.requests)],
        ["errors", f"{a.errors} ({a.error_rate:.2%})", f"{b.errors} ({b.error_rate:.2%})"],
        ["p50 latency", _ms(a.p50_ms), _ms(b.p50_ms)],
        ["p99 latency", _ms(a.p99_ms), _ms(b.p99_ms)],
    ]
    rows += [[escape(cell) for cell in row] for row in prediction_rows(a, b)]
    checks = [
        [escape(c.name), f"{c.value:.4g}", f"{c.threshold:g}",
         badge("crossed") if c.crossed else badge("ok")]
        for c in result.checks
    ]
    verdict = (
        f"canary (v{b.version}) is worse than stable (v{a.version}): "
        + ", ".join(result.crossed)
        if result.crossed
        else f"canary (v{b.version}) is within every threshold of stable (v{a.version})"
    )
    return (
        where
        + table(["", f"stable (v{a.version})", f"canary (v{b.version})"], rows, {1, 2},
                id="canary-table")
        + table(["check", "value", "threshold", ""], checks, {1, 2}, id="canary-checks")
        + f'<p id="canary-verdict" class="{"bad" if result.crossed else "ok"}">'
        f"{escape(verdict)}</p>"
    )
