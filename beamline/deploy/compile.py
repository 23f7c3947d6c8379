"""Compile a pipeline into a Kubeflow Pipelines v2 / Vertex AI `PipelineJob` JSON.

TFX's KubeflowV2DagRunner does the compiling. Around it Beamline:
- builds the runner-agnostic `PipelineSettings` (no local MLMD; the orchestrator provides one),
  with the Beam profile's args, so every Beam-powered step runs with them;
- keeps module files in the image instead of uploading wheels: user-module packaging is turned off
  and paths under the project are rewritten to where the Dockerfile puts the project
  (`/pipeline`), so the code a step runs is the code baked into `--image`;
- declares secrets as references resolved at run time and refuses to write a file that contains
  a secret's value (see `beamline.deploy.secrets`);
- builds the pipeline in the form the target runs (`PipelineSettings.baseline_source`): for
  open-source Kubeflow Pipelines, which runs only container and importer tasks, the Evaluator's
  baseline comes from a container task and the CSV ExampleGen resolves its own span (its TFX
  driver hook is dropped, its cache turned off); for Vertex AI, TFX's resolver and driver forms;
- refuses, naming the node, anything the target cannot run (a resolver on Kubeflow, a custom
  resolver strategy on Vertex, an ExampleGen that needs TFX's driver on Kubeflow) instead of
  compiling something else;
- parses the result as a kfp `PipelineSpec`, checks that every node became a task and checks the
  target's rules (`beamline.deploy.spec_rules`) on the spec it writes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline import beam, project, registry
from beamline.deploy import secrets as secrets_mod
from beamline.deploy import spec_rules
from beamline.errors import BeamlineError, ConfigError
from beamline.settings import (
    BASELINE_LATEST_BLESSED,
    BASELINE_SERVING_DIR,
    NO_USER_MODULE_WHEELS,
    PipelineSettings,
    apply_tf_environment,
    is_uri,
)

TARGETS = ("kubeflow", "vertex")
# Where the Evaluator's baseline comes from on each target (beamline.settings' BASELINE_*): KFP
# runs no resolver; Vertex runs TFX's LatestBlessedModelStrategy resolver, the only blessed-model
# resolver TFX compiles for it.
BASELINE_SOURCE = {"kubeflow": BASELINE_SERVING_DIR, "vertex": BASELINE_LATEST_BLESSED}
# Where the Dockerfile copies the project inside the pipeline image.
IMAGE_PROJECT_ROOT = "/pipeline"
DEFAULT_BEAM_PROFILE = "direct"


@dataclass(frozen=True)
class CompileRequest:
    """What `beamline compile --target kubeflow|vertex` asks this layer to build."""

    target: str
    image: str
    pipeline_root: str
    data_root: str | None = None
    serving_dir: str | None = None
    beam: str = DEFAULT_BEAM_PROFILE
    beam_extra: tuple[str, ...] = ()
    secrets: tuple[secrets_mod.SecretRef, ...] = ()
    enable_tuning: bool = True
    display_name: str | None = None


@dataclass
class Compiled:
    job: dict[str, Any]
    tasks: list[str]
    beam_args: list[str]
    warnings: list[str] = field(default_factory=list)
    # What runs where on this target, one line per node that differs from a local run.
    notes: list[str] = field(default_factory=list)


def check_options(options: CompileRequest) -> list[str]:
    """Validates everything that needs no TFX; returns the Beam args the steps will get."""
    if options.target not in TARGETS:
        raise ConfigError(f"Unknown --target {options.target!r}; choose kubeflow or vertex.")
    if not options.image or any(c.isspace() for c in options.image):
        raise ConfigError(
            "--image must name the pipeline image (built from the project's Dockerfile), "
            "e.g. us-docker.pkg.dev/PROJECT/REPO/beamline:1.0."
        )
    root = options.pipeline_root
    if not is_uri(root):
        raise ConfigError(
            f"--pipeline-root {root!r} must be a storage URI every step can reach "
            "(gs://BUCKET/PATH for Vertex or Kubeflow on GKE, minio://... or s3://... elsewhere): "
            "each step runs in its own container, so a local path would not be shared."
        )
    if options.target == "vertex" and not root.startswith("gs://"):
        raise ConfigError(f"Vertex AI needs a gs:// --pipeline-root, not {root!r}.")
    args = beam.beam_args(options.beam, 0, options.beam_extra)
    secrets_mod.check_references(args, options.secrets)
    secrets_mod.check_target(options.secrets, options.target)
    return args


def pipeline_settings(
    name: str,
    options: CompileRequest,
    beam_args: list[str],
    *,
    default_data_root: Callable[[], str],
    schema_path: str,
) -> PipelineSettings:
    root = options.pipeline_root.rstrip("/")
    from beamline.data.spans import span_pattern_of

    data_root, data_pattern = _data_location(
        options.data_root or default_data_root(), span_pattern_of(registry.load_module(name))
    )
    return PipelineSettings(
        pipeline_name=name,
        pipeline_root=f"{root}/{name}",
        data_root=data_root,
        data_pattern=data_pattern,
        serving_dir=options.serving_dir or f"{root}/serving/{name}",
        schema_path=schema_path,
        enable_tuning=options.enable_tuning,
        beam_pipeline_args=tuple(beam_args),
        metadata_connection_config=None,
        components_dir=str(project.current().components_dir),
        baseline_source=BASELINE_SOURCE[options.target],
    )


def _data_location(data: str, span_pattern: str | None = None) -> tuple[str, str]:
    """(directory, glob) for ExampleGen from a CSV file or a directory of CSVs, local or remote.

    A local directory holding TFX spans gives the span pattern itself (no span pinned), so the
    compiled pipeline's ExampleGen takes the latest span at each scheduled run.
    """
    if not is_uri(data):
        from beamline.data.spans import DEFAULT_SPAN_PATTERN, resolve_input

        local = resolve_input(Path(data), span_pattern or DEFAULT_SPAN_PATTERN)
        return str(local.root), local.pattern
    if data.endswith(".csv"):
        directory, _, name = data.rpartition("/")
        return directory, name
    return data.rstrip("/"), "*.csv"


def compile_pipeline(name: str, options: CompileRequest) -> Compiled:
    """Compiles the registered pipeline `pipelines/<name>.py`."""
    entry = registry.get(name)
    args = check_options(options)
    apply_tf_environment()
    module = registry.load_module(name)
    settings = pipeline_settings(
        name,
        options,
        args,
        default_data_root=module.default_data_root,
        schema_path=str(entry.schema_path),
    )
    return compile_settings(module.create_pipeline, settings, options, args)


def compile_settings(
    create_pipeline: Callable[[PipelineSettings], Any],
    settings: PipelineSettings,
    options: CompileRequest,
    beam_args: list[str],
    *,
    project_root: Path | None = None,
) -> Compiled:
    """Builds the TFX pipeline from `settings` and compiles it (module files stay in the image).

    Paths under `project_root` (default: the current project's root; none for the bundled
    examples, which the image has installed) become image paths."""
    if project_root is None:
        current = project.current()
        project_root = None if current.bundled else current.root
    with _env(NO_USER_MODULE_WHEELS, "1"):
        pipeline = create_pipeline(settings)
    warnings = _to_image_paths(pipeline, project_root, IMAGE_PROJECT_ROOT)
    compiled = compile_tfx_pipeline(pipeline, options)
    compiled.beam_args = beam_args
    compiled.warnings[:0] = warnings
    return compiled


def compile_tfx_pipeline(pipeline: Any, options: CompileRequest) -> Compiled:
    """TFX pipeline -> checked PipelineJob dict with secrets as run-time references, in the form
    `options.target` runs (or a ConfigError naming the node or task it could not run)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2

    config = v2.KubeflowV2DagRunnerConfig(
        display_name=options.display_name, default_image=options.image
    )
    runner = v2.KubeflowV2DagRunner(config=config)
    self_resolving = _check_nodes(pipeline, options.target)
    try:
        job = runner.run(pipeline, write_out=False)
    except (ValueError, NotImplementedError, TypeError) as exc:
        raise BeamlineError(
            f"TFX's KubeflowV2DagRunner could not compile pipeline "
            f"{pipeline.pipeline_info.pipeline_name!r}: {exc}"
        ) from exc
    if options.target == "kubeflow":
        _without_driver_hooks(job, self_resolving)
    secrets_mod.apply_to_job(job, options.secrets, options.target)

    leaks = secrets_mod.find_leaks(json.dumps(job), options.secrets)
    if leaks:
        raise ConfigError(
            f"The compiled pipeline would contain the value of ${', $'.join(leaks)}, so nothing "
            "was written. Pass secrets by reference: declare --secret NAME=SOURCE and write "
            "${secret:NAME} in --beam-arg (or read os.environ['NAME'] in component code)."
        )

    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    tasks = sorted(spec.root.dag.tasks)
    # A latest-blessed-model resolver becomes two tasks, `<id>-model(-blessing)-resolver`.
    missing = sorted(
        c.id
        for c in pipeline.components
        if c.id not in tasks and not any(t.startswith(f"{c.id}-") for t in tasks)
    )
    if missing:
        raise BeamlineError(
            f"Compiled PipelineSpec is missing tasks for nodes {', '.join(missing)}; "
            "this is a Beamline bug, please report it with the pipeline definition."
        )
    spec_rules.raise_for(
        spec_rules.check(job["pipelineSpec"], options.target),
        pipeline.pipeline_info.pipeline_name,
        options.target,
    )
    notes = _notes(pipeline, options.target, self_resolving)
    return Compiled(job=job, tasks=tasks, beam_args=[], notes=notes)


