"""A pipeline's data versions as its runs recorded them, and which run a checkout restores.

Read from MLMD: each `pipeline_run` context of the pipeline names its data and code versions
(run_context.DATA_VERSION / CODE_VERSION); a run's PushedModel outputs name the versions it
pushed; the label history says which labels each version holds.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from beamline.errors import BeamlineError, ConfigError
from beamline.metadata import labels as history
from beamline.metadata import run_context as rc


@dataclass
class RunVersions:
    """What one run recorded: its versions and the model versions it pushed."""

    run_id: str
    time_ms: int
    data_key: str
    code_key: str
    pushed: list[int] = field(default_factory=list)


@dataclass
class DataVersion:
    """One data version and the runs that read it, oldest first."""

    key: str
    runs: list[RunVersions]

    @property
    def first(self) -> RunVersions:
        return self.runs[0]

    @property
    def last(self) -> RunVersions:
        return self.runs[-1]

    @property
    def models(self) -> list[int]:
        return sorted({v for run in self.runs for v in run.pushed})


def run_contexts(store) -> list:
    """Every `pipeline_run` context, oldest first."""
    from ml_metadata import errors as mlmd_errors

    try:
        contexts = store.get_contexts_by_type(rc.RUN_CONTEXT)
    except mlmd_errors.NotFoundError:
        return []
    return sorted(contexts, key=lambda c: (c.create_time_since_epoch, c.id))


def runs_of(store, pipeline: str, kept_only: bool = True) -> list[RunVersions]:
    """The pipeline's runs that recorded a data version, oldest first (`kept_only=False`: every
    run, those that kept none with empty keys)."""
    runs = []
    for ctx in run_contexts(store):
        props = rc.properties_of(ctx)
        if props.get(rc.PIPELINE) != pipeline or (kept_only and not props.get(rc.DATA_VERSION)):
            continue
        runs.append(RunVersions(
            ctx.name, ctx.create_time_since_epoch, str(props.get(rc.DATA_VERSION) or ""),
            str(props.get(rc.CODE_VERSION) or ""), _pushed_by(store, ctx.id),
        ))
    return runs


def _outputs_of(store, context_id: int) -> list:
    """The artifacts the executions of run context `context_id` output."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    executions = store.get_executions_by_context(context_id)
    if not executions:
        return []
    ids = sorted({
        e.artifact_id for e in store.get_events_by_execution_ids([x.id for x in executions])
        if e.type == pb.Event.OUTPUT
    })
    return store.get_artifacts_by_id(ids) if ids else []


def _pushed_by(store, context_id: int) -> list[int]:
    """The model versions the run's Pusher pushed (a replayed run names its original's)."""
    types = {t.id: t.name for t in store.get_artifact_types()}
    versions = []
    for artifact in _outputs_of(store, context_id):
        if types.get(artifact.type_id) != rc.PUSHED_MODEL_TYPE:
            continue
        push = rc.push_from(rc.properties_of(artifact))
        if push is not None and push[0].isdigit():
            versions.append(int(push[0]))
    return sorted(versions)


def pushed_by_runs(
    store, pipeline: str | None = None, version: int | None = None
) -> dict[tuple[str, int], list]:
    """(pipeline, model version) -> the `pipeline_run` contexts whose executions pushed it,
    oldest first (a replayed run names its original's push too): from the PushedModel
    artifacts, so a handful of queries however many runs the store holds."""
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.proto import metadata_store_pb2 as pb

    try:
        artifacts = store.get_artifacts_by_type(rc.PUSHED_MODEL_TYPE)
    except mlmd_errors.NotFoundError:
        return {}
    version_of = {}
    for artifact in artifacts:
        push = rc.push_from(rc.properties_of(artifact))
        if push is not None and push[0].isdigit() and version in (None, int(push[0])):
            version_of[artifact.id] = int(push[0])
    found: dict[tuple[str, int], dict[int, object]] = {}
    events = store.get_events_by_artifact_ids(list(version_of)) if version_of else []
    for event in events:
        if event.type != pb.Event.OUTPUT:
            continue
        for ctx in store.get_contexts_by_execution(event.execution_id):
            name = rc.properties_of(ctx).get(rc.PIPELINE)
            if ctx.type != rc.RUN_CONTEXT or pipeline not in (None, name):
                continue
            found.setdefault((str(name), version_of[event.artifact_id]), {})[ctx.id] = ctx
    return {
        key: sorted(runs.values(), key=lambda c: (c.create_time_since_epoch, c.id))
        for key, runs in found.items()
    }


def for_model(store, pipeline: str, version: int) -> RunVersions | None:
    """The versions a checkout of model `version` restores: those of the first run that pushed
    it and kept a data version (None: no such run)."""
    for ctx in pushed_by_runs(store, pipeline, version).get((pipeline, version), []):
        props = rc.properties_of(ctx)
        if props.get(rc.DATA_VERSION):
            return RunVersions(ctx.name, ctx.create_time_since_epoch,
                               str(props[rc.DATA_VERSION]),
                               str(props.get(rc.CODE_VERSION) or ""), [version])
    return None


def checkout_command(
    version: int | str, pipeline: str, root: Path | None = None, metadata: str | None = None,
    to: str = "DIR",
) -> str:
    """The `beamline data checkout` line that restores model `version`'s data and code."""
    return _command(["--model", str(version), "--pipeline", pipeline, "--to", to, "--code"],
                    root, metadata)


