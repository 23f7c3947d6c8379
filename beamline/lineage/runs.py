"""Run summaries and run references (`latest`, `previous`, `latest~2`, an id or a unique prefix)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from beamline.errors import ConfigError
from beamline.lineage.model import CACHED, COMPLETE, FAILED, NEW, RUNNING, Execution, Graph, Run
from beamline.lineage.spans import span_of
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import runner_alive
from beamline.metadata.records import TriggerKind


class UnknownRun(ConfigError):
    """A run reference that matches no run (or several) (exit code 2)."""


@dataclass
class RunSummary:
    run_id: str
    pipeline: str
    start_ms: int
    end_ms: int
    state: str
    executed: int
    cached: int
    failed: int
    nodes: int
    blessed: bool | None  # None: no Evaluator blessing in this run
    pushed_version: str | None
    pushed_destination: str | None
    reason: str = ""
    span: str | None = None  # the TFX span ExampleGen read ("1-3" for a range)
    trigger: str = TriggerKind.MANUAL  # what started it (records.TriggerKind)
    trigger_execution_id: int | None = None  # the loop's beamline.Trigger execution
    # --beam flink: node -> the Flink job ids its Beam pipelines ran as (run_context.FLINK_JOBS)
    flink_jobs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ms - self.start_ms) / 1000.0

    def to_json(self) -> dict:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        return data


def blessing_of(graph: Graph, executions: list[Execution]) -> bool | None:
    """The run's model blessing: the `blessed` property of a ModelBlessing output, if any."""
    result = None
    for ex in executions:
        for aid in ex.output_ids():
            art = graph.artifacts.get(aid)
            if art is not None and art.type == rc.BLESSING_TYPE:
                verdict = rc.blessed_from(art.properties)
                result = result if verdict is None else verdict
    return result


def pushed_of(graph: Graph, executions: list[Execution]) -> tuple[str | None, str | None]:
    """(pushed_version, pushed_destination) of a PushedModel this run pushed (a cached Pusher
    pushed nothing new)."""
    for ex in executions:
        if ex.state != COMPLETE:
            continue
        for aid in ex.output_ids():
            art = graph.artifacts.get(aid)
            if art is None or art.type != rc.PUSHED_MODEL_TYPE:
                continue
            pushed = rc.push_from(art.properties)
            if pushed is not None:
                return pushed[0] or None, pushed[1]
    return None, None


def unfinished_nodes(graph: Graph, run: Run) -> list[str]:
    """Nodes whose execution in `run` started and never finished (or were canceled as killed)."""
    stuck = (*rc.ExecutionState.UNFINISHED, rc.ExecutionState.CANCELED)
    nodes = [e.node_id for e in graph.run_executions(run.id) if e.state in stuck]
    if not nodes:
        nodes = [n for n in str(run.properties.get(rc.CURRENT_NODES) or "").split(",") if n]
    return nodes


def killed_reason(graph: Graph, run: Run) -> str:
    nodes = unfinished_nodes(graph, run)
    where = f" while running {', '.join(nodes)}" if nodes else ""
    return (
        f"killed: runner pid {run.properties.get(rc.RUNNER_PID)} on "
        f"{run.properties.get(rc.RUNNER_HOST)} stopped without recording an end{where}"
    )


def summarize(
    graph: Graph, run: Run, alive: Callable[[dict], bool | None] = runner_alive
) -> RunSummary:
    """One run's state and results. A run recorded as `running` whose runner process is gone
    (`alive`, from the pid/host/heartbeat the runner stamped) is `killed`."""
    execs = graph.run_executions(run.id)
    states = [e.state for e in execs]
    start = min([run.create_ms, *(e.start_ms for e in execs)]) if execs else run.create_ms
    end = max([start, *(e.end_ms for e in execs)])
    recorded = run.properties.get(rc.STATE)
    reason = str(run.properties.get(rc.REASON) or "")
    if recorded == rc.RunState.RUNNING and alive(run.properties) is False:
        state = rc.RunState.KILLED
        reason = killed_reason(graph, run)
        if run.properties.get(rc.HEARTBEAT_MS):
            end = max(end, int(run.properties[rc.HEARTBEAT_MS]))
    elif recorded:
        state = str(recorded)
    elif FAILED in states:
        state = rc.RunState.FAILED
    elif any(s in (NEW, RUNNING) for s in states):
        state = rc.RunState.RUNNING
    elif not execs:
        state = rc.RunState.EMPTY
    else:
        state = rc.RunState.COMPLETE
    if run.properties.get(rc.END_MS):
        end = max(end, int(run.properties[rc.END_MS]))
    version, destination = pushed_of(graph, execs)
    return RunSummary(
        run_id=run.id,
        pipeline=run.pipeline,
        start_ms=start,
        end_ms=end,
        state=state,
        executed=states.count(COMPLETE),
        cached=states.count(CACHED),
        failed=states.count(FAILED),
        nodes=int(run.properties.get(rc.NODES_TOTAL) or len({e.node_id for e in execs})),
        blessed=blessing_of(graph, execs),
        pushed_version=version,
        pushed_destination=destination,
        reason=reason,
        span=span_of(graph, execs),
        trigger=str(run.properties.get(rc.TRIGGER) or TriggerKind.MANUAL),
        trigger_execution_id=(
            int(run.properties[rc.TRIGGER_EXECUTION_ID])
            if run.properties.get(rc.TRIGGER_EXECUTION_ID) is not None
            else None
        ),
        flink_jobs=flink_jobs_of(execs),
    )