def _notes(pipeline: Any, target: str, self_resolving: list[str]) -> list[str]:
    """One line per node that runs differently on `target` than in a local run."""
    from tfx.dsl.components.common import resolver

    notes = []
    for node in pipeline.components:
        # A component says itself what it stands in for (e.g. the baseline found by a container).
        note = getattr(type(node), "COMPILE_NOTE", None)
        if note:
            notes.append(f"{node.id}: {note.format(**node.exec_properties)}")
        elif isinstance(node, resolver.Resolver):
            strategy = node.exec_properties.get(resolver.RESOLVER_STRATEGY_CLASS)
            name = getattr(strategy, "__name__", strategy)
            notes.append(f"{node.id}: TFX's {name} resolver, run by Vertex AI Pipelines")
    if target == "kubeflow":
        notes += [
            f"{node_id}: resolves its span in its own container and is never cached (Kubeflow "
            "Pipelines runs no ExampleGen driver, and its cache cannot see new files)"
            for node_id in self_resolving
        ]
    return notes


def check_out(out: Path) -> None:
    if out.suffix != ".json":
        raise ConfigError(f"--out {out} must end in .json (a KFP v2 PipelineJob).")


def write_job(job: dict[str, Any], out: Path) -> None:
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(job, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)


def _to_image_paths(pipeline: Any, project_root: Path | None, image_root: str) -> list[str]:
    """Rewrites project paths in exec properties to image paths; warns about other local paths."""
    prefix = str(project_root).rstrip("/") + "/" if project_root is not None else None
    warnings = []
    for component in pipeline.components:
        props = component.exec_properties
        for key, value in list(props.items()):
            if not isinstance(value, str):
                continue
            if prefix is not None and prefix in value and prefix + ".venv/" not in value:
                props[key] = value.replace(prefix, image_root.rstrip("/") + "/")
            elif value.startswith("/") and "\n" not in value and os.path.exists(value):
                warnings.append(
                    f"{component.id}.{key} is the local path {value}: it must exist at the same "
                    "path inside the image, or be a gs:// (or other remote) URI."
                )
    return warnings


