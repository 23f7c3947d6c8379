"""Beamline's local runner: preflight, compile, concurrent node launch, outcome.

Heavy imports (TFX, TensorFlow, Beam) happen inside `run_pipeline`, after the environment that
selects the project's Keras (TF_USE_LEGACY_KERAS=1) is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from beamline import beam, redaction, registry
from beamline import project as project_mod
from beamline.data.spans import SpanRange, resolve_input, span_pattern_of
from beamline.errors import AnomaliesFound, ConfigError, OutOfMemory, PipelineFailed
from beamline.metadata.records import TriggerKind
from beamline.metadata.run_context import RunState
from beamline.runner import fast_cache
from beamline.runner.console import Progress
from beamline.runner.fd_capture import capture_to
from beamline.runner.heartbeat import Heartbeat
from beamline.runner.memory_guard import MemoryGuard, advice_for
from beamline.runner.outcome import RunOutcome
from beamline.runner.run_lock import PipelineLock
from beamline.runner.run_tmp import run_tmp_dir, run_tmpdir
from beamline.runner.scheduler import FAILED, RUNNING, NodeEvent, run_dag
from beamline.runner.supervisor import RunReport, report_run
from beamline.settings import (
    DEFAULT_MAX_PARALLEL,
    MEMORY_LIMIT_ENV,
    NO_USER_MODULE_WHEELS,
    OVERRIDES_APPLIED,
    PipelineSettings,
    RootLayout,
    apply_tf_environment,
)

if TYPE_CHECKING:
    from beamline.runner.memory import MemoryBudget


@dataclass
class RunRequest:
    """What `beamline run` asks for, as data: one local run of one pipeline.

    Attributes:
        pipeline: The pipeline's name (a file `pipelines/<name>.py`).
        root: The run root, absolute: artifacts, MLMD, logs and pushed models live under it.
        data: A CSV file or directory (spans allowed); None: the pipeline's own data.
        enable_tuning: False skips the Tuner (`--no-tune`).
        beam_profile: A name from `beamline.beam.profile_names()` (`--beam`).
        beam_extra: Raw Beam flags overriding the profile's (`--beam-arg`).
        metadata: MLMD store URI or config file; None: SQLite under `root`.
        max_parallel: Nodes that may run at once when the DAG allows.
        run_id: The run id to claim; None: a timestamp to the microsecond.
        fast_cache: False always compiles and asks TFX's cache node by node.
        span: The TFX span of `data` to read; None: the latest.
        span_range: The spans to read together (`--span-range FIRST:LAST`).
        memory_limit: An upper bound for the run's process tree ("6GiB", "80%"); None:
            `$BEAMLINE_MEMORY_LIMIT`, else only what the machine or cgroup has left.
        report_fd: Where to tell the watchdog parent which run this is (set by the CLI).
    """

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
    # Keep the input files and code in the run root's object store (`--no-versions`: False).
    keep_versions: bool = True
    span: int | None = None
    span_range: SpanRange | None = None
    # An upper bound for the run's process tree ("6GiB", "80%"); None: $BEAMLINE_MEMORY_LIMIT,
    # else only what the machine/cgroup has left bounds it (beamline.runner.memory).
    memory_limit: str | None = None
    # Where to tell the watchdog parent which run this is (beamline.runner.supervisor).
    report_fd: int | None = None
    # settings.PushPolicy; None: the pipeline module's PUSH_POLICY, else live.
    push_policy: str | None = None
    # What started the run (records.TriggerKind; None: manual) and, for runs a `beamline loop`
    # step decided, the id of its beamline.Trigger execution: stamped on the run's context.
    trigger: str | None = None
    trigger_execution_id: int | None = None
    # Search hyperparameters again even when the last search can be reused (beamline.runner.tuned).
    retune: bool = False
    # Whose pipelines, module files and schemas (None: beamline.project.current()).
    project: project_mod.Project | None = None
    # `--set NAME=VALUE` pairs (PipelineSettings.overrides) and `--experiment NAME`: both
    # stamped on the run's context for `beamline experiments`.
    overrides: tuple[tuple[str, object], ...] = ()
    experiment: str | None = None
    # A sweep's other variants' overrides, checked with this run's before it starts, so a bad
    # value in any variant stops the sweep before its first run.
    check_also: tuple[tuple[tuple[str, object], ...], ...] = ()
    # False: the pipeline is built without its Pusher (PipelineSettings.push).
    push: bool = True


def prepare_environment() -> None:
    """Process environment for TensorFlow: must happen before TF is first imported."""
    import warnings

    # google-api-core warns on every import of aiplatform on Python 3.10; TFX 1.16 needs 3.10.
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*non-supported Python")
    apply_tf_environment()
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise ConfigError(
            f"TF_USE_LEGACY_KERAS is set to {os.environ['TF_USE_LEGACY_KERAS']!r}, not 1. "
            "Beamline's models use tf_keras 2.16 (KerasTuner 1.3.5 and TFX 1.16 need it); unset "
            "the variable or set it to 1."
        )


def autograph_skips_tf_keras() -> None:
    """AutoGraph leaves tf_keras's own code unconverted, as it does Keras 2's: TensorFlow's
    CONVERSION_RULES list `DoNotConvert('keras')`, and tf_keras is Keras 2 under another name.
    Without the rule, the first model a process trains transpiles ~1,200 tf_keras functions
    (measured: build, fit and export of a penguin-sized model took 42.7 s of CPU first and 6.4 s
    after, against 4.2 s and 3.4 s with the rule). A cold run's Tuner paid that; a run reusing
    the search paid it in its Trainer, so skipping the Tuner saved little. Module files' own
    functions are still converted. TensorFlow's own tests extend the rules the same way."""
    import types

    from tensorflow.python.autograph.core import config

    probe = types.ModuleType("tf_keras")
    if any(r.get_action(probe) == config.Action.DO_NOT_CONVERT for r in config.CONVERSION_RULES):
        return
    config.CONVERSION_RULES = (config.DoNotConvert("tf_keras"), *config.CONVERSION_RULES)


