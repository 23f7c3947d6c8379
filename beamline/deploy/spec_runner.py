"""`beamline run --spec FILE --as kubeflow|vertex`: a compiled KFP v2 spec run on this machine.

What a cluster's driver and launcher do for each task, done here: build the task's ExecutorInput
(`beamline.deploy.spec_inputs`), run the container's `command + args` as a subprocess of this
venv's Python (no Docker: the code is this checkout's, not the image's), read back the
ExecutorOutput the executor wrote, and hand its artifacts to later tasks. A task starts as soon
as every task it reads from has finished, up to `--max-parallel` at once
(`beamline.deploy.spec_schedule`); the first failure starts nothing new. Before anything runs
the spec is checked against the target's rules (`beamline.deploy.spec_rules`), so a spec the
target would refuse is refused here too.

Caching as KFP's driver does it (`beamline.deploy.spec_cache`): a container task whose
`cachingOptions.enableCache` is on is keyed on its inputs, output specs and command; when an
earlier spec run of the pipeline under the same root executed a task with that key, its outputs
are reused, the execution is recorded CACHED with the key (`cache_fingerprint`) and the reused
execution (`cached_execution_id`), and the summary says which run's outputs it holds.

As `kubeflow`: lifecycle hooks are ignored (KFP never runs them), importers create an artifact
at their URI. As `vertex`: a container's `preCacheCheck` hook (TFX's ExampleGen driver) runs
first with the same ExecutorInput; it writes the output file, whose parameters TFX's
`kubeflow_v2_run_executor` merges into the executor's, and which feed the cache key (the files'
fingerprint) as Vertex's "before the cache check" says. Vertex's `resolver` tasks query what
earlier spec runs under the same root recorded (`beamline.deploy.spec_resolver`) instead of
Vertex ML Metadata.

The run is recorded in the root's MLMD store in KFP's v2 layout (`beamline.deploy.spec_record`),
so `beamline runs` lists it. Not like a cluster: the cache is this root's (the key's "image" is
this checkout's code, so an edited module file misses it), secrets come from this process's
environment, every task runs in this checkout, and each task writes its own log in its task
directory, copied whole into the run's log when it ends.
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

from beamline.deploy import (
    spec_cache,
    spec_inputs,
    spec_record,
    spec_resolver,
    spec_rules,
    spec_schedule,
)
from beamline.errors import ConfigError, PipelineFailed
from beamline.settings import DEFAULT_MAX_PARALLEL, apply_tf_environment

TARGETS = ("kubeflow", "vertex")
LOG_TAIL_LINES = 30


@dataclass
class SpecRun:
    pipeline: str
    target: str
    run_id: str
    log_path: Path
    max_parallel: int = DEFAULT_MAX_PARALLEL
    wall: float = 0.0  # the run's wall seconds (tasks overlap)
    seconds: dict[str, float] = field(default_factory=dict)  # task -> wall seconds, finish order
    cached: dict[str, str] = field(default_factory=dict)  # task -> run whose outputs it reused
    record: spec_inputs.Record = field(
        default_factory=lambda: spec_inputs.Record(artifacts={}, parameters={})
    )
    recorder: spec_record.Recorder | None = None

    def summary(self) -> str:
        lines = [f"Ran {self.pipeline} from its {self.target} spec (run {self.run_id}): "
                 f"{len(self.seconds)} tasks, {len(self.cached)} from the cache, in "
                 f"{self.wall:.0f} s (at most {self.max_parallel} at once); log {self.log_path}"]
        for task, seconds in self.seconds.items():
            uris = ", ".join(f"{k}={a.get('uri', '')}"
                             for k, a in sorted(self.record.artifacts.get(task, {}).items()))
            when = f"cached from {self.cached[task]}" if task in self.cached else f"{seconds:.1f} s"
            lines.append(f"  {task:<28} {when:>8}  {uris}")
        return "\n".join(lines)


@dataclass
class _Done:
    """What a task's work hands back to the scheduling thread."""

    seconds: float
    artifacts: dict[str, dict[str, Any]]
    parameters: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""  # set when the task's cache is on
    hit: spec_cache.Hit | None = None
    log: Path | None = None