# Set on an ExampleGen executor class that resolves its span when no driver ran (Beamline's CSV
# executor: beamline_components.csv_example_gen.driverless).
RESOLVES_SPANS_WITHOUT_DRIVER = "RESOLVES_SPANS_WITHOUT_DRIVER"


def _check_nodes(pipeline: Any, target: str) -> list[str]:
    """Refuses, naming the node, what `target` cannot run; returns the ids of the file-based
    ExampleGens whose executor resolves spans itself (their driver hook is dropped for
    kubeflow). TFX compiles LatestArtifactStrategy and LatestBlessedModelStrategy resolvers into
    `resolver` executors, a FileBasedExampleGen's driver into a lifecycle hook, and no other
    resolver or driver (tfx/orchestration/kubeflow/v2/step_builder.py, `build`)."""
    from tfx.components import FileBasedExampleGen
    from tfx.dsl.components.base import base_driver
    from tfx.dsl.components.common import resolver
    from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import (
        LatestArtifactStrategy,
    )
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
        LatestBlessedModelStrategy,
    )

    self_resolving = []
    for node in pipeline.components:
        if isinstance(node, resolver.Resolver):
            strategy = node.exec_properties.get(resolver.RESOLVER_STRATEGY_CLASS)
            name = getattr(strategy, "__name__", str(strategy))
            if target == "kubeflow":
                raise ConfigError(
                    f"Node {node.id!r} is a Resolver ({name}), and Kubeflow Pipelines runs only "
                    "container and importer tasks, no resolver. Beamline's own pipelines find "
                    "their baseline model in a container task for --target kubeflow; for this "
                    "pipeline, replace the resolver with a component that finds the artifact, "
                    "or compile with --target vertex."
                )
            if strategy not in (LatestArtifactStrategy, LatestBlessedModelStrategy):
                raise ConfigError(
                    f"Node {node.id!r} is a Resolver using {name}, which TFX cannot compile for "
                    "Vertex AI Pipelines: only LatestArtifactStrategy and "
                    "LatestBlessedModelStrategy resolvers become Vertex resolver tasks. Use one "
                    "of those in the pipeline for this target."
                )
        elif isinstance(node, FileBasedExampleGen):
            executor_class = getattr(node.executor_spec, "executor_class", None)
            if getattr(executor_class, RESOLVES_SPANS_WITHOUT_DRIVER, False):
                self_resolving.append(node.id)
            elif target == "kubeflow":
                raise ConfigError(
                    f"Node {node.id!r} is a file-based ExampleGen whose executor "
                    f"({getattr(executor_class, '__name__', executor_class)}) needs TFX's driver "
                    "to resolve its input pattern and fingerprint its files, and Kubeflow "
                    "Pipelines never runs that driver (TFX compiles it as a container lifecycle "
                    "hook). Use Beamline's CSV ExampleGen (CSV data), which resolves its span "
                    "itself, or compile with --target vertex."
                )
        else:
            driver = getattr(type(node), "DRIVER_CLASS", base_driver.BaseDriver)
            if driver is not base_driver.BaseDriver:
                raise ConfigError(
                    f"Node {node.id!r} has a TFX driver ({driver.__name__}), and TFX compiles "
                    "no driver for Kubeflow Pipelines or Vertex AI except a file-based "
                    "ExampleGen's: the work that driver does before the executor would never "
                    "run. Do that work in the component's executor, or run this pipeline "
                    "with `beamline run` or on Airflow."
                )
    return self_resolving


def _without_driver_hooks(job: dict[str, Any], node_ids: list[str]) -> None:
    """For kubeflow: drops the ExampleGen driver hook (the executor resolves the span itself)
    and turns the task's cache off. KFP keys its cache on a task's parameters and input
    artifacts (kubeflow/pipelines backend/src/v2/cacheutils/cache.go), never on the files an
    input pattern matches, so a cached ExampleGen would reuse old examples after new data
    arrived; on Vertex the driver's fingerprint of the files is what keeps the cache honest."""
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    for node_id in node_ids:
        task = tasks[node_id]
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        spec["deploymentSpec"]["executors"][label]["container"].pop("lifecycle", None)
        task["cachingOptions"] = {"enableCache": False}


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
