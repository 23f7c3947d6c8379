"""`beamline run --spec FILE --as kubeflow|vertex`: a compiled KFP v2 spec run on this machine.

What a cluster's driver and launcher do for each task, done here in dependency order, one task
at a time: build the task's ExecutorInput (`beamline.deploy.spec_inputs`), run the container's
`command + args` as a subprocess of this venv's Python (no Docker: the code is this checkout's,
not the image's), read back the ExecutorOutput the executor wrote, and hand its artifacts to
later tasks. Before anything runs the spec is checked against the target's rules
(`beamline.deploy.spec_rules`), so a spec the target would refuse is refused here too.

As `kubeflow`: lifecycle hooks are ignored (KFP never runs them), importers create an artifact
at their URI. As `vertex`: a container's `preCacheCheck` hook (TFX's ExampleGen driver) runs
first with the same ExecutorInput; it writes the output file, whose parameters TFX's
`kubeflow_v2_run_executor` merges into the executor's. Vertex's `resolver` tasks query what
earlier spec runs under the same root recorded (`beamline.deploy.spec_resolver`) instead of
Vertex ML Metadata.

The run is recorded in the root's MLMD store in KFP's v2 layout (`beamline.deploy.spec_record`),
so `beamline runs` lists it. Not like a cluster: no cache (every task runs), one task at a time,
secrets come from this process's environment, and every task runs in this checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from beamline.deploy import spec_inputs, spec_record, spec_resolver, spec_rules
from beamline.errors import ConfigError, PipelineFailed
from beamline.settings import apply_tf_environment

TARGETS = ("kubeflow", "vertex")
LOG_TAIL_LINES = 30


@dataclass
class SpecRun:
    pipeline: str
    target: str
    run_id: str
    log_path: Path
    seconds: dict[str, float] = field(default_factory=dict)  # task -> wall seconds
    record: spec_inputs.Record = field(
        default_factory=lambda: spec_inputs.Record(artifacts={}, parameters={})
    )
    recorder: spec_record.Recorder | None = None

    def summary(self) -> str:
        lines = [f"Ran {self.pipeline} from its {self.target} spec (run {self.run_id}): "
                 f"{len(self.seconds)} tasks in {sum(self.seconds.values()):.0f} s; log "
                 f"{self.log_path}"]
        for task, seconds in self.seconds.items():
            uris = ", ".join(f"{k}={a.get('uri', '')}"
                             for k, a in sorted(self.record.artifacts.get(task, {}).items()))
            lines.append(f"  {task:<28} {seconds:6.1f} s  {uris}")
        return "\n".join(lines)


def refusals(spec: Mapping[str, Any], target: str) -> None:
    """A ConfigError naming the first task `target` (or this runner) cannot run."""
    if target not in TARGETS:
        raise ConfigError(f"Unknown --as {target!r}; choose kubeflow or vertex.")
    name = spec_inputs.pipeline_name(spec)
    violations = spec_rules.check(spec, target)
    if violations:
        first = violations[0]
        raise ConfigError(
            f"The spec of pipeline {name!r} cannot run as {target}: task {first.task!r}: "
            f"{first.message}. Compile it with `beamline compile --target {target}`."
        )
    for task_name, task in spec["root"].get("dag", {}).get("tasks", {}).items():
        component = spec["components"][task["componentRef"]["name"]]
        if "dag" in component:
            raise ConfigError(f"Task {task_name!r} of pipeline {name!r} is a sub-DAG, which "
                              "`beamline run --spec` does not run (TFX compiles none).")


def run_spec(
    spec_file: Path,
    target: str,
    root: Path,
    *,
    echo: Callable[[str], None] = print,
    python: str = sys.executable,
) -> SpecRun:
    """Runs every task of `spec_file` as `target` would, artifacts under `root`."""
    from beamline import project
    from beamline.deploy.compile import IMAGE_PROJECT_ROOT
    from beamline.settings import RootLayout

    spec, runtime_config = spec_inputs.load_job(spec_file)
    refusals(spec, target)
    name = spec_inputs.pipeline_name(spec)
    current = project.current()
    paths = spec_inputs.path_map(
        runtime_config, name, root, None if current.bundled else current.root, IMAGE_PROJECT_ROOT
    )
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    layout = RootLayout(root)
    layout.logs_dir.mkdir(parents=True, exist_ok=True)
    run = SpecRun(name, target, run_id, layout.log_path(name, f"spec-{run_id}"))
    parameters = spec_inputs.pipeline_parameters(spec, runtime_config)
    pipeline_root = str(layout.pipeline_root(name))
    from beamline.metadata.connection import open_store, sqlite_config

    store = open_store(sqlite_config(layout.metadata_path))
    run.recorder = spec_record.Recorder(store, name, run_id, pipeline_root)
    failed = True
    try:
        for task_name in spec_inputs.task_order(spec):
            place = spec_inputs.TaskPlace(pipeline_root, task_name, run_id)
            started = time.monotonic()
            echo(f"{task_name}: running")
            payload = spec_inputs.executor_input(
                spec, task_name, place, run.record, parameters, paths
            )
            _run_task(spec, task_name, target, payload, place, run, python, current.root)
            run.seconds[task_name] = time.monotonic() - started
        failed = False
    finally:
        run.recorder.close(failed)
    return run


def _run_task(
    spec: Mapping[str, Any], task_name: str, target: str, payload: dict[str, Any],
    place: spec_inputs.TaskPlace, run: SpecRun, python: str, cwd: Path,
) -> None:
    task = spec["root"]["dag"]["tasks"][task_name]
    label = spec["components"][task["componentRef"]["name"]].get("executorLabel", "")
    executor = spec["deploymentSpec"]["executors"][label]
    if "resolver" in executor:
        found = spec_resolver.recorded(Path(place.pipeline_root), place.run_id)
        queries = executor["resolver"].get("outputArtifactQueries", {})
        run.record.artifacts[task_name] = spec_resolver.resolve(
            task_name, queries, payload["inputs"]["artifacts"], found
        )
        run.record.resolved.add(task_name)
        return
    # Each output's directory exists before the executor starts, as under TFX's own launchers
    # (and as on object storage, where a prefix needs no creating).
    for value in payload["outputs"]["artifacts"].values():
        Path(value["artifacts"][0]["uri"]).mkdir(parents=True, exist_ok=True)
    Path(place.task_dir).mkdir(parents=True, exist_ok=True)
    # Written for whoever debugs the task: exactly what its executor was given.
    Path(place.task_dir, "executor_input.json").write_text(json.dumps(payload, indent=2))
    inputs = payload["inputs"]["artifacts"]
    if "importer" in executor:
        execution = run.recorder.start(task_name, "importer", inputs)
        run.record.artifacts[task_name] = _imported(executor["importer"], payload, task_name)
        run.recorder.finish(execution, run.record.artifacts[task_name])
        return
    container = executor["container"]
    text = json.dumps(payload)
    hook = container.get("lifecycle", {}).get("preCacheCheck")
    # TF's settings as the image's Dockerfile sets them (tf-keras), then the container's own env
    # (e.g. where its secrets come from), over this process's.
    env = apply_tf_environment(dict(os.environ))
    env.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
    execution = run.recorder.start(task_name, "container", inputs)
    try:
        if target == "vertex" and hook:
            _subprocess(spec_inputs.command_line(hook, text, python), f"{task_name} (driver)",
                        run.log_path, cwd, env)
        _subprocess(spec_inputs.command_line(container, text, python), task_name, run.log_path,
                    cwd, env)
    except BaseException:
        run.recorder.finish(execution, None)
        raise
    artifacts, parameters = read_output(payload, place.output_file)
    run.recorder.finish(execution, artifacts)
    run.record.artifacts[task_name] = artifacts
    run.record.parameters[task_name] = parameters


def read_output(
    payload: Mapping[str, Any], output_file: str
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(output key -> artifact, output key -> parameter value) after the executor ran.

    As KFP's launcher: an output artifact the executor did not report keeps the URI it was
    given; a reported one brings its metadata (span, split names, blessed...)."""
    artifacts = {
        key: dict(value["artifacts"][0])
        for key, value in payload["outputs"]["artifacts"].items()
    }
    parameters: dict[str, Any] = {}
    path = Path(output_file)
    if not path.is_file():
        return artifacts, parameters
    output = json.loads(path.read_text(encoding="utf-8") or "{}")
    for key, value in output.get("artifacts", {}).items():
        reported = (value.get("artifacts") or [{}])[0]
        artifacts[key] = {**artifacts.get(key, {}), **reported}
    parameters.update(output.get("parameterValues", {}))
    return artifacts, parameters


def _imported(
    importer: Mapping[str, Any], payload: Mapping[str, Any], task_name: str
) -> dict[str, dict[str, Any]]:
    """An importer's one output: an artifact at its URI (a constant or an input parameter)."""
    source = importer.get("artifactUri", {})
    if "runtimeParameter" in source:
        uri = payload["inputs"]["parameterValues"].get(source["runtimeParameter"], "")
    else:
        uri = spec_inputs.constant(source)
    key = next(iter(payload["outputs"]["artifacts"]), "artifact")
    return {key: {
        "name": f"{task_name}/{key}",
        "type": importer.get("typeSchema", {}),
        "uri": uri,
        "metadata": dict(importer.get("metadata", {})),
    }}


def _subprocess(
    line: list[str], label: str, log_path: Path, cwd: Path, env: Mapping[str, str]
) -> None:
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"\n==== {label}\n")
        log.flush()
        result = subprocess.run(line, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env=dict(env), check=False)
    if result.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        raise PipelineFailed(
            f"Task {label} failed (exit code {result.returncode}); its log is {log_path}. "
            "Last lines:\n" + "\n".join(tail[-LOG_TAIL_LINES:])
        )
