"""Why a node executed instead of coming from the cache, or which execution a cached one reused.

TFX reuses a node's earlier outputs when its cache key (input artifacts, execution properties,
executor, pipeline) matches an earlier successful execution. So an execution that ran is compared
with the same node's previous finished execution: input artifacts (followed upstream to the node
whose own change started it), execution properties (ExampleGen's input fingerprint, component
parameters) and module code: the `module_sha256` digest Beamline puts in custom_config (module
files are imported in place), or the content hash in the name of the wheel stock TFX builds.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.errors import ConfigError
from beamline.lineage.model import CACHED, COMPLETE, FAILED, FINISHED_STATES, Execution, Graph
from beamline.lineage.push_notes import push_notes
from beamline.lineage.sources import parse_fingerprint
from beamline.metadata.run_context import MODULE_SHA256_KEY, REASON, ExecutionState, RunState

# Execution properties holding user code or its digest (custom_config's module_sha256).
CODE_PROPERTIES = (
    "module_path",
    "module_file",
    "module_fn",
    "preprocessing_fn",
    "stats_options_updater_fn",
    "run_fn",
    "trainer_fn",
    "tuner_fn",
    "custom_config",
)
# Properties that change on every execution without meaning anything changed.
VOLATILE_PREFIXES = ("__", "beamline_")
VOLATILE = {"state"}


class UnknownNode(ConfigError):
    """A node id that is not in the run (exit code 2, like other bad arguments)."""


def module_fingerprint(value: Any) -> str | None:
    """The content hash of module code: in a packaged module path
    (`...tfx_user_code_X-0.0+HASH-py3-...whl`) or Beamline's `module_sha256` custom config."""
    text = str(value or "")
    match = re.search(r"\+([0-9a-f]{8,})-", text) or re.search(
        re.escape(MODULE_SHA256_KEY) + r"\W+([0-9a-f]{16,})", text
    )
    return match.group(1) if match else None


@dataclass
class Change:
    kind: str  # input | property | code | data
    name: str
    before: Any
    after: Any
    detail: str = ""

    def describe(self) -> str:
        if self.detail:
            return self.detail
        return f"{self.kind} {self.name}: {_short(self.before)} -> {_short(self.after)}"


