"""Compile a pipeline into a Kubeflow Pipelines v2 / Vertex AI `PipelineJob` JSON.

TFX's KubeflowV2DagRunner does the compiling. Around it Beamline:
- builds the runner-agnostic `PipelineSettings` (no local MLMD; the orchestrator provides one),
  with the Beam profile's args, so every Beam-powered step runs with them;
- keeps module files in the image instead of uploading wheels: user-module packaging is turned off
  and paths under the project are rewritten to where the Dockerfile puts the project
  (`/pipeline`), so the code a step runs is the code baked into `--image`;
- declares secrets as references resolved at run time and refuses to write a file that contains
  a secret's value (see `beamline.deploy.secrets`);
- compiles resolvers KFP v2 cannot express (it knows only LatestArtifactStrategy and
  LatestBlessedModelStrategy) as TFX's LatestBlessedModelStrategy when their unproduced inputs are
  one Model and one ModelBlessing channel (e.g. the baseline "latest blessed model before the
  candidate" resolver), with a warning; any other custom resolver is an error;
- parses the result as a kfp `PipelineSpec` and checks that every node became a task.
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
from beamline.errors import BeamlineError, ConfigError
from beamline.settings import (
    NO_USER_MODULE_WHEELS,
    PipelineSettings,
    apply_tf_environment,
    is_uri,
)

TARGETS = ("kubeflow", "vertex")
# Where the Dockerfile copies the project inside the pipeline image.
IMAGE_PROJECT_ROOT = "/pipeline"
DEFAULT_BEAM_PROFILE = "direct"


@dataclass(frozen=True)
class CompileOptions:
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


def check_options(options: CompileOptions) -> list[str]:
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
    options: CompileOptions,
    beam_args: list[str],
    *,
    default_data_root: Callable[[], str],
    schema_path: str,
) -> PipelineSettings:
    root = options.pipeline_root.rstrip("/")
    from beamline.runner.spans import span_pattern_of

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
    )


def _data_location(data: str, span_pattern: str | None = None) -> tuple[str, str]:
    """(directory, glob) for ExampleGen from a CSV file or a directory of CSVs, local or remote.

    A local directory holding TFX spans gives the span pattern itself (no span pinned), so the
    compiled pipeline's ExampleGen takes the latest span at each scheduled run.
    """
    if not is_uri(data):
        from beamline.runner.spans import DEFAULT_SPAN_PATTERN, resolve_input

        local = resolve_input(Path(data), span_pattern or DEFAULT_SPAN_PATTERN)
        return str(local.root), local.pattern
    if data.endswith(".csv"):
        directory, _, name = data.rpartition("/")
        return directory, name
    return data.rstrip("/"), "*.csv"


def compile_pipeline(name: str, options: CompileOptions) -> Compiled:
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
    options: CompileOptions,
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
    warnings += _kfp_v2_resolvers(pipeline)
    compiled = compile_tfx_pipeline(pipeline, options)
    compiled.beam_args = beam_args
    compiled.warnings[:0] = warnings
    return compiled


def compile_tfx_pipeline(pipeline: Any, options: CompileOptions) -> Compiled:
    """TFX pipeline -> checked PipelineJob dict with secrets as run-time references."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2

    config = v2.KubeflowV2DagRunnerConfig(
        display_name=options.display_name, default_image=options.image
    )
    runner = v2.KubeflowV2DagRunner(config=config)
    try:
        job = runner.run(pipeline, write_out=False)
    except (ValueError, NotImplementedError, TypeError) as exc:
        raise BeamlineError(
            f"TFX's KubeflowV2DagRunner could not compile pipeline "
            f"{pipeline.pipeline_info.pipeline_name!r}: {exc}"
        ) from exc
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
    return Compiled(job=job, tasks=tasks, beam_args=[])


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


def _kfp_v2_resolvers(pipeline: Any) -> list[str]:
    """Rewrites custom blessed-model resolvers to LatestBlessedModelStrategy (see module doc)."""
    from tfx.dsl.components.common import resolver
    from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import (
        LatestArtifactStrategy,
    )
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
        LatestBlessedModelStrategy,
    )
    from tfx.types import standard_artifacts

    warnings = []
    for node in pipeline.components:
        if not isinstance(node, resolver.Resolver):
            continue
        strategy = node.exec_properties.get(resolver.RESOLVER_STRATEGY_CLASS)
        if strategy in (LatestArtifactStrategy, LatestBlessedModelStrategy):
            continue
        # Channels the resolver queries (no producer in this pipeline run), by artifact type.
        queried = {
            key: channel
            for key, channel in node.raw_inputs.items()
            if getattr(channel, "producer_component_id", None) is None
        }
        models = [k for k, c in queried.items() if issubclass(c.type, standard_artifacts.Model)]
        blessings = [
            k for k, c in queried.items() if issubclass(c.type, standard_artifacts.ModelBlessing)
        ]
        if len(models) != 1 or len(blessings) != 1 or len(queried) != 2:
            raise ConfigError(
                f"Resolver {node.id} uses {getattr(strategy, '__name__', strategy)}, which "
                "Kubeflow Pipelines v2 cannot run: TFX compiles only LatestArtifactStrategy and "
                "LatestBlessedModelStrategy resolvers for it. Use one of those for this target."
            )
        _set_strategy(node, LatestBlessedModelStrategy, queried)
        warnings.append(
            f"resolver {node.id}: {strategy.__name__} is compiled as TFX's "
            "LatestBlessedModelStrategy (the latest blessed model), the only blessed-model "
            "resolver Kubeflow Pipelines v2 supports."
        )
    return warnings


def _set_strategy(node: Any, strategy: type, channels: dict[str, Any]) -> None:
    """Re-points a Resolver node (TFX 1.16 internals) at `strategy` over `channels` only."""
    from tfx.dsl.input_resolution import resolver_op
    from tfx.types import resolved_channel

    output_node = resolver_op.OpNode(
        op_type=strategy,
        output_data_type=resolver_op.DataType.ARTIFACT_MULTIMAP,
        args=[resolver_op.DictNode({k: resolver_op.InputNode(c) for k, c in channels.items()})],
        kwargs={},
    )
    node._strategy_class = strategy
    node._config = {}
    node._raw_inputs = dict(channels)
    node._input_dict = {
        k: resolved_channel.ResolvedChannel(c.type, output_node, k) for k, c in channels.items()
    }
    node._output_dict = {k: v for k, v in node._output_dict.items() if k in channels}


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
