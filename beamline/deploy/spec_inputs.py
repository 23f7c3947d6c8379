"""What `beamline run --spec` hands each task of a compiled KFP v2 spec: pure, no TFX or kfp.

KFP's driver (kubeflow/pipelines backend/src/v2/driver/driver.go) resolves a task's inputs
before its container starts and passes them as one ExecutorInput JSON in place of the `{{$}}`
placeholder; TFX's `kubeflow_v2_run_executor` parses it. This module builds the same JSON on
this machine: parameters from `runtimeValue` constants, pipeline parameters or upstream
outputs; input artifacts from what upstream tasks reported; output artifacts under
`<pipeline root>/<task>/<run id>/<output key>`; the output file beside them.

Both parameter forms are filled: TFX reads `parameters` (Value: stringValue/intValue/
doubleValue) for a spec of schema 2.0.0 without an inputs spec, `parameterValues` (JSON
values) otherwise.

Paths: a compiled spec names remote storage (`--pipeline-root gs://...`) and the image's
project directory (`/pipeline/...`); `PathMap` rewrites those prefixes in every string
parameter, so the same file runs here with the local run root and project.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline.errors import ConfigError

PLACEHOLDER = "{{$}}"
SERVING = "serving"


@dataclass(frozen=True)
class PathMap:
    """Prefix rewrites, longest first, applied to every string a task receives."""

    pairs: tuple[tuple[str, str], ...]

    def apply(self, text: str) -> str:
        for remote, local in self.pairs:
            text = text.replace(remote, local)
        return text


def load_job(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pipelineSpec, runtimeConfig) of a PipelineJob JSON (or of a bare PipelineSpec)."""
    import json

    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"--spec {path}: cannot read it as JSON ({exc}). Pass the file `beamline compile "
            "--out` wrote."
        ) from exc
    spec = job.get("pipelineSpec", job) if isinstance(job, dict) else None
    if not isinstance(spec, dict) or "root" not in spec or "deploymentSpec" not in spec:
        raise ConfigError(
            f"--spec {path} is not a KFP v2 PipelineJob or PipelineSpec (no root DAG or "
            "deploymentSpec). Pass the file `beamline compile --out` wrote."
        )
    return spec, job.get("runtimeConfig", {})


def pipeline_name(spec: Mapping[str, Any]) -> str:
    return spec.get("pipelineInfo", {}).get("name") or "pipeline"


def path_map(
    runtime_config: Mapping[str, Any], name: str, root: Path, project_root: Path | None,
    image_root: str,
) -> PathMap:
    """The compiled spec's storage root -> `root` (artifacts under pipelines/, pushes under
    serving/, as a local run lays them out); the image's project -> `project_root`."""
    output_dir = str(runtime_config.get("gcsOutputDirectory", "")).rstrip("/")
    pairs = []
    if output_dir.endswith(f"/{name}"):
        remote = output_dir[: -len(name)]  # keeps the trailing slash
        pairs += [(f"{remote}{SERVING}/", f"{root / SERVING}/"), (remote, f"{root / 'pipelines'}/")]
    elif output_dir:
        pairs.append((f"{output_dir}/", f"{root / 'pipelines' / name}/"))
    if project_root is not None:
        pairs.append((f"{image_root.rstrip('/')}/", f"{project_root}/"))
    return PathMap(tuple(pairs))


def task_order(spec: Mapping[str, Any]) -> list[str]:
    """The root DAG's tasks, each after every task it depends on (by name among equals)."""
    tasks = spec["root"].get("dag", {}).get("tasks", {})
    needs = {name: upstream_tasks(task) for name, task in tasks.items()}
    done: list[str] = []
    while len(done) < len(tasks):
        ready = sorted(n for n in tasks if n not in done and needs[n] <= set(done))
        if not ready:
            stuck = ", ".join(sorted(n for n in tasks if n not in done))
            raise ConfigError(f"The spec's tasks {stuck} wait on each other (a cycle).")
        done.append(ready[0])
    return done


def upstream_tasks(task: Mapping[str, Any]) -> set[str]:
    found = set(task.get("dependentTasks", []))
    for kind in ("parameters", "artifacts"):
        for source in task.get("inputs", {}).get(kind, {}).values():
            for key in ("taskOutputParameter", "taskOutputArtifact"):
                if key in source:
                    found.add(source[key].get("producerTask", ""))
    return found


@dataclass(frozen=True)
class TaskPlace:
    """Where a task writes in this run."""

    pipeline_root: str  # local, e.g. <root>/pipelines/penguin
    task: str
    run_id: str

    @property
    def task_dir(self) -> str:
        return f"{self.pipeline_root}/{self.task}/{self.run_id}"

    @property
    def output_file(self) -> str:
        return f"{self.task_dir}/output_metadata.json"


@dataclass
class Record:
    """What finished tasks produced: task -> output key -> RuntimeArtifact dict / JSON value."""

    artifacts: dict[str, dict[str, dict[str, Any]]]
    parameters: dict[str, dict[str, Any]]
    resolved: set[str] = field(default_factory=set)  # resolver tasks that have run