@dataclass
class Explanation:
    node: str
    run_id: str
    execution_id: int | None
    state: str  # COMPLETE | CACHED | FAILED | ... | NOT_RUN
    verdict: str  # one line
    compared_with: int | None = None  # previous execution id (for executed nodes)
    compared_run: str | None = None
    reused_execution: int | None = None  # for cached nodes
    reused_run: str | None = None
    changes: list[Change] = field(default_factory=list)
    upstream: list[Explanation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_node_execution(graph: Graph, run_id: str, node: str) -> Execution | None:
    """The execution of `node` (node id, case-insensitive, or component class name) in a run."""
    execs = graph.run_executions(run_id)
    for test in (
        lambda e: e.node_id == node,
        lambda e: e.node_id.lower() == node.lower(),
        lambda e: e.component.lower() == node.lower(),
    ):
        found = [e for e in execs if test(e)]
        if found:
            return found[-1]
    return None


def node_ids(graph: Graph, pipeline: str) -> list[str]:
    return sorted({e.node_id for e in graph.executions.values() if e.pipeline == pipeline})


def previous_execution(graph: Graph, ex: Execution) -> Execution | None:
    """The same node's latest finished execution before `ex` (in any earlier run)."""
    earlier = [
        e
        for e in graph.executions.values()
        if e.pipeline == ex.pipeline
        and e.node_id == ex.node_id
        and e.id < ex.id
        and e.state in FINISHED_STATES
    ]
    return max(earlier, key=lambda e: e.id) if earlier else None


def original(graph: Graph, ex: Execution) -> Execution:
    """For a cached execution, the execution that produced its outputs; else itself."""
    if ex.state != CACHED:
        return ex
    for aid in ex.output_ids():
        producer = graph.producer(aid)
        if producer is not None and producer.id != ex.id:
            return producer
    return ex


def _comparable(props: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in props.items() if k not in VOLATILE and not k.startswith(VOLATILE_PREFIXES)
    }


def property_changes(before: Execution, after: Execution) -> list[Change]:
    """Differences in execution properties (code properties reported as `code`)."""
    old, new = _comparable(before.properties), _comparable(after.properties)
    changes = []
    # ExampleGen's driver records these only when it runs, not on a cached execution.
    driver_only = {"input_fingerprint", "span", "version"}
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key in driver_only and (key not in old or key not in new):
            continue
        if key == "input_fingerprint":
            changes.append(_fingerprint_change(old[key], new[key]))
        elif key in CODE_PROPERTIES:
            fp_old, fp_new = module_fingerprint(old.get(key)), module_fingerprint(new.get(key))
            detail = (
                f"module code changed: {key} fingerprint {fp_old} -> {fp_new}"
                if fp_old and fp_new
                else f"code property {key} changed: {_short(old.get(key))} -> "
                f"{_short(new.get(key))}"
            )
            changes.append(Change("code", key, old.get(key), new.get(key), detail))
        else:
            changes.append(Change("property", key, old.get(key), new.get(key)))
    return changes


def _fingerprint_change(old: str, new: str) -> Change:
    before = {f.split: f for f in parse_fingerprint(old)}
    after = {f.split: f for f in parse_fingerprint(new)}
    parts = []
    for split in sorted(set(before) | set(after)):
        a, b = before.get(split), after.get(split)
        if a is None or b is None:
            parts.append(f"split {split} {'added' if a is None else 'removed'}")
            continue
        bits = []
        if a.num_files != b.num_files:
            bits.append(f"files {a.num_files} -> {b.num_files}")
        if a.total_bytes != b.total_bytes:
            bits.append(f"bytes {a.total_bytes} -> {b.total_bytes}")
        if (a.xor_checksum, a.sum_checksum) != (b.xor_checksum, b.sum_checksum):
            bits.append("file modification times changed")
        if bits:
            parts.append(f"split {split}: " + ", ".join(bits))
    detail = "source data changed (input_fingerprint): " + ("; ".join(parts) or "differs")
    return Change("data", "input_fingerprint", old, new, detail)


def input_changes(graph: Graph, before: Execution, after: Execution) -> list[Change]:
    changes = []
    for key in sorted(set(before.inputs) | set(after.inputs)):
        old, new = before.inputs.get(key, []), after.inputs.get(key, [])
        if sorted(old) == sorted(new):
            continue
        added = [a for a in new if a not in old]
        origin = []
        for aid in added:
            producer = graph.producer(aid)
            art = graph.artifacts.get(aid)
            what = f"#{aid}" + (f" {art.type}" if art else "")
            if producer is not None:
                where = "this run" if producer.run_id == after.run_id else producer.run_id
                what += f" from {producer.node_id} ({where})"
            origin.append(what)
        detail = (
            f"input '{key}' changed: artifact(s) {', '.join(map(str, old)) or 'none'} -> "
            f"{', '.join(origin) or 'none'}"
        )
        changes.append(Change("input", key, old, new, detail))
    return changes


def explain_execution(graph: Graph, ex: Execution, depth: int = 0) -> Explanation:
    """Why `ex` ran (or was reused); follows changed inputs upstream to the first cause."""
    exp = Explanation(
        node=ex.node_id,
        run_id=ex.run_id,
        execution_id=ex.id,
        state=ex.state,
        verdict="",
    )
    if ex.state in (*ExecutionState.UNFINISHED, ExecutionState.CANCELED):
        return _unfinished(graph, ex, exp)
    if ex.state == CACHED:
        source = original(graph, ex)
        if source.id == ex.id:
            exp.verdict = f"{ex.node_id} came from the cache (the original execution is not found)."
            return exp
        exp.reused_execution, exp.reused_run = source.id, source.run_id
        outputs = ", ".join(f"#{a}" for a in ex.output_ids()) or "none"
        exp.verdict = (
            f"{ex.node_id} came from the cache: it reused execution #{source.id} of run "
            f"{source.run_id} (outputs {outputs}); its inputs and properties matched."
        )
        return exp
    if ex.state == FAILED:
        reason = str(ex.properties.get(REASON) or "")
        exp.notes.append(
            "The execution failed" + (f" ({reason})" if reason else "")
            + "; its outputs were not published."
        )
    prev = previous_execution(graph, ex)
    if prev is None:
        exp.verdict = (
            f"{ex.node_id} executed: it is the node's first execution in this store, so there "
            "was nothing to reuse."
        )
        return exp
    base = original(graph, prev)
    exp.compared_with, exp.compared_run = prev.id, prev.run_id
    exp.changes = input_changes(graph, prev, ex) + property_changes(base, ex)
    if depth < 20:
        for change in exp.changes:
            if change.kind != "input":
                continue
            for aid in change.after or []:
                producer = graph.producer(aid)
                if (
                    producer is not None
                    and producer.run_id == ex.run_id
                    and producer.state == COMPLETE
                    and all(u.execution_id != producer.id for u in exp.upstream)
                ):
                    exp.upstream.append(explain_execution(graph, producer, depth + 1))
    verb = "failed after running" if ex.state == FAILED else "executed"
    if exp.changes:
        kinds = []
        for kind, label in (
            ("data", "the source data"),
            ("input", "its input artifacts"),
            ("code", "its module code"),
            ("property", "its parameters"),
        ):
            if any(c.kind == kind for c in exp.changes):
                kinds.append(label)
        exp.verdict = (
            f"{ex.node_id} {verb} instead of coming from the cache: {' and '.join(kinds)} "
            f"changed since execution #{prev.id} (run {prev.run_id})."
        )
    else:
        unavailable = [
            a
            for a in base.output_ids()
            if a in graph.artifacts and graph.artifacts[a].state not in ("LIVE", "UNKNOWN")
        ]
        exp.verdict = (
            f"{ex.node_id} {verb} although its inputs and recorded properties equal execution "
            f"#{prev.id} (run {prev.run_id})."
        )
        if unavailable:
            exp.notes.append(
                "The earlier outputs are no longer live (artifacts "
                + ", ".join(f"#{a}" for a in unavailable)
                + "), so they could not be reused."
            )
        else:
            exp.notes.append(
                "Caching was probably disabled for this run, or something MLMD does not record "
                "changed (executor, Beam arguments, TFX version); see the cache keys below."
            )
    return exp


def _unfinished(graph: Graph, ex: Execution, exp: Explanation) -> Explanation:
    """An execution that started and never finished: running now, or killed with its run."""
    from beamline.lineage.runs import summarize

    run = graph.runs.get(ex.run_id)
    summary = summarize(graph, run) if run is not None else None
    if summary is not None and summary.state == RunState.RUNNING:
        exp.verdict = (
            f"{ex.node_id} is running now (execution #{ex.id} started and has not finished)."
        )
        return exp
    exp.state = "KILLED"
    why = f" ({summary.reason})" if summary is not None and summary.reason else ""
    exp.verdict = (
        f"{ex.node_id} did not finish: execution #{ex.id} started, then the run's runner was "
        f"killed before it completed{why}. Nothing it produced was published."
    )
    exp.notes.append("Re-run the pipeline: the node runs again (a killed execution is never "
                     "reused from the cache).")
    return exp


def root_causes(exp: Explanation) -> list[tuple[str, Change]]:
    """The non-input changes (data, code, parameters) at the bottom of the upstream chain."""
    found = [(exp.node, c) for c in exp.changes if c.kind != "input"]
    for up in exp.upstream:
        found.extend(root_causes(up))
    return found


def explain(graph: Graph, run_id: str, node: str) -> Explanation:
    ex = find_node_execution(graph, run_id, node)
    if ex is None:
        run = graph.runs[run_id]
        known = node_ids(graph, run.pipeline)
        if not any(n.lower() == node.lower() for n in known) and not any(
            e.component.lower() == node.lower() for e in graph.executions.values()
        ):
            raise UnknownNode(
                f"Pipeline {run.pipeline!r} has no node {node!r}. Its nodes: "
                f"{', '.join(known) or 'none recorded'}."
            )
        return Explanation(
            node=node,
            run_id=run_id,
            execution_id=None,
            state="NOT_RUN",
            verdict=(
                f"{node} did not run in run {run_id}: the run stopped or failed before "
                "reaching it (see `beamline runs`)."
            ),
        )
    exp = explain_execution(graph, ex)
    exp.notes.extend(push_notes(graph, ex))
    return exp
