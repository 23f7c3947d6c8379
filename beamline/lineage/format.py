"""Human-readable text for the lineage commands (pure functions: data in, text out)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from beamline.lineage.diff import RunDiff
from beamline.lineage.runs import RunSummary
from beamline.lineage.trace import Lineage
from beamline.lineage.why import Explanation

MEASURES = {"L_INFINITY": "L-inf", "JENSEN_SHANNON_DIVERGENCE": "JS-div"}


def when(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def signed(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + number(value, digits)


def _judged(better: bool | None) -> str:
    """After a metric's delta: whether B improved on A, by the metric's own direction."""
    return "" if better is None else (" better" if better else " worse")


# C0 (tab and newline too: a cell is one line), DEL, C1 (holds the 8-bit CSI), and the Unicode
# line separators and bidirectional overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: Any) -> str:
    """`value` as text with control characters shown as escapes (ESC as `\\x1b`). Store strings
    (run reasons, label users and reasons, node names) may come from another user of a shared
    store: printed raw, they could recolour, retitle or rewrite the reader's terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (cells made `printable`)."""
    cells = [[str(h) for h in headers]] + [[printable(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def blessed_text(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


# ---------------------------------------------------------------- runs


def runs_table(summaries: list[RunSummary]) -> str:
    if not summaries:
        return "No runs recorded."
    rows = [
        [
            s.run_id,
            s.pipeline,
            s.span if s.span is not None else "-",
            when(s.start_ms),
            s.state,
            s.trigger,
            duration(s.duration_s),
            s.executed,
            s.cached,
            blessed_text(s.blessed),
            s.pushed_version or "-",
        ]
        for s in summaries
    ]
    headers = ["RUN", "PIPELINE", "SPAN", "STARTED", "STATE", "TRIGGER", "DURATION", "EXECUTED",
               "CACHED", "BLESSED", "PUSHED"]
    if any(s.flink_jobs for s in summaries):
        headers.append("FLINK JOBS")
        for row, s in zip(rows, summaries, strict=True):
            row.append(sum(len(j) for j in s.flink_jobs.values()) or "-")
    text = table(headers, rows)
    with_jobs = [s for s in summaries if s.flink_jobs]
    if with_jobs:
        lines = [text, "", "Flink jobs (node: job ids):"]
        for s in with_jobs:
            lines.append(f"  {printable(s.run_id)}")
            for node, jobs in s.flink_jobs.items():
                lines.append(printable(f"    {node}: {', '.join(jobs)}"))
        text = "\n".join(lines)
    return text


# ---------------------------------------------------------------- why


def why_text(exp: Explanation, indent: str = "") -> str:
    lines = [indent + exp.verdict]
    for change in exp.changes:
        lines.append(f"{indent}  - {change.describe()}")
    for note in exp.notes:
        lines.append(f"{indent}  note: {note}")
    for up in exp.upstream:
        lines.append(f"{indent}  because upstream:")
        lines.append(why_text(up, indent + "    "))
    return "\n".join(lines)


def root_cause_text(causes: list[tuple[str, Any]]) -> str:
    seen, lines = set(), []
    for node, change in causes:
        text = f"{node}: {change.describe()}"
        if text not in seen:
            seen.add(text)
            lines.append("  * " + text)
    return "Root cause:\n" + "\n".join(lines) if lines else ""


# ---------------------------------------------------------------- lineage


def _artifact_line(art: dict[str, Any]) -> str:
    extra = []
    props = art.get("properties", {})
    if art["type"] == "PushedModel":
        extra.append(f"version {props.get('pushed_version')} at {props.get('pushed_destination')}")
    elif art["type"] == "ModelBlessing" and props.get("blessed") is not None:
        extra.append("BLESSED" if props.get("blessed") else "NOT blessed")
    else:
        extra.append(art["uri"])
        extra.append(_span_note(art))
    return f"{art['type']} #{art['id']}: " + " ".join(e for e in extra if e)


def _span_note(art: dict[str, Any]) -> str:
    """"(span 2)" for ExampleGen output (TFX's `span`, Beamline's `span_range`), else ""."""
    props = art.get("properties", {})
    if art["type"] != "Examples" or props.get("span") is None:
        return ""
    return f"(span {props.get('span_range') or props['span']})"


def _facts_lines(facts: dict[str, Any], indent: str) -> list[str]:
    lines = []
    if "pushed_version" in facts:
        state = "pushed" if facts.get("pushed") else "not pushed"
        lines.append(
            f"{state}: version {facts['pushed_version']} -> {facts.get('pushed_destination')}"
        )
    if "blessed" in facts:
        lines.append(f"blessing: {blessed_text(facts['blessed'])}")
    if facts.get("metrics"):
        base = facts.get("baseline_metrics") or {}
        parts = []
        for name, value in sorted(facts["metrics"].items()):
            text = f"{name}={number(value)}"
            if name in base:
                text += f" (baseline {number(base[name])})"
            parts.append(text)
        lines.append("metrics: " + ", ".join(parts))
    if facts.get("hyperparameters"):
        lines.append("hyperparameters: " + short(facts["hyperparameters"], 200))
    if facts.get("module"):
        fingerprint = facts.get("module_fingerprint")
        lines.append(
            "module: "
            + (f"fingerprint {fingerprint} " if fingerprint else "")
            + f"({short(facts['module'], 90)})"
        )
    for key in ("train_args", "eval_args", "custom_config"):
        if key in facts:
            lines.append(f"{key}: {short(facts[key])}")
    if facts.get("anomalies") is not None:
        found = {s: a for s, a in facts["anomalies"].items() if a}
        lines.append(
            "anomalies: "
            + ("; ".join(f"{s}: {', '.join(a)}" for s, a in found.items()) if found else "none")
        )
    if facts.get("flink_jobs"):
        lines.append("flink jobs: " + ", ".join(facts["flink_jobs"]))
    if facts.get("input_fingerprint"):
        lines.append(f"input fingerprint: {facts['input_fingerprint']}")
    return [indent + line for line in lines]


def lineage_text(lineage: Lineage) -> str:
    lines = []
    target = lineage.target
    if lineage.direction == "upstream":
        lines.append("Lineage of " + _artifact_line(target))
        if target.get("run_id"):
            lines.append(f"  produced by {target['producer_node']} in run {target['run_id']}")
        lines.append("")
        for step in lineage.steps:
            state = "" if step.state == "COMPLETE" else f" [{step.state}]"
            lines.append(
                f"<- {step.node} (execution #{step.execution_id}, run {step.run_id}, "
                f"{duration(step.duration_s)}){state}"
            )
            for key, ids in sorted(step.outputs.items()):
                for aid in ids:
                    art = lineage.artifacts.get(aid)
                    if art is not None:
                        lines.append(f"     out {key}: {_artifact_line(art)}")
            for key, ids in sorted(step.inputs.items()):
                if key in ("baseline_model",):
                    refs = ", ".join(f"#{a}" for a in ids) or "none"
                    lines.append(f"     baseline {key}: {refs} (compared with, not followed)")
            lines.extend(_facts_lines(step.facts, "     "))
    else:
        path = target.get("data_path", "")
        lines.append(f"Everything built from {path or _artifact_line(target)}:")
        for step in lineage.steps:
            outs = ", ".join(
                f"{lineage.artifacts[a]['type']} #{a} {_span_note(lineage.artifacts[a])}".rstrip()
                for a in step.outputs and [x for ids in step.outputs.values() for x in ids]
                if a in lineage.artifacts
            )
            lines.append(
                f"-> {step.node} (execution #{step.execution_id}, run {step.run_id}): {outs}"
            )
        lines.append("")
        models = ", ".join(f"#{m}" for m in lineage.models) or "none"
        lines.append(f"Models: {models}")
        if lineage.pushed:
            for item in lineage.pushed:
                lines.append(
                    f"Pushed version {item['version']} -> {item['destination']} "
                    f"(run {item['run_id']})"
                )
        else:
            lines.append("Pushed versions: none")
    if lineage.sources:
        lines.append("")
        lines.append("Source data:")
        for source in lineage.sources:
            for fp in source.fingerprints:
                still = source.unchanged_since_run.get(fp.split)
                status = {True: "unchanged since the run", False: "CHANGED since the run"}.get(
                    still, "not checked"
                )
                lines.append(
                    f"  {source.input_base} split {fp.split}: {fp.describe()} at run time; {status}"
                )
            for item in source.files:
                origin = "recorded at run time" if item.recorded else "computed now"
                digest = (item.sha256 or "unreadable")[:16]
                lines.append(f"    {item.path}  {item.bytes} bytes  sha256 {digest}... ({origin})")
    return "\n".join(lines)


# ---------------------------------------------------------------- diff


def diff_text(diff: RunDiff) -> str:
    lines = [f"Run A: {diff.run_a} ({diff.pipeline_a})", f"Run B: {diff.run_b} ({diff.pipeline_b})"]

    lines.append("")
    lines.append("Inputs:")
    if diff.span != (None, None):
        span_a, span_b = (s if s is not None else "-" for s in diff.span)
        lines.append(
            f"  span: {span_a} -> {span_b}" if span_a != span_b else f"  span: {span_b} (same)"
        )
    if not diff.data:
        lines.append("  source data: same ExampleGen output in both runs (unchanged)")
    for item in diff.data:
        if item["changed"]:
            base = ""
            if item["input_base_a"] != item["input_base_b"]:
                base = f" (input_base {item['input_base_a']} -> {item['input_base_b']})"
            lines.append(
                f"  {item['node']} split {item['split']}: CHANGED {item['a']} -> {item['b']}{base}"
            )
        else:
            lines.append(f"  {item['node']} split {item['split']}: unchanged ({item['b']})")

    lines.append("")
    lines.append("Nodes:")
    rows = []
    for node in diff.nodes:
        what = "same execution" if node.same_execution else "re-executed"
        if node.state_a is None or node.state_b is None:
            what = "only in " + ("B" if node.state_a is None else "A")
        rows.append([node.node, node.state_a or "-", node.state_b or "-", what])
    lines.append("  " + table(["NODE", "A", "B", ""], rows).replace("\n", "\n  "))

    params = diff.param_changes()
    code = diff.code_changes()
    lines.append("")
    lines.append("Parameters: " + ("unchanged" if not params else ""))
    for node, change in params:
        lines.append(
            f"  {node}.{change.name}: {short(change.before, 60)} -> {short(change.after, 60)}"
        )
    lines.append("Module code: " + ("unchanged" if not code else ""))
    for node, change in code:
        lines.append(f"  {node}: {change.describe()}")

    if diff.drift:
        lines.append("")
        lines.append(
            "Statistics drift (B vs A; L-infinity for categorical, Jensen-Shannon numeric):"
        )
        rows = []
        for split, items in diff.drift.items():
            for d in items:
                rows.append(
                    [
                        split,
                        d.feature,
                        MEASURES.get(d.measure, d.measure),
                        number(d.value),
                        number(d.threshold),
                        "DRIFT" if d.drifted else "ok",
                    ]
                )
        lines.append(
            "  "
            + table(["SPLIT", "FEATURE", "MEASURE", "VALUE", "THRESHOLD", ""], rows).replace(
                "\n", "\n  "
            )
        )

    lines.append("")
    if diff.anomalies_new:
        lines.append("New anomalies in B:")
        for a in diff.anomalies_new:
            lines.append(
                f"  {a['node']} {a['split']} {a['feature']}: {a['short']} ({a['severity']})"
            )
    else:
        lines.append("New anomalies in B: none")
    for a in diff.anomalies_resolved:
        lines.append(f"  resolved since A: {a['split']} {a['feature']}: {a['short']}")

    if diff.metrics:
        lines.append("")
        lines.append("Evaluation metrics (candidate model):")
        rows = []
        for slice_name, metrics in diff.metrics.items():
            for metric, values in metrics.items():
                rows.append(
                    [
                        slice_name,
                        metric,
                        number(values["a"]),
                        number(values["b"]),
                        signed(values["delta"]) + _judged(values.get("better")),
                    ]
                )
        lines.append(
            "  " + table(["SLICE", "METRIC", "A", "B", "DELTA"], rows).replace("\n", "\n  ")
        )

    lines.append("")
    a, b = diff.blessed
    lines.append(f"Blessing: {blessed_text(a)} -> {blessed_text(b)}")
    va, vb = diff.pushed_version
    lines.append(f"Pushed version: {va or '-'} -> {vb or '-'}")
    for note in diff.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
