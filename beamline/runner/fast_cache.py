"""Unchanged re-runs without importing TensorFlow: replay the previous run's cache hits in MLMD.

TFX decides caching per node, but only after the run has imported TensorFlow, TFX and Beam
(about 25 s of CPU here) and compiled the pipeline. When *nothing a run depends on* has changed
since a successful run in the same store (the data files' names, sizes and modification times,
as TFX's ExampleGen fingerprints them; the schema; every source file of the pipeline
definitions, module files and custom components; the framework files that build the pipeline;
the lock file; the run settings), every node
would come from TFX's cache. Beamline then records exactly what TFX would: a new `pipeline_run`
context and, per node, an execution in state CACHED (Resolvers: COMPLETE) with the same
properties, the same contexts (pipeline, node, execution cache) and input/output events to the
same artifacts as the earlier run's executions.

Anything unexpected (no matching run, an artifact gone from disk, any MLMD error) falls back to
the full TFX path, and `--no-fast-cache` always takes it.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from beamline.data.files import DataInput
from beamline.metadata import run_context as rc
from beamline.runner.scheduler import CACHED, RESOLVED

FINGERPRINT_KEY = rc.FINGERPRINT
PIPELINE_KEY = rc.PIPELINE
STATUS_KEY = rc.STATUS
SUCCEEDED = rc.SUCCEEDED
# What shapes the compiled pipeline besides the project's own sources (pipeline definitions,
# module files, custom components, schemas: `project_sources`): the framework files that turn
# settings into a pipeline (not the CLI, server or reports), relative to FRAMEWORK_ROOT.
FRAMEWORK_FILES = (
    "beamline/__init__.py",
    "beamline/settings.py",
    "beamline/beam.py",
    "beamline/runner/tfx_nodes.py",
    "beamline/runner/local.py",
    "beamline/data/files.py",
    "beamline/data/spans.py",
    "beamline/runner/run_targets.py",
)
FRAMEWORK_ROOT = Path(__file__).resolve().parents[2]


def project_sources(project) -> tuple[Path, ...]:
    """The directories whose .py/.pbtxt files shape a project's pipelines: its own, and the
    installed beamline_components (the shared classifier DAG, custom components)."""
    from beamline.project import BUNDLED_COMPONENTS, package_dir

    dirs = [project.pipelines_dir, project.components_dir, project.schemas_dir]
    installed = package_dir(BUNDLED_COMPONENTS)
    if installed is not None and installed not in dirs:
        dirs.append(installed)
    return tuple(dirs)


def is_resolver_type(type_name: str) -> bool:
    """Resolver nodes (TFX system nodes) pick artifacts; they never hit or miss the cache."""
    return type_name.endswith(".Resolver")


def source_files(dirs: Iterable[Path]) -> list[Path]:
    """The .py and .pbtxt files under `dirs`: the project sources a run's code is."""
    files = []
    for d in dirs:
        files += [p for p in d.rglob("*") if p.is_file() and p.suffix in (".py", ".pbtxt")]
    return sorted(files)


def fingerprint(
    pipeline: str,
    data: DataInput,
    source_dirs: Iterable[Path],
    settings: dict[str, object],
    framework_root: Path = FRAMEWORK_ROOT,
    lock: Path | None = None,
) -> str:
    """A digest of everything an unchanged re-run must share with the run it replays."""
    h = hashlib.sha256()

    def add(label: str, value: bytes | str) -> None:
        raw = value.encode() if isinstance(value, str) else value
        h.update(f"{label}:{len(raw)}:".encode())
        h.update(raw)

    add("pipeline", pipeline)
    add("data_root", str(data.root))
    add("data_pattern", data.pattern)
    add("data_span", f"{data.span}:{data.extra_spans}")
    for f in data.files:
        st = f.stat()
        # Relative paths: span-1/x.csv and span-2/x.csv are different data.
        add("data_file", f"{f.relative_to(data.root)}:{st.st_size}:{st.st_mtime_ns}")
    for key in sorted(settings):
        add(f"setting:{key}", repr(settings[key]))
    for d in source_dirs:
        for f in source_files([d]):
            add(f"source:{d.name}/{f.relative_to(d)}", f.read_bytes())
    for name in FRAMEWORK_FILES:
        f = framework_root / name
        add(f"framework:{name}", f.read_bytes() if f.is_file() else b"")
    if lock is not None and lock.is_file():
        add("lock", lock.read_bytes())
    add("version", _installed_version())
    for key in ("TF_USE_LEGACY_KERAS",):
        add(f"env:{key}", os.environ.get(key, ""))
    return h.hexdigest()


