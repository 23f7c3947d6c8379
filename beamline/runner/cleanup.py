"""What killed runs leave behind, found and removed (by the next run of the pipeline, or `gc`).

Call these only while holding the pipeline's run lock (beamline.runner.run_lock): then no live
local run of the pipeline can own what is removed. A run counts as dead when its runner stamped
its identity and that process no longer runs (beamline.metadata.liveness); runs with no stamps
(stock TFX, other orchestrators) are never touched.

- the run is recorded as `killed`, with the node(s) it died in;
- its unfinished executions are recorded as CANCELED (MLMD's word for "will never finish");
- their output directories, `.system/executor_execution/<id>` (with `.temp`) and stateful working
  directories are removed: nothing was published from them;
- temporary directories of earlier runs (`<root>/tmp/<pipeline>/*`) are removed; staged push
  copies (`<serving dir>/.incoming-*`) are finished or removed from the record by
  beamline.runner.push.recover.

Node names and stateful working directory indexes come from the store, which may be shared or
received from someone else, and "dead" is decided from its properties alone (another host, an
old heartbeat). So every path removed here is first proven to lie inside the pipeline root
(beamline.runner.contained); one a record names outside it is reported as refused, never removed.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from beamline.metadata import run_context as rc
from beamline.metadata.liveness import runner_alive
from beamline.runner.contained import Outside, inside, name_problem
from beamline.settings import RootLayout

# TFX's names (tfx.orchestration.portable.outputs_utils).
_SYSTEM = ".system"
_EXECUTOR_EXECUTION = "executor_execution"
_STATEFUL_WORKING_DIR = "stateful_working_dir"
_STATEFUL_INDEX = "__stateful_working_dir_index__"


@dataclass
class Cleanup:
    killed_runs: list[str] = field(default_factory=list)
    canceled_executions: list[int] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    # Paths records named outside the place they belong, with why: reported, never removed.
    refused: list[str] = field(default_factory=list)
    # Find and report only: nothing is recorded in MLMD and nothing is removed (`gc --dry-run`).
    dry_run: bool = False

    def merge(self, other: Cleanup) -> None:
        self.killed_runs += other.killed_runs
        self.canceled_executions += other.canceled_executions
        self.removed += other.removed
        self.refused += other.refused

    def describe(self) -> str:
        if not (self.killed_runs or self.removed or self.refused):
            return "nothing to clean"
        refused = (
            f"; refused {len(self.refused)} path(s) the store named outside the pipeline root "
            "(not removed: a forged or damaged record)" if self.refused else ""
        )
        if self.dry_run:
            return (
                f"would record {len(self.killed_runs)} killed run(s) "
                f"({', '.join(self.killed_runs)}), cancel {len(self.canceled_executions)} "
                f"unfinished execution(s), remove {len(self.removed)} leftover director(ies)"
                + refused
            )
        return (
            f"{len(self.killed_runs)} killed run(s) recorded ({', '.join(self.killed_runs)}), "
            f"{len(self.canceled_executions)} unfinished execution(s) canceled, "
            f"{len(self.removed)} leftover director(ies) removed" + refused
        )

    def to_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "killed_runs": list(self.killed_runs),
            "canceled_executions": list(self.canceled_executions),
            "removed": [str(p) for p in self.removed],
            "refused": list(self.refused),
        }


def _props(message) -> dict:
    return rc.properties_of(message)


def dead_runs(store, pipeline: str) -> list:
    """pipeline_run contexts of `pipeline` stamped `running` whose runner is gone."""
    out = []
    for ctx in store.get_contexts_by_type(rc.RUN_CONTEXT):
        props = _props(ctx)
        if props.get(rc.PIPELINE) != pipeline or props.get(rc.STATE) != rc.RunState.RUNNING:
            continue
        if runner_alive(props) is False:
            out.append(ctx)
    return out


def _remove(path: Path, result: Cleanup) -> None:
    """Removes `path`, which the caller proved lies where Beamline owns it."""
    if path.exists():
        if not result.dry_run:
            shutil.rmtree(path, ignore_errors=True)
        result.removed.append(path)


def _checked(result: Cleanup, what: str, base: Path, *parts: str) -> Path | None:
    """`base/parts` when it lies inside `base`; None, recorded as refused, when it does not."""
    try:
        inside(base, *parts)
    except Outside as refused:
        result.refused.append(f"{what}: {refused}")
        if not result.dry_run:  # also said in the run's log, whoever prints the result
            logging.getLogger("beamline").warning("not removed: %s: %s", what, refused)
        return None
    return base.joinpath(*parts)


def remove_inside(result: Cleanup, what: str, base: Path, *parts: str) -> None:
    """Removes `base/parts` when it lies inside `base`; records it as refused otherwise."""
    path = _checked(result, what, base, *parts)
    if path is not None:
        _remove(path, result)


def _node_of(store, execution_id: int, pipeline: str) -> str | None:
    for ctx in store.get_contexts_by_execution(execution_id):
        if ctx.type == rc.NODE_CONTEXT and ctx.name.startswith(pipeline + "."):
            return ctx.name[len(pipeline) + 1 :]
    return None


def _remove_execution_dirs(root: Path, node: str, execution, result: Cleanup) -> None:
    """Removes what `execution` of `node` left under the pipeline `root`."""
    what = f"execution {execution.id} of node {node!r}"
    node_dir = _checked(result, what, root, node)
    if node_dir is None or not node_dir.is_dir():
        return
    eid = str(execution.id)
    for key_dir in node_dir.iterdir():
        if key_dir.name != _SYSTEM and (key_dir / eid).exists():
            remove_inside(result, what, root, node, key_dir.name, eid)
    remove_inside(result, what, root, node, _SYSTEM, _EXECUTOR_EXECUTION, eid)
    index = execution.custom_properties.get(_STATEFUL_INDEX)
    if index is not None and index.string_value:
        remove_inside(
            result, f"{what}, its {_STATEFUL_INDEX}", root, node, _SYSTEM, _STATEFUL_WORKING_DIR,
            index.string_value,
        )


def _pipeline_root(layout: RootLayout, pipeline: str, result: Cleanup) -> Path | None:
    problem = name_problem(pipeline)
    if problem:
        result.refused.append(f"pipeline {pipeline!r}: the name {problem}")
        return None
    return layout.pipeline_root(pipeline)


def unfinished_executions(store, run_ctx) -> list:
    """The run's executions that never recorded an end (NEW or RUNNING)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    unfinished = (pb.Execution.NEW, pb.Execution.RUNNING)
    return [e for e in store.get_executions_by_context(run_ctx.id)
            if e.last_known_state in unfinished]