def flink_jobs_of(executions: list[Execution]) -> dict[str, list[str]]:
    """node -> Flink job ids recorded on its execution(s) in a run."""
    out: dict[str, list[str]] = {}
    for ex in executions:
        jobs = flink_job_ids(ex)
        if jobs:
            out.setdefault(ex.node_id, []).extend(jobs)
    return out


def flink_job_ids(ex: Execution) -> list[str]:
    import json

    raw = ex.prop(rc.FLINK_JOBS)
    if not raw:
        return []
    try:
        return [str(j) for j in json.loads(raw).get("jobs") or []]
    except (ValueError, AttributeError):
        return []


def run_summaries(graph: Graph, pipeline: str | None = None) -> list[RunSummary]:
    """Every run, oldest first."""
    return [summarize(graph, r) for r in graph.sorted_runs(pipeline)]


_RELATIVE = re.compile(r"^(?:latest|last|head)(?:~(\d+))?$")


def resolve_run(graph: Graph, ref: str | None, pipeline: str | None = None) -> Run:
    """The run `ref` names: None/`latest`, `previous`, `latest~N`, an exact id or unique prefix."""
    runs = graph.sorted_runs(pipeline)
    scope = f" of pipeline {pipeline!r}" if pipeline else ""
    if not runs:
        raise UnknownRun(
            f"There are no runs{scope} in the metadata store {graph.source}. Run a pipeline "
            "first, or point --root/--metadata at the store it wrote."
        )
    ref = (ref or "latest").strip()
    given = ref
    if ref == "previous":
        ref = "latest~1"
    match = _RELATIVE.match(ref)
    if match:
        back = int(match.group(1) or 0)
        pipelines = {r.pipeline for r in runs}
        if len(pipelines) > 1 and pipeline is None:
            raise UnknownRun(
                f"{ref!r} is ambiguous: the store holds runs of several pipelines "
                f"({', '.join(sorted(pipelines))}). Add --pipeline NAME or give a run id."
            )
        if back >= len(runs):
            count = f"{len(runs)} run" + ("" if len(runs) == 1 else "s")
            raise UnknownRun(
                f"{given!r} is {back} run(s) before the latest, but the store holds only {count}"
                f"{scope}. `beamline runs` lists them; use one of those, or `latest`."
            )
        return runs[-1 - back]
    if ref in graph.runs and (pipeline is None or graph.runs[ref].pipeline == pipeline):
        return graph.runs[ref]
    matches = [r for r in runs if r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        recent = ", ".join(r.id for r in runs[-3:])
        raise UnknownRun(
            f"No run{scope} matches {ref!r}. Recent runs: {recent}. Use a run id (or a unique "
            "prefix of one), `latest`, `previous` or `latest~N`; `beamline runs` lists them."
        )
    raise UnknownRun(
        f"{ref!r} matches {len(matches)} runs ({', '.join(r.id for r in matches[:4])}...): "
        "give more of the run id."
    )


def previous_run(graph: Graph, run: Run) -> Run | None:
    """The run of the same pipeline just before `run`."""
    runs = graph.sorted_runs(run.pipeline)
    index = runs.index(run)
    return runs[index - 1] if index > 0 else None


def unrecorded_versions(graph: Graph, serving_root: Path) -> list[Path]:
    """Version directories under `<serving_root>/<pipeline>/` that no PushedModel records.

    A push killed after its version became visible and before TFX recorded it leaves one: a
    complete model a server would serve, with no lineage. Only the graph's pipelines are checked.
    """
    recorded = {
        str(Path(str(a.prop("pushed_destination"))))
        for a in graph.artifacts.values()
        if a.type == rc.PUSHED_MODEL_TYPE and a.prop("pushed_destination")
    }
    found = []
    for pipeline in graph.pipelines():
        base = serving_root / pipeline
        if not base.is_dir():
            continue
        for version in sorted(base.iterdir()):
            if version.name.isdigit() and version.is_dir() and str(version) not in recorded:
                found.append(version)
    return found