def _installed_version() -> str:
    """The installed beamline-tfx (and so its locked stack) version: an upgrade is a change."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("beamline-tfx")
    except PackageNotFoundError:
        return ""


@dataclass
class ReplayedRun:
    run_id: str
    node_states: dict[str, str]


def _matching_run(store, pipeline: str, digest: str):
    candidates = [
        c
        for c in store.get_contexts_by_type(rc.RUN_CONTEXT)
        if c.custom_properties.get(FINGERPRINT_KEY)
        and c.custom_properties[FINGERPRINT_KEY].string_value == digest
        and c.custom_properties[PIPELINE_KEY].string_value == pipeline
        and c.custom_properties[STATUS_KEY].string_value == SUCCEEDED
    ]
    return max(candidates, key=lambda c: c.id) if candidates else None


def _artifacts_present(store, executions) -> bool:
    events = store.get_events_by_execution_ids([e.id for e in executions])
    ids = sorted({e.artifact_id for e in events})
    for artifact in store.get_artifacts_by_id(ids):
        if artifact.uri and not Path(artifact.uri).exists():
            return False
    return True


def _stamp(ctx, pipeline: str, digest: str, status: str, state: str, nodes: int,
           reason: str) -> None:
    ctx.custom_properties[FINGERPRINT_KEY].string_value = digest
    ctx.custom_properties[PIPELINE_KEY].string_value = pipeline
    ctx.custom_properties[STATUS_KEY].string_value = status
    # Read by `beamline runs` / `report` (beamline/lineage/runs.py).
    ctx.custom_properties[rc.STATE].string_value = state
    ctx.custom_properties[rc.NODES_TOTAL].int_value = nodes
    # A string: MLMD's MySQL schema stores int_value as a 32-bit INT, too small for epoch ms.
    ctx.custom_properties[rc.END_MS].string_value = str(int(time.time() * 1000))
    ctx.custom_properties[rc.REASON].string_value = reason[:500]


def mark_run(
    store, run_id: str, pipeline: str, digest: str, *, state: str, nodes: int, reason: str = ""
) -> None:
    """Stamps a finished run's context: fingerprint, state (complete|failed|stopped), reason."""
    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    if ctx is None:
        return
    status = SUCCEEDED if state == rc.RunState.COMPLETE else state
    _stamp(ctx, pipeline, digest, status, state, nodes, reason)
    store.put_contexts([ctx])


def replay(store, pipeline: str, digest: str, run_id: str) -> ReplayedRun | None:
    """Records run `run_id` as a full cache hit of the latest matching run, or returns None."""
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb

    previous = _matching_run(store, pipeline, digest)
    if previous is None:
        return None
    executions = store.get_executions_by_context(previous.id)
    if not executions or not _artifacts_present(store, executions):
        return None

    # The run's context exists already: creating it is how the run claimed its id.
    run_ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    if run_ctx is None:
        run_ctx = mlmd_pb.Context(type_id=previous.type_id, name=run_id)
    _stamp(run_ctx, pipeline, digest, SUCCEEDED, rc.RunState.COMPLETE, len(executions),
           "unchanged: replayed from the cache")
    [run_ctx_id] = store.put_contexts([run_ctx])
    run_ctx.id = run_ctx_id
    linked = {p.id for p in store.get_parent_contexts_by_context(run_ctx_id)}
    parents = [p for p in store.get_parent_contexts_by_context(previous.id) if p.id not in linked]
    if parents:
        store.put_parent_contexts(
            [mlmd_pb.ParentContext(child_id=run_ctx_id, parent_id=p.id) for p in parents]
        )

    types = {t.id: t.name for t in store.get_execution_types()}
    events_by_execution: dict[int, list] = {}
    for event in store.get_events_by_execution_ids([e.id for e in executions]):
        events_by_execution.setdefault(event.execution_id, []).append(event)

    states = {}
    for old in sorted(executions, key=lambda e: e.id):
        contexts = [c for c in store.get_contexts_by_execution(old.id) if c.id != previous.id]
        node_ctx = next((c for c in contexts if c.type == rc.NODE_CONTEXT), None)
        node_id = node_ctx.name.split(".", 1)[1] if node_ctx else str(old.id)
        is_resolver = is_resolver_type(types.get(old.type_id, ""))
        new = mlmd_pb.Execution(type_id=old.type_id, name=str(uuid.uuid4()))
        new.last_known_state = (
            mlmd_pb.Execution.COMPLETE if is_resolver else mlmd_pb.Execution.CACHED
        )
        for key, value in old.properties.items():
            new.properties[key].CopyFrom(value)
        for key, value in old.custom_properties.items():
            new.custom_properties[key].CopyFrom(value)
        old_events = events_by_execution.get(old.id, [])
        artifacts = {
            a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in old_events])
        }
        pairs = []
        for event in old_events:
            copy = mlmd_pb.Event(type=event.type)
            copy.path.CopyFrom(event.path)
            pairs.append((artifacts[event.artifact_id], copy))
        store.put_execution(new, pairs, contexts + [run_ctx], force_reuse_context=True)
        states[node_id] = RESOLVED if is_resolver else CACHED
    return ReplayedRun(run_id, states)