def deterministic_ops_if_asked() -> None:
    """TF_DETERMINISTIC_OPS=1 (`beamline reproduce` sets it): TensorFlow's ops deterministic in
    this process, where the Tuner and Trainer run; the module files seed their own randomness
    (keras.utils.set_random_seed)."""
    if os.environ.get("TF_DETERMINISTIC_OPS") != "1":
        return
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def _log_at_info() -> None:
    """Framework logs at INFO; fds 1/2 already point at the run's log file (capture_to)."""
    import absl.logging

    absl.logging.set_verbosity(absl.logging.INFO)
    logging.getLogger().setLevel(logging.INFO)


def _message(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def run_pipeline(
    request: RunRequest, out: TextIO = sys.stdout, module: ModuleType | None = None
) -> RunOutcome:
    """Runs a pipeline locally, in this process, recording everything in MLMD.

    `module` (FILE.py targets, tests, embedding): a pipeline module not in the project's
    pipelines, with the same interface (`create_pipeline(settings)`, `default_data_root()`,
    optional `SCHEMA_PATH`, `SAMPLE_INSTANCE`, `SPAN_PATTERN`); beamline.runner.run_targets builds
    one around a stock-TFX pipeline function.

    Guarantees (docs/explanation/reliability.md): one live run per pipeline and root (a lock);
    the run's liveness is on its MLMD context; what killed runs left is cleaned first; all
    temporary files live under `<root>/tmp/` and are removed however the run ends. In-process
    callers get the memory guard as a thread (`beamline run` adds a watchdog process).

    Args:
        request: What to run (`RunRequest`).
        out: Where progress lines and the end summary go.
        module: A pipeline module not in `pipelines/` (tests, embedding), with the same
            interface: `create_pipeline(settings)`, `default_data_root()`, optional
            `SCHEMA_PATH`.

    Returns:
        The run's outcome: node states, blessing, pushed version and path, anomalies or the
            error. A failed run is returned, not raised; `raise_for_outcome` turns it into
            the matching `BeamlineError`.

    Raises:
        ConfigError: Bad settings (unknown pipeline, Beam profile, span range, Keras setting).
        DataError: The input data cannot be used; nothing was run.
        MetadataUnreachable: The MLMD store cannot be opened.
        RunInProgress: Another live run of this pipeline holds the run root's lock.
        OutOfMemory: The memory guard stopped the run (recorded as failed).
    """
    if not request.root.is_absolute():
        raise ValueError(f"RunRequest.root must be absolute, got {request.root}")
    from beamline.metadata.workspace import Workspace

    # One store for the run's own records (cleanup, claim, versions, replay, the last search);
    # TFX's launchers open theirs while the nodes run.
    workspace = Workspace(request.root, request.metadata, existing=False)
    layout = workspace.layout
    prepare_environment()
    project = request.project or project_mod.current()
    project_mod.activate(project)
    if module is None:
        schema_path = str(registry.get(request.pipeline, project).schema_path)
        module = registry.load_module(request.pipeline, project)
    else:
        schema_path = str(getattr(module, "SCHEMA_PATH", ""))
    data = _data_input(request, module)
    beam_extra, flink = _flink_extra(request)
    flink_master = flink.master if flink else ""
    beam_args = beam.beam_args(request.beam_profile, data.total_bytes, beam_extra)
    budget = memory_budget(request.memory_limit)
    from beamline.runner.push import policy_of

    push_policy = policy_of(module, request.push_policy)

    mlmd_config = workspace.connection_config
    if flink is not None:
        _flink_preflight(workspace, beam_args, flink, out)
    settings = PipelineSettings(
        pipeline_name=request.pipeline,
        pipeline_root=str(layout.pipeline_root(request.pipeline)),
        data_root=str(data.root),
        data_pattern=data.pattern,
        data_format=data.format,
        span=data.span,
        extra_spans=data.extra_spans,
        serving_dir=str(layout.serving_dir(request.pipeline)),
        schema_path=schema_path,
        enable_tuning=request.enable_tuning,
        beam_pipeline_args=tuple(beam_args),
        metadata_connection_config=mlmd_config,
        components_dir=str(project.components_dir),
        overrides=request.overrides,
        push=request.push,
        keep_versions=request.keep_versions,
        experiment=request.experiment,
    )
    for overrides in (request.overrides, *request.check_also) if request.overrides else ():
        check_overrides(module, replace(settings, overrides=overrides))
    # The run log is shown by the UI; Beam itself logs the flags it does not know, values too.
    redaction.install_log_redaction(redaction.beam_arg_secrets(beam_args, os.environ))
    kind = {"csv": "CSV", "tfrecord": "TFRecord", "parquet": "Parquet"}.get(data.format, "data")
    if project.bundled and not hasattr(module, "TARGET"):
        out.write(f"beamline: {project.describe()}\n")
    out.write(
        f"beamline: running pipeline '{request.pipeline}' on {len(data.files)} {kind} file(s) "
        f"({data.total_bytes:,} bytes{', span ' + data.span_label if data.span_label else ''})"
        f" under {layout.root}\n"
        f"beamline: beam args {' '.join(redaction.redact_beam_args(beam_args, os.environ))}\n"
    )
    out.flush()
    digest = fast_cache.fingerprint(
        request.pipeline,
        data,
        fast_cache.project_sources(project),
        {
            "pipeline_root": settings.pipeline_root,
            "serving_dir": settings.serving_dir,
            "schema_path": settings.schema_path,
            "enable_tuning": settings.enable_tuning,
            "beam_args": settings.beam_pipeline_args,
            "module": _module_source(module, project),
            # Only when set: runs without overrides keep the fingerprints they had.
            **({"overrides": sorted(request.overrides)} if request.overrides else {}),
            **({"push": False} if not request.push else {}),
        },
        lock=project.root / "requirements.lock",
    )
    with PipelineLock(layout, request.pipeline, "starting") as lock:
        if lock.cleans:
            _clean_after_killed_runs(workspace, request.pipeline, out)
        run_id = _claim_run_id(workspace, request, push_policy,
                               beam.choose_profile(request.beam_profile, data.total_bytes))
        lock.record_run(run_id)
        report_run(request.report_fd, RunReport(
            run_id, digest, advice_for(beam_args), flink_master,
            _flink_tag(request.pipeline, run_id) if flink_master else "",
        ))
        _keep_versions(settings, workspace, data, _code_files(project, module), run_id, out)
        if request.fast_cache:
            replayed = _try_replay(workspace, request, run_id, digest, out)
            if replayed is not None:
                return _with_serving(replayed, settings, module)
        log_path = layout.log_path(request.pipeline, run_id)
        cwd = os.getcwd()
        tmp_dir = run_tmp_dir(layout, request.pipeline, run_id)
        with run_tmpdir(tmp_dir), capture_to(log_path) as (console, console_err):
            _log_at_info()
            console.write(f"beamline: full log in {log_path}\n")
            end = _RunEnd(layout, request.pipeline, digest, tmp_dir, console_err)
            try:
                outcome = _run_nodes(module, settings, request, run_id, log_path, console, end,
                                     budget, push_policy, flink_master, workspace)
            finally:
                # The caller's relative paths must keep their meaning whatever a node did.
                os.chdir(cwd)
    return _with_serving(outcome, settings, module)


def check_overrides(module: ModuleType, settings: PipelineSettings) -> None:
    """Builds the pipeline once before anything runs, so a `--set` the pipeline does not
    declare, or a bad value, is an error now (the pipeline raises it), and a pipeline that
    would ignore the overrides is refused rather than run unchanged."""
    target = getattr(module, "TARGET", None)
    what = f"pipeline {settings.pipeline_name!r}"
    if target is not None and not target.project_form:
        raise ConfigError(
            f"--set: {what} is a stock TFX pipeline function; Beamline cannot change its "
            "settings. Change the value in its file, or write it in the project form "
            "(create_pipeline(settings) returning tabular_pipeline(settings, spec)), which "
            "takes --set."
        )
    os.environ.setdefault(NO_USER_MODULE_WHEELS, "1")
    pipeline = module.create_pipeline(settings)
    if not getattr(pipeline, OVERRIDES_APPLIED, False):
        raise ConfigError(
            f"--set: {what} does not take overrides: its create_pipeline(settings) builds the "
            "DAG without beamline_components.tabular_pipeline.tabular_pipeline, which applies "
            "them, so the run would ignore them. Change the value in the pipeline file, or "
            "return tabular_pipeline(settings, spec) from it."
        )


def _code_files(project: project_mod.Project, module: ModuleType) -> list[tuple[str, Path]]:
    """The code that defines the run, named as a checkout writes it: the project's pipeline
    definitions, module files, custom components and schemas (what the fast cache's fingerprint
    reads), and a pipeline module outside them."""
    files = {
        f"{d.name}/{f.relative_to(d).as_posix()}": f
        for d in fast_cache.project_sources(project)
        for f in fast_cache.source_files([d])
    }
    path = Path(getattr(module, "__file__", "") or "")
    if path.is_file() and path.resolve() not in {f.resolve() for f in files.values()}:
        files[f"pipeline/{path.name}"] = path
    return sorted(files.items())


def _keep_versions(
    settings: PipelineSettings, workspace, data, code: list[tuple[str, Path]],
    run_id: str, out: TextIO,
) -> None:
    """Keeps the run's input files and code by content, then names both on its record, before
    any node reads them (beamline.versions). A store that cannot be written costs the run its
    version record, never the run itself: the reason is printed."""
    if not settings.keep_versions:
        return
    from beamline.versions.record import keep_run

    try:
        kept = keep_run(workspace.layout, data.root, data.files, code, data.span,
                        [span for span, _ in data.extra_spans],
                        name_on=(workspace.store, run_id))
    except Exception as exc:  # noqa: BLE001 - see the docstring
        logging.getLogger("beamline").warning("versions not kept: %s", exc)
        out.write(f"beamline: data and code versions not kept: {_message(exc)}\n")
        return
    out.write(f"beamline: {kept.describe()}\n")


def memory_budget(limit_text: str | None) -> MemoryBudget:
    """The run's memory budget from --memory-limit, else $BEAMLINE_MEMORY_LIMIT."""
    from beamline.runner.memory import budget_for

    if limit_text:
        return budget_for(limit_text, "--memory-limit")
    return budget_for(os.environ.get(MEMORY_LIMIT_ENV), f"${MEMORY_LIMIT_ENV}")


@dataclass
class _RunEnd:
    """What the memory guard needs to end the run on its own: record, clean, say, exit."""

    layout: RootLayout
    pipeline: str
    digest: str
    tmp_dir: Path
    console_err: TextIO

    def out_of_memory(self, compiled, message: str) -> None:
        """Records the run and its unfinished executions as failed, removes their outputs and
        the run's temporary files, prints `message` and ends the process (exit 7)."""
        import shutil

        logging.getLogger("beamline").error("%s", message)
        _record_failed(compiled, self.pipeline, self.digest, message, unfinished_in=self.layout)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.console_err.write(f"error: {message}\n")
        self.console_err.flush()
        logging.shutdown()
        os._exit(OutOfMemory.exit_code)


def _data_input(request: RunRequest, module: ModuleType):
    """What the run reads: CSVs (and spans) for Beamline's pipelines; a stock pipeline's own
    ExampleGen may read any format, so its data directory's files are taken as they are."""
    target = getattr(module, "TARGET", None)
    if target is not None and request.data is not None:
        from beamline.runner.run_targets import check_data_option

        check_data_option(target)
    source = request.data or Path(module.default_data_root())
    if target is not None and not target.project_form:
        from beamline.data.files import stock_input

        return stock_input(source, request.span, request.span_range)
    return resolve_input(source, span_pattern_of(module), request.span, request.span_range)


def _module_source(module: ModuleType, project: project_mod.Project) -> str:
    """A pipeline module outside the project's pipelines (not in the fingerprint's source
    files) by content: a FILE.py target's whole directory (its module files live there)."""
    target = getattr(module, "TARGET", None)
    if target is not None:
        from beamline.runner.run_targets import source_digest

        return source_digest(target)
    path = Path(getattr(module, "__file__", "") or "")
    if not path.is_file() or path.parent == project.pipelines_dir:
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _claim_run_id(workspace, request: RunRequest, push_policy: str, beam_profile: str) -> str:
    """A run id no other run in the store holds, its context created and stamped `running`
    (and with the push policy it applies and the Beam profile it runs on)."""
    from beamline.metadata.run_claim import claim_run_id
    from beamline.runner.push import stamp_policy

    store = workspace.store
    run_id = claim_run_id(
        store,
        request.pipeline,
        request.run_id,
        trigger=request.trigger,
        trigger_execution_id=request.trigger_execution_id,
        experiment=request.experiment,
        overrides=dict(request.overrides),
        beam_profile=beam_profile,
    )
    stamp_policy(store, run_id, push_policy)
    return run_id


def clean_before_sweep(request: RunRequest, out: TextIO = sys.stdout) -> None:
    """What dead runs of the pipeline left, cleaned once before a sweep's first variant (the
    sweep holds the lock, run_lock.sweep_lock; its variants, some running at once, do not
    clean)."""
    from beamline.metadata.workspace import Workspace

    _clean_after_killed_runs(
        Workspace(request.root, request.metadata, existing=False), request.pipeline, out)


def _clean_after_killed_runs(workspace, pipeline: str, out: TextIO) -> None:
    """Under the pipeline's lock: record dead runs as killed, remove what they left."""
    from beamline.runner import cleanup
    from beamline.runner.push import recover as recover_pushes

    layout = workspace.layout
    done = cleanup.remove_leftover_files(layout, pipeline)
    try:
        store = workspace.store
    except Exception as exc:  # noqa: BLE001 - the run itself reports an unusable store
        logging.getLogger("beamline").info("cleanup skipped: %s", exc)
        return
    from beamline.flink import orphans

    canceled = orphans.cancel_orphans(store)  # before the dead runs' executions are closed
    if canceled:
        out.write(f"beamline: {orphans.describe(canceled)}\n")
    killed = cleanup.record_and_clean_killed_runs(store, layout, pipeline)
    done.merge(killed)
    recovered = recover_pushes(store, layout, pipeline)
    if done.killed_runs or done.removed or done.refused:
        out.write(f"beamline: cleaned up after earlier runs: {done.describe()}\n")
    for line in recovered.describe():
        out.write(f"beamline: {line}\n")


def _with_serving(outcome: RunOutcome, settings: PipelineSettings, module) -> RunOutcome:
    outcome.serving_dir = settings.serving_dir
    outcome.sample_instance = getattr(module, "SAMPLE_INSTANCE", None)
    return outcome


def _try_replay(
    workspace, request: RunRequest, run_id: str, digest: str, out: TextIO
) -> RunOutcome | None:
    """The whole run as a cache hit without importing TensorFlow, when nothing changed."""
    from beamline.runner.outcome import fill_from_mlmd

    try:
        store = workspace.store
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


def _flink_extra(request: RunRequest):
    """The raw Beam args, completed for the flink profile (the cluster to use), and that
    cluster (a beamline.flink.profile.FlinkTarget; None for other profiles)."""
    if request.beam_profile != "flink":
        return request.beam_extra, None
    from beamline.flink.profile import flink_extra

    extra, target = flink_extra(request.beam_extra)
    return tuple(extra), target


def _flink_tag(pipeline: str, run_id: str) -> str:
    from beamline.flink.jobs import run_tag

    return run_tag(pipeline, run_id)


def _flink_preflight(workspace, beam_args: list[str], target, out: TextIO) -> None:
    """Frees slots held by dead runs' jobs, then checks the cluster before any node runs."""
    from beamline.flink import cluster_checks, orphans

    try:
        canceled = orphans.cancel_orphans(workspace.store, also=[target.master])
    except Exception as exc:  # noqa: BLE001 - the run itself reports an unusable store
        logging.getLogger("beamline").info("flink orphans not checked: %s", exc)
        canceled = []
    if canceled:
        out.write(f"beamline: {orphans.describe(canceled)}\n")
    out.write("beamline: flink preflight (REST API, slots, runner jar, worker pool, a "
              "one-element job)...\n")
    out.flush()
    proven = target.home.preflight_proven if target.home is not None else None
    summary = cluster_checks.check(beam_args, proven=proven, pool_identity=target.pool_identity)
    out.write(f"beamline: flink preflight passed: {summary}\n")
    out.flush()


def _node_launcher(compiled, pipeline: str, flink_master: str):
    """node_id -> state: TFX's launch, inside a Flink job tracker on the flink profile."""
    from beamline.runner import tfx_nodes

    if not flink_master:
        return lambda node_id: tfx_nodes.launch_node(compiled, node_id)
    from beamline.runner.flink_jobs import FlinkJobs

    jobs = FlinkJobs(compiled, pipeline, flink_master)

    def launch(node_id: str) -> str:
        with jobs.node(node_id):
            return tfx_nodes.launch_node(compiled, node_id, jobs.node_args(node_id))

    return launch


def _run_nodes(
    module, settings, request, run_id: str, log_path: Path, console: TextIO, end: _RunEnd,
    budget, push_policy: str, flink_master: str, workspace,
) -> RunOutcome:
    from beamline.runner import tfx_nodes

    autograph_skips_tf_keras()
    deterministic_ops_if_asked()
    # Module files are imported in place, as on Kubeflow/Vertex, instead of being built into a
    # wheel at compile time and pip-installed by every executor that uses them (~3 s each);
    # their content digest is in the components' custom_config, so caching still sees edits.
    os.environ.setdefault(NO_USER_MODULE_WHEELS, "1")
    try:
        pipeline = module.create_pipeline(settings)
        for line in getattr(module, "RUN_NOTES", ()):
            console.write(line + "\n")
        # Recurring retrains (loop, schedule) reuse the last search; a manual run keeps TFX's
        # own behaviour, where an unchanged Tuner is simply cached.
        if settings.enable_tuning and request.trigger not in (None, TriggerKind.MANUAL):
            pipeline = _reuse_tuned(module, settings, request, pipeline, console, workspace)
        compiled = tfx_nodes.compile_pipeline(pipeline, run_id)
    except BaseException as exc:
        # The claimed run must not stay `running`: nothing of it will ever run.
        unbuilt = _Unbuilt(settings.metadata_connection_config, run_id)
        _record_failed(unbuilt, request.pipeline, end.digest, f"not built: {_message(exc)}")
        raise
    outcome = RunOutcome(request.pipeline, compiled.run_id, log_path=str(log_path))
    console.write(f"beamline: run id {compiled.run_id}\n")

    events: dict[str, NodeEvent] = {}
    digest = end.digest
    with tfx_nodes.beam_dependencies(list(settings.beam_pipeline_args)), Heartbeat(
        compiled, request.pipeline, str(log_path)
    ) as heartbeat, (
        # Under `beamline run` the watchdog process guards memory; in-process callers get a thread.
        contextlib.nullcontext() if request.report_fd is not None else MemoryGuard(
            budget,
            heartbeat.running_nodes,
            lambda message: end.out_of_memory(compiled, message),
            advice_for(settings.beam_pipeline_args),
        )
    ):
        try:
            with Progress(console) as progress:
                progress.width = max(len(n) for n in compiled.nodes)

                def on_event(event: NodeEvent) -> None:
                    progress.event(event)
                    if event.state == RUNNING:
                        heartbeat.node_started(event.node_id)
                    else:
                        heartbeat.node_ended(event.node_id)
                    if event.state == FAILED and event.error is not None:
                        logging.getLogger("beamline").error(
                            "node %s failed", event.node_id, exc_info=event.error
                        )

                launch_node = _node_launcher(compiled, request.pipeline, flink_master)
                with _deferred_push():
                    events = run_dag(
                        compiled.upstream(),
                        lambda node_id: _launch(
                            compiled, node_id, end.layout, push_policy, launch_node
                        ),
                        request.max_parallel,
                        on_event,
                    )
        except BaseException as exc:  # Ctrl-C: the record says so before the run ends
            _mark_interrupted(compiled, request.pipeline, digest, exc)
            raise
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


@contextlib.contextmanager
def _deferred_push():
    """While nodes run, the atomic Pusher stages versions and this runner makes them visible
    once recorded (beamline.runner.push)."""
    from beamline.settings import DEFERRED_PUSH_ENV

    before = os.environ.get(DEFERRED_PUSH_ENV)
    os.environ[DEFERRED_PUSH_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DEFERRED_PUSH_ENV, None)
        else:
            os.environ[DEFERRED_PUSH_ENV] = before


def _launch(
    compiled, node_id: str, layout: RootLayout, push_policy: str, launch_node
) -> str:
    """One node through `launch_node` (TFX's launcher); after a Pusher, its push made visible
    and labelled."""
    from beamline.runner import tfx_nodes
    from beamline.runner.scheduler import COMPLETE

    state = launch_node(node_id)
    if state == COMPLETE and tfx_nodes.is_pusher(compiled, node_id):
        from beamline.runner.push import finish_run_push
        from beamline.runner.serialized_mlmd import SerializedMetadata

        pipeline = compiled.ir.pipeline_info.id
        with SerializedMetadata(compiled.connection_config) as handle:
            for line in finish_run_push(
                handle.store, layout, pipeline, compiled.run_id, push_policy
            ):
                logging.getLogger("beamline").info("push policy %s: %s", push_policy, line)
    return state


def _reuse_tuned(
    module, settings, request: RunRequest, pipeline, console: TextIO, workspace
):
    """The pipeline with the last search's hyperparameters imported instead of a Tuner, when
    they still fit (same model module and schema) and --tune did not ask for a new search."""
    import dataclasses

    from beamline.runner.tuned import earlier_search, module_sha_of

    if request.retune:
        console.write("beamline: tuning: --tune asks for a new search\n")
        return pipeline
    module_sha = module_sha_of(pipeline)
    if module_sha is None:  # this pipeline has no Tuner
        return pipeline
    reuse = earlier_search(workspace.store, request.pipeline, module_sha, settings.schema_path)
    console.write(f"beamline: {reuse.why}\n")
    if reuse.uri is None:
        return pipeline
    return module.create_pipeline(dataclasses.replace(settings, hyperparameters_uri=reuse.uri))


@dataclass
class _Unbuilt:
    """A run whose pipeline could not be built or compiled, as _record_failed reads it."""

    connection_config: object
    run_id: str
    nodes: tuple = ()


def _mark_interrupted(compiled, pipeline: str, digest: str, exc: BaseException) -> None:
    reason = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else _message(exc)
    _record_failed(compiled, pipeline, digest, reason)


def _record_failed(
    compiled, pipeline: str, digest: str, reason: str, unfinished_in: RootLayout | None = None
) -> None:
    """Records the run failed with `reason`; with `unfinished_in`, also its unfinished executions
    (FAILED, outputs removed: nothing will finish them). Never raises: the failure itself is
    what the user must see."""
    from beamline.runner import cleanup
    from beamline.runner.serialized_mlmd import SerializedMetadata

    try:
        with SerializedMetadata(compiled.connection_config) as handle:
            cleanup.record_failed(
                handle.store, unfinished_in, pipeline, compiled.run_id, digest, reason,
                len(compiled.nodes),
            )
    except Exception as err:  # noqa: BLE001 - see the docstring
        logging.getLogger("beamline").warning("run end not recorded: %s", err)


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