def refusals(spec: Mapping[str, Any], target: str) -> None:
    """A ConfigError naming the first task `target` (or this runner) cannot run."""
    if target not in TARGETS:
        raise ConfigError(f"Unknown --as {target!r}; choose kubeflow or vertex.")
    name = spec_inputs.pipeline_name(spec)
    violations = spec_rules.check(spec, target)
    if violations:
        first, others = violations[0], violations[1:]
        # Every task at fault is named: a Vertex spec's first fault is its ExampleGen, and the
        # resolver tasks behind it are what a reader needs to hear about too.
        also = sorted({v.task for v in others} - {first.task})
        more = f" Also refused: {', '.join(also)}." if also else ""
        raise ConfigError(
            f"The spec of pipeline {name!r} cannot run as {target}: task {first.task!r}: "
            f"{first.message}.{more} Compile it with `beamline compile --target {target}`."
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
    max_parallel: int = DEFAULT_MAX_PARALLEL,
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
    run = SpecRun(name, target, run_id, layout.log_path(name, f"spec-{run_id}"), max_parallel)
    parameters = spec_inputs.pipeline_parameters(spec, runtime_config)
    pipeline_root = str(layout.pipeline_root(name))
    from beamline.metadata.connection import open_store, sqlite_config

    store = open_store(sqlite_config(layout.metadata_path))
    run.recorder = spec_record.Recorder(store, name, run_id, pipeline_root)
    tasks = spec["root"]["dag"]["tasks"]
    caching = any(spec_cache.enabled(t) for t in tasks.values())
    runner = _Tasks(spec, target, run, python, current.root, pipeline_root, paths, parameters,
                    spec_cache.Index.load(store, name) if caching else spec_cache.Index(),
                    spec_cache.project_code_digest(current) if caching else "", echo)
    started = time.monotonic()
    failed = True
    try:
        spec_schedule.run_dag(
            spec_inputs.task_order(spec),
            {n: spec_inputs.upstream_tasks(t) for n, t in tasks.items()},
            runner.prepare, runner.finish, runner.failed, max_parallel,
        )
        failed = False
    finally:
        run.wall = time.monotonic() - started
        run.recorder.close(failed)
    return run


@dataclass
class _Tasks:
    """One run's tasks: `prepare` and `finish` in the scheduling thread (MLMD, the record),
    the work (hook, cache check, executor) in a worker thread."""

    spec: Mapping[str, Any]
    target: str
    run: SpecRun
    python: str
    cwd: Path
    pipeline_root: str
    paths: spec_inputs.PathMap
    parameters: Mapping[str, Any]
    index: spec_cache.Index
    code_digest: str
    echo: Callable[[str], None]
    executions: dict[str, Any] = field(default_factory=dict)

    def prepare(self, task_name: str) -> Callable[[], _Done]:
        spec, run = self.spec, self.run
        place = spec_inputs.TaskPlace(self.pipeline_root, task_name, run.run_id)
        payload = spec_inputs.executor_input(
            spec, task_name, place, run.record, self.parameters, self.paths
        )
        task = spec["root"]["dag"]["tasks"][task_name]
        component = spec["components"][task["componentRef"]["name"]]
        executor = spec["deploymentSpec"]["executors"][component.get("executorLabel", "")]
        inputs = payload["inputs"]["artifacts"]
        self.echo(f"{task_name}: running")
        if "resolver" in executor:
            found = spec_resolver.recorded(Path(place.pipeline_root), place.run_id)
            queries = executor["resolver"].get("outputArtifactQueries", {})
            resolved = spec_resolver.resolve(task_name, queries, inputs, found)
            run.record.resolved.add(task_name)
            return lambda: _Done(0.0, resolved)
        if "importer" in executor:
            self.executions[task_name] = run.recorder.start(task_name, "importer", inputs)
            imported = _imported(executor["importer"], payload, task_name)
            return lambda: _Done(0.0, imported)
        self.executions[task_name] = run.recorder.start(task_name, "container", inputs)
        container = executor["container"]
        cached = spec_cache.enabled(task)

        def work() -> _Done:
            return self._container(task, component, container, payload, place, cached)

        return work

    def _container(
        self, task: Mapping[str, Any], component: Mapping[str, Any],
        container: Mapping[str, Any], payload: dict[str, Any], place: spec_inputs.TaskPlace,
        cached: bool,
    ) -> _Done:
        started = time.monotonic()
        label = place.task
        log = Path(place.task_dir, "executor.log")
        Path(place.task_dir).mkdir(parents=True, exist_ok=True)
        text = json.dumps(payload)
        hook = container.get("lifecycle", {}).get("preCacheCheck")
        # TF's settings as the image's Dockerfile sets them (tf-keras), then the container's own
        # env (e.g. where its secrets come from), over this process's.
        env = apply_tf_environment(dict(os.environ))
        env.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
        keyed = payload
        if self.target == "vertex" and hook:
            _subprocess(spec_inputs.command_line(hook, text, self.python), f"{label} (driver)",
                        log, self.cwd, env)
            keyed = spec_cache.with_hook_output(payload, _json_file(place.output_file))
        elif spec_cache.reads_files(payload):
            cached = False  # no driver fingerprinted the files: a key would not see new data
        fingerprint = ""
        if cached:
            fingerprint = spec_cache.fingerprint(spec_cache.cache_key(
                task, component, container, keyed, self.code_digest,
                with_env=self.target == "vertex"))
            hit = self.index.hit(fingerprint, self.pipeline_root, read_output)
            if hit is not None:
                return _Done(time.monotonic() - started, hit.artifacts, hit.parameters,
                             fingerprint, hit, log)
        # Each output's directory exists before the executor starts, as under TFX's own
        # launchers (and as on object storage, where a prefix needs no creating).
        for value in payload["outputs"]["artifacts"].values():
            Path(value["artifacts"][0]["uri"]).mkdir(parents=True, exist_ok=True)
        # Written for whoever debugs the task (exactly what its executor was given), and read by
        # later runs' resolvers and cache hits.
        Path(place.task_dir, spec_cache.EXECUTOR_INPUT).write_text(json.dumps(payload, indent=2))
        _subprocess(spec_inputs.command_line(container, text, self.python), label, log,
                    self.cwd, env)
        artifacts, parameters = read_output(payload, place.output_file)
        return _Done(time.monotonic() - started, artifacts, parameters, fingerprint, None, log)

    def finish(self, task_name: str, done: _Done) -> None:
        run = self.run
        self._append_log(task_name, done.log)
        run.record.artifacts[task_name] = done.artifacts
        run.record.parameters[task_name] = done.parameters
        run.seconds[task_name] = done.seconds
        execution = self.executions.get(task_name)
        properties = {spec_cache.FINGERPRINT: done.fingerprint} if done.fingerprint else {}
        if done.hit is not None:
            entry = done.hit.entry
            run.cached[task_name] = entry.run_id
            run.recorder.reuse(execution, done.artifacts, entry.execution_id, {
                **properties, spec_cache.CACHED_EXECUTION_ID: str(entry.execution_id)})
            self.echo(f"{task_name}: cached (outputs of run {entry.run_id})")
            return
        if execution is not None:
            run.recorder.finish(execution, done.artifacts, properties)
            if done.fingerprint:
                self.index.add(done.fingerprint, spec_cache.Entry(
                    execution.id, run.run_id, task_name))

    def failed(self, task_name: str, exc: BaseException) -> None:
        place = spec_inputs.TaskPlace(self.pipeline_root, task_name, self.run.run_id)
        self._append_log(task_name, Path(place.task_dir, "executor.log"))
        execution = self.executions.get(task_name)
        if execution is not None:
            self.run.recorder.finish(execution, None)

    def _append_log(self, task_name: str, log: Path | None) -> None:
        """The task's own log, whole, into the run's (tasks running at once write apart)."""
        if log is None or not log.is_file():
            return
        with self.run.log_path.open("a", encoding="utf-8") as out:
            out.write(f"\n==== {task_name} ({log})\n")
            out.write(log.read_text(encoding="utf-8", errors="replace"))


def _json_file(path: str) -> dict[str, Any]:
    file = Path(path)
    return json.loads(file.read_text(encoding="utf-8") or "{}") if file.is_file() else {}


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
        log.write(f"==== {label}\n")
        log.flush()
        result = subprocess.run(line, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env=dict(env), check=False)
    if result.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        raise PipelineFailed(
            f"Task {label} failed (exit code {result.returncode}); its log is {log_path}. "
            "Last lines:\n" + "\n".join(tail[-LOG_TAIL_LINES:])
        )
