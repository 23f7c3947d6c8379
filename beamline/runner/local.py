"""Beamline's local runner: preflight, compile, concurrent node launch, outcome.

Heavy imports (TFX, TensorFlow, Beam) happen inside `run_pipeline`, after the environment that
selects the project's Keras (TF_USE_LEGACY_KERAS=1) is in place.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from beamline import beam, registry
from beamline.errors import AnomaliesFound, PipelineFailed
from beamline.metadata.run_context import RunState
from beamline.runner import fast_cache
from beamline.runner.console import Progress
from beamline.runner.fd_capture import capture_to
from beamline.runner.outcome import RunOutcome
from beamline.runner.scheduler import FAILED, NodeEvent, run_dag
from beamline.runner.spans import SpanRange, resolve_input, span_pattern_of
from beamline.settings import (
    DEFAULT_MAX_PARALLEL,
    NO_USER_MODULE_WHEELS,
    PipelineSettings,
    RootLayout,
    apply_tf_environment,
)


@dataclass
class RunRequest:
    pipeline: str
    root: Path  # absolute (the CLI's --root option resolves it)
    data: Path | None = None
    enable_tuning: bool = True
    beam_profile: str = beam.AUTO
    beam_extra: tuple[str, ...] = ()
    metadata: str | None = None
    max_parallel: int = DEFAULT_MAX_PARALLEL
    run_id: str | None = None
    fast_cache: bool = True
    span: int | None = None
    span_range: SpanRange | None = None


def prepare_environment() -> None:
    """Process environment for TensorFlow: must happen before TF is first imported."""
    import warnings

    # google-api-core warns on every import of aiplatform on Python 3.10; TFX 1.16 needs 3.10.
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*non-supported Python")
    apply_tf_environment()
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise PipelineFailed(
            "TF_USE_LEGACY_KERAS is set to something other than 1. Beamline's models use "
            "tf_keras 2.16 (KerasTuner 1.3.5 and TFX 1.16 need it); unset the variable or set it "
            "to 1."
        )


def _log_at_info() -> None:
    """Framework logs at INFO; fds 1/2 already point at the run's log file (capture_to)."""
    import absl.logging

    absl.logging.set_verbosity(absl.logging.INFO)
    logging.getLogger().setLevel(logging.INFO)