def run_checkout_command(
    run_id: str, root: Path | None = None, metadata: str | None = None, to: str = "DIR",
) -> str:
    """The `beamline data checkout` line that restores the data run `run_id` read."""
    return _command(["--run", run_id, "--to", to], root, metadata)


def _command(args: list[str], root: Path | None, metadata: str | None) -> str:
    args = ["beamline", "data", "checkout", *args]
    if root is not None:
        args += ["--root", str(root)]
    if metadata:
        args += ["--metadata", metadata]
    return shlex.join(args)


def restore_info(
    store, pipeline: str, version: int, objects=None, root: Path | None = None,
    metadata: str | None = None,
) -> dict:
    """What `lineage VERSION` and the UI's model page say of model `version`'s data and code:
    the run a checkout restores, its versions' keys, whether they are still in the store
    `objects` (an ObjectStore; None: not checked), and the checkout command."""
    run = for_model(store, pipeline, version)
    info: dict = {"pipeline": pipeline, "model_version": version, "run_id": None,
                  "data_version": None, "code_version": None, "in_store": None, "checkout": None}
    if run is None:
        info["why_none"] = (
            "no run that kept a data version pushed it (it ran with --no-versions, or before "
            "Beamline kept data versions)"
        )
        return info
    info.update(run_id=run.run_id, data_version=run.data_key, code_version=run.code_key or None,
                checkout=checkout_command(version, pipeline, root, metadata))
    if objects is not None:
        try:
            info["in_store"] = all(objects.has(k) for k in (run.data_key, run.code_key) if k)
        except ConfigError as forged:  # a key that is no key: said, never followed
            info.update(in_store=False, problem=str(forged))
        if info["in_store"]:
            info["remote"] = remote_inputs(objects, run.data_key)
    return info


def remote_inputs(objects, data_key: str) -> list[dict]:
    """The remote inputs of a data version (not kept): each URI and what identifies it."""
    from beamline.versions import manifest as mf

    try:
        manifest = mf.load(objects, data_key, mf.DATA_KIND)
    except BeamlineError:  # a damaged manifest: `data verify` and `data log` name it
        return []
    return [{"uri": e.path, "identity": e.identity} for e in manifest.files if e.remote]


def statistics_uri(store, version: DataVersion) -> str | None:
    """Where the ExampleStatistics of the first of the version's runs that recorded one lie (a
    run through TFX's cache names the cached artifact): what a row count reads, a few small
    protos instead of the input files. None: no run of it ran StatisticsGen."""
    stats_types = {t.id for t in store.get_artifact_types() if t.name == rc.STATISTICS_TYPE}
    if not stats_types:
        return None
    for run in version.runs:
        ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run.run_id)
        for artifact in _outputs_of(store, ctx.id) if ctx is not None else []:
            if artifact.type_id in stats_types and artifact.uri:
                return artifact.uri
    return None


def data_versions(runs: list[RunVersions]) -> list[DataVersion]:
    """The runs grouped by data version, in the order each version was first read."""
    by_key: dict[str, DataVersion] = {}
    for run in runs:
        by_key.setdefault(run.data_key, DataVersion(run.data_key, [])).runs.append(run)
    return list(by_key.values())


def labels_held(store, pipeline: str, at_ms: int | None = None) -> dict[int, list[str]]:
    """model version -> the labels it holds now (or held at `at_ms`)."""
    return history.labels_by_version(history.holders(history.history(store, pipeline), at_ms))


def run_for(
    store, pipeline: str | None, *, run_id: str | None = None, model: int | None = None,
    label: str | None = None, at_ms: int | None = None,
) -> RunVersions:
    """The run whose versions a checkout restores: the run itself, or the first run that pushed
    the model version (or the version holding the label)."""
    if run_id is not None:
        ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
        props = rc.properties_of(ctx) if ctx is not None else {}
        if ctx is None or not props.get(rc.DATA_VERSION):
            raise ConfigError(
                f"Run {run_id!r} " + ("is not in this store" if ctx is None else
                                      "kept no data version (it ran with keep_versions off, "
                                      "or before Beamline kept versions)")
                + ". `beamline data log PIPELINE` lists the runs that kept one; check --root "
                "and --metadata."
            )
        return RunVersions(ctx.name, ctx.create_time_since_epoch, str(props[rc.DATA_VERSION]),
                           str(props.get(rc.CODE_VERSION) or ""))
    if pipeline is None:
        raise ConfigError(
            "--model and --label name a model version of one pipeline: pass --pipeline NAME "
            "(`beamline pipelines` lists them)."
        )
    if label is not None:
        held = history.holders(history.history(store, pipeline), at_ms)
        if label not in held:
            raise ConfigError(
                f"No version of {pipeline!r} held label {label!r}"
                + (" at that time" if at_ms is not None else "")
                + ". `beamline labels PIPELINE` shows which version holds each label."
            )
        model = held[label]
    run = for_model(store, pipeline, model)
    if run is not None:
        return run
    raise ConfigError(
        f"No run of {pipeline!r} that kept a data version pushed model version {model}. "
        "`beamline data log PIPELINE` lists the versions each data version trained; a version "
        "pushed before Beamline kept data versions has none."
    )
