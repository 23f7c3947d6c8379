"""TFX's portable orchestration pieces, driven node by node (no fork of TFX).

Compiles a tfx Pipeline to IR the way LocalDagRunner does (compiler, run-id substitution; module
files are imported in place, not packaged as wheels: the runner sets NO_USER_MODULE_WHEELS) and
launches any single node with TFX's own Launcher, which does input
resolution, caching and MLMD publishing exactly as stock TFX does.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import constants
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher, runtime_parameter_utils, tfx_runner
from tfx.proto.orchestration import executable_spec_pb2, pipeline_pb2

from beamline.runner.fast_cache import is_resolver_type
from beamline.runner.module_imports import use_module_paths
from beamline.runner.scheduler import CACHED, COMPLETE, RESOLVED
from beamline.runner.serialized_mlmd import SerializedMetadata


@dataclass
class CompiledPipeline:
    ir: pipeline_pb2.Pipeline
    run_id: str
    connection_config: metadata_store_pb2.ConnectionConfig
    deployment_config: object

    @property
    def nodes(self) -> dict[str, pipeline_pb2.PipelineNode]:
        return {n.pipeline_node.node_info.id: n.pipeline_node for n in self.ir.nodes}

    def upstream(self) -> dict[str, set[str]]:
        return {node_id: set(node.upstream_nodes) for node_id, node in self.nodes.items()}


def compile_pipeline(pipeline, run_id: str | None = None) -> CompiledPipeline:
    """IR for `pipeline` with a concrete run id (LocalDagRunner's preparation steps)."""
    ir = tfx_runner._make_pipeline_proto(pipeline)  # noqa: SLF001 - compile, as TFX does
    use_module_paths(ir)
    run_id = run_id or datetime.datetime.now().isoformat()
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id}
    )
    deployment_config = runner_utils.extract_local_deployment_config(ir)
    holder = deployment_config.metadata_connection_config
    connection_config = getattr(holder, holder.WhichOneof("connection_config"))
    return CompiledPipeline(ir, run_id, connection_config, deployment_config)


def launch_node(compiled: CompiledPipeline, node_id: str, beam_args: Sequence[str] = ()) -> str:
    """Runs one node through TFX's Launcher; returns COMPLETE or CACHED (raises on failure).

    `beam_args`: Beam args for this node only (appended after the pipeline's), when it is a
    Beam node (e.g. its Flink job name)."""
    node = compiled.nodes[node_id]
    handle = SerializedMetadata(compiled.connection_config)
    executor_spec = runner_utils.extract_executor_spec(compiled.deployment_config, node_id)
    if beam_args and isinstance(executor_spec, executable_spec_pb2.BeamExecutableSpec):
        for arg in beam_args:
            executor_spec.beam_pipeline_args_placeholders.add().value.string_value = arg
    node_launcher = launcher.Launcher(
        pipeline_node=node,
        mlmd_connection=handle,
        pipeline_info=compiled.ir.pipeline_info,
        pipeline_runtime_spec=compiled.ir.runtime_spec,
        executor_spec=executor_spec,
        custom_driver_spec=runner_utils.extract_custom_driver_spec(
            compiled.deployment_config, node_id
        ),
    )
    info = node_launcher.launch()
    if is_resolver_type(node.node_info.type.name):
        return RESOLVED
    if info is None or not info.execution_id:
        return COMPLETE
    with handle as m:
        [execution] = m.store.get_executions_by_id([info.execution_id])
    if execution.last_known_state == metadata_store_pb2.Execution.CACHED:
        return CACHED
    return COMPLETE


def is_pusher(compiled: CompiledPipeline, node_id: str) -> bool:
    """Whether the node is a Pusher (TFX's, or a subclass named so)."""
    return compiled.nodes[node_id].node_info.type.name.rsplit(".", 1)[-1].endswith("Pusher")


_LOCAL_RUNNERS = {"", "directrunner", "direct", "fnapirunner", "bundlebasedirectrunner"}


def _needs_shipped_tfx(beam_args: list[str]) -> bool:
    """Whether Beam workers run outside this interpreter's environment (so lack TFX)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(flags=list(beam_args)).get_all_options()
    runner = str(options.get("runner") or "").lower()
    if runner in _LOCAL_RUNNERS:
        return False
    # LOOPBACK workers run in this process; EXTERNAL workers in a worker pool whose environment
    # the user chose (`beamline flink up`'s runs this venv): a staged sdist is never installed
    # by a pool's process workers, so building one only costs time.
    return str(options.get("environment_type") or "").upper() not in ("LOOPBACK", "EXTERNAL")


@contextlib.contextmanager
def beam_dependencies(beam_args: list[str]):
    """TFX's Beam executors ship TFX to Beam workers: each builds a throw-away sdist of TFX
    (tfx.utils.dependency_utils), ~42 MB in $TMPDIR, and the build chdirs the whole process,
    racing with nodes running in other threads. Workers of a local runner (DirectRunner in
    memory or multi-processing, LOOPBACK) run in this environment and need no package; for the
    others it is built once, here, before any node thread starts, and reused by every node.
    """
    from tfx.utils import dependency_utils

    original = dependency_utils.make_beam_dependency_flags
    if _needs_shipped_tfx(beam_args):
        cwd = os.getcwd()
        try:
            package = dependency_utils.build_ephemeral_package()
        finally:
            os.chdir(cwd)
        flags = [f"--extra_package={package}"]
    else:
        flags = []

    def dependency_flags(args: list[str]) -> list[str]:
        return original(args) if _has_dependency_flag(args) else list(args) + flags

    dependency_utils.make_beam_dependency_flags = dependency_flags
    try:
        yield flags
    finally:
        dependency_utils.make_beam_dependency_flags = original


def _has_dependency_flag(args: list[str]) -> bool:
    """The user's own --extra_package/--setup_file/...: TFX then adds nothing (its own check)."""
    names = ("--extra_package", "--extra_packages", "--setup_file", "--requirements_file",
             "--worker_harness_container_image", "--sdk_container_image")
    return any(a.split("=", 1)[0] in names for a in args)