def end_executions(
    store, layout: RootLayout, pipeline: str, executions: list, state: int, reason: str,
    result: Cleanup,
) -> None:
    """Records `executions` as ended in `state` (an MLMD Execution.State) with `reason`, and
    removes their unpublished output directories."""
    root = _pipeline_root(layout, pipeline, result) if executions else None
    for execution in executions:
        node = _node_of(store, execution.id, pipeline)
        if node and root is not None:
            _remove_execution_dirs(root, node, execution, result)
        execution.last_known_state = state
        execution.custom_properties[rc.REASON].string_value = reason[:500]
        result.canceled_executions.append(execution.id)
    if executions and not result.dry_run:
        store.put_executions(executions)


def record_failed(
    store, layout: RootLayout | None, pipeline: str, run_id: str, digest: str, reason: str,
    nodes: int,
) -> bool:
    """Records run `run_id` failed with `reason`; with `layout`, also its unfinished executions
    (FAILED, outputs removed: nothing will finish them). False when the store has no such run."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.runner import fast_cache

    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    if ctx is None:
        return False
    if layout is not None:
        executions = unfinished_executions(store, ctx)
        end_executions(store, layout, pipeline, executions, pb.Execution.FAILED, reason, Cleanup())
    fast_cache.mark_run(
        store, run_id, pipeline, digest, state=rc.RunState.FAILED, nodes=nodes, reason=reason
    )
    return True


def record_and_clean_killed_runs(
    store, layout: RootLayout, pipeline: str, dry_run: bool = False
) -> Cleanup:
    """Records dead runs as killed and removes their unpublished outputs (with `dry_run`, only
    says what it would record and remove)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    result = Cleanup(dry_run=dry_run)
    for ctx in dead_runs(store, pipeline):
        props = _props(ctx)
        stuck = unfinished_executions(store, ctx)
        nodes = [n for n in (_node_of(store, e.id, pipeline) for e in stuck) if n]
        nodes = nodes or [n for n in str(props.get(rc.CURRENT_NODES) or "").split(",") if n]
        where = f" while running {', '.join(nodes)}" if nodes else ""
        reason = (
            f"killed: runner pid {props.get(rc.RUNNER_PID)} on {props.get(rc.RUNNER_HOST)} "
            f"stopped without recording an end{where}"
        )
        end_executions(store, layout, pipeline, stuck, pb.Execution.CANCELED, reason, result)
        ctx.custom_properties[rc.STATE].string_value = rc.RunState.KILLED
        ctx.custom_properties[rc.REASON].string_value = reason[:500]
        ctx.custom_properties[rc.END_MS].string_value = str(props.get(rc.HEARTBEAT_MS) or "0")
        if not dry_run:
            store.put_contexts([ctx])
        result.killed_runs.append(ctx.name)
    return result


def remove_leftover_files(
    layout: RootLayout, pipeline: str, keep: Path | None = None, dry_run: bool = False
) -> Cleanup:
    """Temporary directories of earlier runs of `pipeline`."""
    from beamline.runner.run_tmp import remove_empty_tmp_dirs, stale_tmp_dirs

    result = Cleanup(dry_run=dry_run)
    for path in stale_tmp_dirs(layout, pipeline):
        if path != keep:
            _remove(path, result)
    if not dry_run:
        remove_empty_tmp_dirs(layout, pipeline)
    return result
