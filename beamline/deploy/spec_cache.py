"""The cache of `beamline run --spec`: KFP's cache key, and reuse of an earlier spec run's outputs.

KFP's driver (kubeflow/pipelines backend/src/v2/driver/cache.go, `getFingerPrint`, and
backend/src/v2/cacheutils/cache.go, `GenerateCacheKey`/`GenerateFingerPrint`) keys a container
task on its ExecutorInput once inputs are resolved: the input artifacts' names (their identity,
the MLMD id there, not their content), the input parameter values, each output artifact's name,
type and metadata (its URI wiped), each output parameter's type, and the container's image and
`command + args` as the spec writes them (placeholders unfilled); the fingerprint is the SHA-256
of that key as compact JSON. A task's `cachingOptions.cacheKey`, when set, replaces all of it:
the hash of the component's name and that key. The driver looks the fingerprint up among the
pipeline's earlier *successful, executed* tasks (the newest wins) only when the task's
`cachingOptions.enableCache` is on; a hit skips the launcher: the execution is published CACHED
with the earlier one's output artifacts and parameters, and it records `cache_fingerprint` and
`cached_execution_id` on the execution.

Here the same key, with two differences a local run needs, both written into the key:
- the image is this checkout (`run --spec` runs its code, not the image's), so the digest of the
  project's sources, the lock file and the installed Beamline version stands beside the image
  name: editing a module file misses the cache as a new image tag would on a cluster;
- output artifacts are named by their output key, as KFP's driver names them (Beamline's runtime
  names carry the run id, which would make every key new).
The entries are the root's MLMD store (`beamline.deploy.spec_record`: COMPLETE container
executions with a `cache_fingerprint`, in the pipeline's `system.Pipeline` context) and the
task directories their runs left (`executor_input.json`, `output_metadata.json`), which give
the outputs exactly as the executor reported them. Unlike KFP, an entry whose output directory
is gone (a removed run root part) is a miss, not a hit that hands on missing files.

Vertex documents its key as the same parts plus the container's environment variables
(cloud.google.com/vertex-ai/docs/pipelines/configure-caching), so `--as vertex` adds them; it
runs a container's `preCacheCheck` hook before this check; the parameters and output
metadata it reports (TFX's ExampleGen driver: span, version, `input_fingerprint` of the files)
are merged into the ExecutorInput the key is computed from (`with_hook_output`), so new files
change the key. A task that reads files (`input_base`, `input_config`) whose key saw no such
hook is never served from the cache, whatever its caching options say.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamline.deploy.spec_rules import FILE_INPUT_PARAMETERS

FINGERPRINT = "cache_fingerprint"  # KFP's names for the execution's custom properties
CACHED_EXECUTION_ID = "cached_execution_id"
EXECUTOR_INPUT = "executor_input.json"  # what run_spec writes in each executed task's directory
OUTPUT_METADATA = "output_metadata.json"


def enabled(task: Mapping[str, Any]) -> bool:
    return bool(task.get("cachingOptions", {}).get("enableCache", False))


def reads_files(payload: Mapping[str, Any]) -> bool:
    return FILE_INPUT_PARAMETERS <= set(payload["inputs"].get("parameterValues", {}))


def with_hook_output(payload: Mapping[str, Any], hook_output: Mapping[str, Any]) -> dict:
    """The ExecutorInput as Vertex keys it after the `preCacheCheck` hook: the parameters and the
    output artifacts' metadata the hook reported, over the driver's."""
    merged = json.loads(json.dumps(payload))
    merged["inputs"].setdefault("parameterValues", {}).update(
        hook_output.get("parameterValues", {})
    )
    for key, value in hook_output.get("artifacts", {}).items():
        reported = (value.get("artifacts") or [{}])[0].get("metadata", {})
        given = merged["outputs"]["artifacts"].get(key, {}).get("artifacts", [])
        if given and reported:
            given[0]["metadata"] = {**given[0].get("metadata", {}), **reported}
    return merged


def cache_key(
    task: Mapping[str, Any], component: Mapping[str, Any], container: Mapping[str, Any],
    payload: Mapping[str, Any], code_digest: str, *, with_env: bool = False,
) -> dict[str, Any]:
    """KFP's CacheKey of a container task (field names as KFP's JSON writes them); `with_env`
    adds the container's environment variables, which Vertex's key holds and KFP's does not."""
    custom = task.get("cachingOptions", {}).get("cacheKey", "")
    if custom:
        return {"componentName": task.get("componentRef", {}).get("name", ""), "cacheKey": custom}
    inputs, outputs = payload["inputs"], payload["outputs"]
    declared = component.get("outputDefinitions", {}).get("parameters", {})
    return {
        "inputArtifactNames": {
            key: {"artifactNames": [a.get("name", "") for a in value.get("artifacts", [])]}
            for key, value in inputs.get("artifacts", {}).items()
        },
        "inputParameterValues": dict(inputs.get("parameterValues", {})),
        "outputArtifactsSpec": {
            key: {"name": key, "type": value["artifacts"][0].get("type", {}),
                  "metadata": value["artifacts"][0].get("metadata", {})}
            for key, value in outputs.get("artifacts", {}).items() if value.get("artifacts")
        },
        "outputParametersSpec": {
            key: declared.get(key, {}).get("parameterType") or declared.get(key, {}).get("type", "")
            for key in outputs.get("parameters", {})
        },
        "containerSpec": {
            "image": container.get("image", ""),
            "cmdArgs": [*container.get("command", []), *container.get("args", [])],
            "localCode": code_digest,
            **({"env": list(container.get("env", []))} if with_env else {}),
        },
    }