def executor_input(
    spec: Mapping[str, Any],
    task_name: str,
    place: TaskPlace,
    record: Record,
    pipeline_parameters: Mapping[str, Any],
    paths: PathMap,
) -> dict[str, Any]:
    """The ExecutorInput (as JSON-ready dict) KFP's driver would give task `task_name`."""
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    declared = component.get("inputDefinitions", {})
    values: dict[str, Any] = {}
    for key, definition in declared.get("parameters", {}).items():
        if "defaultValue" in definition:
            values[key] = definition["defaultValue"]
    for key, source in task.get("inputs", {}).get("parameters", {}).items():
        values[key] = _parameter(task_name, key, source, record, pipeline_parameters)
    values = {k: paths.apply(v) if isinstance(v, str) else v for k, v in values.items()}
    artifacts = {
        key: {"artifacts": _input_artifacts(task_name, key, source, record, declared)}
        for key, source in task.get("inputs", {}).get("artifacts", {}).items()
    }
    outputs = component.get("outputDefinitions", {})
    return {
        "inputs": {
            "parameterValues": values,
            "parameters": {k: _legacy_value(v) for k, v in values.items()},
            "artifacts": artifacts,
        },
        "outputs": {
            "artifacts": {
                key: {"artifacts": [{
                    "name": f"{place.run_id}/{task_name}/{key}",
                    "type": definition.get("artifactType", {}),
                    "uri": f"{place.task_dir}/{key}",
                    "metadata": {},
                }]}
                for key, definition in outputs.get("artifacts", {}).items()
            },
            "parameters": {
                key: {"outputFile": f"{place.task_dir}/parameters/{key}"}
                for key in outputs.get("parameters", {})
            },
            "outputFile": place.output_file,
        },
    }


def constant(value: Mapping[str, Any]) -> Any:
    """A `runtimeValue`'s constant: the new form (`constant`: a JSON value) or the old one
    (`constantValue`: a Value with stringValue, intValue as a string, or doubleValue)."""
    if "constant" in value:
        return value["constant"]
    old = value.get("constantValue", {})
    if "intValue" in old:
        return int(old["intValue"])
    if "doubleValue" in old:
        return float(old["doubleValue"])
    return old.get("stringValue", "")


def _parameter(
    task: str, key: str, source: Mapping[str, Any], record: Record, pipeline_parameters: Mapping
) -> Any:
    if "runtimeValue" in source:
        return constant(source["runtimeValue"])
    if "componentInputParameter" in source:
        name = source["componentInputParameter"]
        if name not in pipeline_parameters:
            raise ConfigError(
                f"Task {task!r} reads pipeline parameter {name!r}, which has no value: the spec "
                "declares no default and the PipelineJob's runtimeConfig gives none."
            )
        return pipeline_parameters[name]
    if "taskOutputParameter" in source:
        producer = source["taskOutputParameter"]["producerTask"]
        out_key = source["taskOutputParameter"]["outputParameterKey"]
        produced = record.parameters.get(producer, {})
        if out_key not in produced:
            raise ConfigError(f"Task {task!r} reads parameter {out_key!r} of task {producer!r}, "
                              "which did not report it in its output metadata.")
        return produced[out_key]
    raise ConfigError(f"Task {task!r}: input parameter {key!r} has a source `beamline run "
                      f"--spec` does not resolve ({', '.join(source)}).")


def _input_artifacts(
    task: str, key: str, source: Mapping[str, Any], record: Record, declared: Mapping
) -> list[dict[str, Any]]:
    """The artifact an upstream task produced, or none when it ran and found none (a Vertex
    resolver with no match: Vertex passes an empty list too)."""
    if "taskOutputArtifact" not in source:
        raise ConfigError(f"Task {task!r}: input artifact {key!r} is not an upstream task's "
                          "output, which is all `beamline run --spec` resolves.")
    producer = source["taskOutputArtifact"]["producerTask"]
    out_key = source["taskOutputArtifact"]["outputArtifactKey"]
    produced = record.artifacts.get(producer, {}).get(out_key)
    if produced is None and producer in record.resolved:
        return []
    if produced is None:
        raise ConfigError(f"Task {task!r} reads artifact {out_key!r} of task {producer!r}, "
                          "which has not produced it.")
    artifact_type = declared.get("artifacts", {}).get(key, {}).get("artifactType", {})
    return [{**produced, "type": artifact_type}]


def _legacy_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"intValue": str(int(value))}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    import json

    return {"stringValue": json.dumps(value)}


def pipeline_parameters(spec: Mapping[str, Any], runtime_config: Mapping[str, Any]) -> dict:
    """Root input parameters: declared defaults, overridden by the job's runtimeConfig."""
    values = {
        key: definition["defaultValue"]
        for key, definition in spec["root"].get("inputDefinitions", {})
        .get("parameters", {}).items()
        if "defaultValue" in definition
    }
    values.update(runtime_config.get("parameterValues", {}))
    for key, old in runtime_config.get("parameters", {}).items():
        values[key] = constant({"constantValue": old})
    return values


def command_line(container: Mapping[str, Any], payload: str, python: str) -> list[str]:
    """The container's command + args with `{{$}}` filled in and `python` as this venv's."""
    line = [*container.get("command", []), *container.get("args", [])]
    line = [arg.replace(PLACEHOLDER, payload) for arg in line]
    others = [arg for arg in line if "{{$" in arg]
    if others:
        raise ConfigError(f"The container uses placeholder {others[0]!r}; `beamline run --spec` "
                          "fills only {{$}} (the whole ExecutorInput), which is all TFX uses.")
    if line and line[0] in ("python", "python3"):
        line[0] = python
    return line