def _message(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def run_pipeline(request: RunRequest, out: TextIO = sys.stdout) -> RunOutcome:
    """Runs a pipeline locally; raises BeamlineError subclasses for user-facing failures."""
    if not request.root.is_absolute():
        raise ValueError(f"RunRequest.root must be absolute, got {request.root}")
    layout = RootLayout(request.root)
    prepare_environment()
    schema_path = str(registry.get(request.pipeline).schema_path)
    module = registry.load_module(request.pipeline)
    data = resolve_input(
        request.data or Path(module.default_data_root()),
        span_pattern_of(module),
        request.span,
        request.span_range,
    )
    beam_args = beam.beam_args(request.beam_profile, data.total_bytes, request.beam_extra)

    from beamline.metadata.connection import connection_config

    mlmd_config = connection_config(request.metadata, layout.metadata_path)
    settings = PipelineSettings(
        pipeline_name=request.pipeline,
        pipeline_root=str(layout.pipeline_root(request.pipeline)),
        data_root=str(data.root),
        data_pattern=data.pattern,
        span=data.span,
        extra_spans=data.extra_spans,
        serving_dir=str(layout.serving_dir(request.pipeline)),
        schema_path=schema_path,
        enable_tuning=request.enable_tuning,
        beam_pipeline_args=tuple(beam_args),
        metadata_connection_config=mlmd_config,
    )
    out.write(
        f"beamline: running pipeline '{request.pipeline}' on {len(data.files)} CSV file(s) "
        f"({data.total_bytes:,} bytes{', span ' + data.span_label if data.span_label else ''})"
        f" under {layout.root}\n"
        f"beamline: beam args {' '.join(beam_args)}\n"
    )
    out.flush()
    digest = fast_cache.fingerprint(
        request.pipeline,
        data,
        registry.PROJECT_ROOT,
        {
            "pipeline_root": settings.pipeline_root,
            "serving_dir": settings.serving_dir,
            "schema_path": settings.schema_path,
            "enable_tuning": settings.enable_tuning,
            "beam_args": settings.beam_pipeline_args,
        },
    )
    run_id = request.run_id or datetime.datetime.now().isoformat()
    if request.fast_cache:
        replayed = _try_replay(mlmd_config, request, run_id, digest, out)
        if replayed is not None:
            return _with_serving(replayed, settings, module)
    log_path = layout.log_path(request.pipeline, run_id)
    cwd = os.getcwd()
    with capture_to(log_path) as console:
        _log_at_info()
        console.write(f"beamline: full log in {log_path}\n")
        try:
            outcome = _run_nodes(module, settings, request, run_id, log_path, console, digest)
        finally:
            # TFX's Beam dependency packaging chdirs into a temp build directory and does not
            # always come back; the caller's relative paths must keep their meaning.
            os.chdir(cwd)
    return _with_serving(outcome, settings, module)


def _with_serving(outcome: RunOutcome, settings: PipelineSettings, module) -> RunOutcome:
    outcome.serving_dir = settings.serving_dir
    outcome.sample_instance = getattr(module, "SAMPLE_INSTANCE", None)
    return outcome


def _try_replay(
    mlmd_config, request: RunRequest, run_id: str, digest: str, out: TextIO
) -> RunOutcome | None:
    """The whole run as a cache hit without importing TensorFlow, when nothing changed."""
    from beamline.metadata.connection import open_store
    from beamline.runner.outcome import fill_from_mlmd

    try:
        store = open_store(mlmd_config)
        replayed = fast_cache.replay(store, request.pipeline, digest, run_id)
    except Exception as exc:  # noqa: BLE001 - any doubt: take the full TFX path
        logging.getLogger("beamline").info("fast cache not used: %s", exc)
        return None
    if replayed is None:
        return None
    out.write(
        f"beamline: run id {run_id}\n"
        "beamline: nothing changed since an earlier successful run (data files, schema, "
        "code, settings): every node is reused from the cache (--no-fast-cache asks TFX "
        "node by node)\n"
    )
    progress = Progress(out, live=False)
    progress.width = max(len(n) for n in replayed.node_states)
    outcome = RunOutcome(request.pipeline, run_id)
    for node_id, state in replayed.node_states.items():
        progress.event(NodeEvent(node_id, state, 0.0))
        outcome.node_states[node_id] = state
    fill_from_mlmd(outcome, store)
    return outcome


def _run_nodes(
    module, settings, request, run_id: str, log_path: Path, console: TextIO, digest: str
) -> RunOutcome:
    from beamline.runner import tfx_nodes

    # Module files are imported in place, as on Kubeflow/Vertex, instead of being built into a
    # wheel at compile time and pip-installed by every executor that uses them (~3 s each);
    # their content digest is in the components' custom_config, so caching still sees edits.
    os.environ.setdefault(NO_USER_MODULE_WHEELS, "1")
    pipeline = module.create_pipeline(settings)
    compiled = tfx_nodes.compile_pipeline(pipeline, run_id)
    outcome = RunOutcome(request.pipeline, compiled.run_id, log_path=str(log_path))
    console.write(f"beamline: run id {compiled.run_id}\n")

    events: dict[str, NodeEvent] = {}
    with Progress(console) as progress:
        progress.width = max(len(n) for n in compiled.nodes)

        def on_event(event: NodeEvent) -> None:
            progress.event(event)
            if event.state == FAILED and event.error is not None:
                logging.getLogger("beamline").error(
                    "node %s failed", event.node_id, exc_info=event.error
                )

        events = run_dag(
            compiled.upstream(),
            lambda node_id: tfx_nodes.launch_node(compiled, node_id),
            request.max_parallel,
            on_event,
        )
    for node_id, event in events.items():
        outcome.node_states[node_id] = event.state
    failures = [e for e in events.values() if e.state == FAILED]
    for event in failures:
        if type(event.error).__name__ == "DataAnomaliesError":
            outcome.anomalies = _message(event.error)
            outcome.failed_node = event.node_id
    if failures and outcome.anomalies is None:
        outcome.failed_node = failures[0].node_id
        outcome.error = _message(failures[0].error)

    from beamline.runner.outcome import fill_from_mlmd
    from beamline.runner.serialized_mlmd import SerializedMetadata

    with SerializedMetadata(compiled.connection_config) as handle:
        fill_from_mlmd(outcome, handle.store)
        state = (
            RunState.COMPLETE if outcome.ok
            else (RunState.STOPPED if outcome.anomalies else RunState.FAILED)
        )
        fast_cache.mark_run(
            handle.store,
            compiled.run_id,
            request.pipeline,
            digest,
            state=state,
            nodes=len(compiled.nodes),
            reason=outcome.anomalies or outcome.error or "",
        )
    return outcome


def raise_for_outcome(outcome: RunOutcome) -> None:
    if outcome.anomalies:
        raise AnomaliesFound(
            f"Run stopped at {outcome.failed_node}: {outcome.anomalies}"
        )
    if outcome.error:
        raise PipelineFailed(
            f"Node {outcome.failed_node} failed: {outcome.error} (full traceback in "
            f"{outcome.log_path})."
        )