def fingerprint(key: Mapping[str, Any]) -> str:
    if "cacheKey" in key and "containerSpec" not in key:
        # KFP: sha256(component name, NUL, custom key), so two components never share one.
        return hashlib.sha256(f"{key['componentName']}\0{key['cacheKey']}".encode()).hexdigest()
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def code_digest(source_dirs: Iterable[Path], lock: Path | None, version: str) -> str:
    """What stands in for the image here: the project's sources, the lock, Beamline's version."""
    from beamline.runner.fast_cache import source_files

    h = hashlib.sha256()
    for d in source_dirs:
        for f in source_files([d]):
            raw = f.read_bytes()
            h.update(f"{d.name}/{f.relative_to(d)}:{len(raw)}:".encode() + raw)
    if lock is not None and lock.is_file():
        h.update(b"lock:" + lock.read_bytes())
    h.update(f"version:{version}".encode())
    return h.hexdigest()


def project_code_digest(current) -> str:
    from beamline import __version__
    from beamline.runner.fast_cache import project_sources

    return code_digest(project_sources(current), current.root / "requirements.lock", __version__)


@dataclass(frozen=True)
class Entry:
    """An earlier task execution whose outputs a task with the same fingerprint may reuse."""

    execution_id: int
    run_id: str
    task: str


@dataclass
class Hit:
    entry: Entry
    artifacts: dict[str, dict[str, Any]]
    parameters: dict[str, Any]


class Index:
    """Fingerprint -> the newest successful execution with it, for one pipeline's spec runs."""

    def __init__(self, entries: Mapping[str, Entry] | None = None) -> None:
        self.entries: dict[str, Entry] = dict(entries or {})

    @classmethod
    def load(cls, store, pipeline: str) -> Index:
        """The entries the root's store holds (COMPLETE, not CACHED: a hit points at the
        execution that ran, as KFP's cache table only gets executed tasks)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        from beamline.deploy.spec_record import CONTAINER, PIPELINE

        context = store.get_context_by_type_and_name(PIPELINE, pipeline)
        if context is None:
            return cls()
        runs = {}
        for run in store.get_children_contexts_by_context(context.id):
            for execution in store.get_executions_by_context(run.id):
                runs[execution.id] = run.name
        type_ids = {t.id for t in store.get_execution_types() if t.name == CONTAINER}
        found: dict[str, Entry] = {}
        for execution in sorted(store.get_executions_by_context(context.id), key=lambda e: e.id):
            props = execution.custom_properties
            if (execution.type_id not in type_ids or FINGERPRINT not in props
                    or execution.last_known_state != pb.Execution.COMPLETE
                    or execution.id not in runs):
                continue
            found[props[FINGERPRINT].string_value] = Entry(
                execution.id, runs[execution.id], props["task_name"].string_value
            )
        return cls(found)

    def add(self, key: str, entry: Entry) -> None:
        self.entries[key] = entry

    def hit(self, key: str, pipeline_root: str, read_output) -> Hit | None:
        """The entry's outputs as its executor reported them, or None (no entry, or its task
        directory or an output of it is gone)."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        task_dir = Path(pipeline_root, entry.task, entry.run_id)
        given = task_dir / EXECUTOR_INPUT
        if not given.is_file():
            return None
        payload = json.loads(given.read_text(encoding="utf-8"))
        artifacts, parameters = read_output(payload, str(task_dir / OUTPUT_METADATA))
        for artifact in artifacts.values():
            uri = artifact.get("uri", "")
            if "://" not in uri and not Path(uri).exists():
                return None
        return Hit(entry, artifacts, parameters)
