"""One loop step: resume an unfinished decision, else monitor the new window, decide, record the
decision, run the pipeline on the newest span and deliver what it blessed.

Order matters for the guarantees (docs/guides/continuous-training.md):
1. a decision whose run never finished is carried out first (its run id was recorded with it,
   so a run that started is found, never started twice);
2. a window is [end of the last decided window, now): decided once (the Trigger execution's
   name is the window, unique in MLMD);
3. the decision is written before the run starts; the run gets the trigger on its context.
The pipeline run is `beamline run` in a child process (the watchdog, the pipeline lock, the
same records): a run that fails is recorded failed by it, and the loop goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from beamline.errors import ConfigError, DataError
from beamline.faults import fault_point
from beamline.loop import triggers as tr
from beamline.loop.delivery import CANARY, deliver
from beamline.loop.policy import DEFAULT_POLICY, Signals, Verdict, decide
from beamline.loop.served import Served, newest_span, served_version
from beamline.metadata import run_context as rc
from beamline.metadata.records import Decision
from beamline.settings import RootLayout
from beamline.timefmt import format_secs

# Exit codes of `beamline loop --once` by what the step did (beamline/errors.py has the table).
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_LOCKED = 6
EXIT_DATA_QUALITY = 9
EXIT_ALERT = 12
SHORT = {"infinity_norm": "L-inf", "jensen_shannon_divergence": "JSD"}


@dataclass
class LoopRequest:
    """What `beamline loop` (or its Airflow DAG) asks each step to do, as RunRequest and
    MonitorRequest are what `run` and `monitor` ask."""

    pipeline: str
    data: Path
    requests: Path
    root: Path
    metadata: str | None = None
    policy: str = DEFAULT_POLICY
    tune: bool = True
    retune: bool = False  # --tune: a new hyperparameter search instead of reusing the last one
    push_policy: str = "live"
    on_failure: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    max_invalid_fraction: float = 0.02
    beam_profile: str = "auto"
    until: dt.datetime | None = None  # the window's end (None: now)
    # The environment the loop started with, taken before a step's monitoring imports
    # TensorFlow, TFDV and Beam, which set variables of their own in this process (TF2_BEHAVIOR,
    # KMP_DUPLICATE_LIB_OK, KMP_INIT_AT_FORK): the run a step starts gets the environment a
    # `beamline run` from the same shell gets, not the monitoring's.
    environment: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def layout(self) -> RootLayout:
        return RootLayout(self.root)

    def monitor_request(self, since: dt.datetime | None, until: dt.datetime | None):
        """The monitoring of one step's window, as `beamline monitor` would ask for it."""
        from beamline.monitor.monitor import MonitorRequest

        return MonitorRequest(
            self.pipeline, self.requests, self.layout.monitoring_dir, since, until,
            self.thresholds, self.beam_profile, self.max_invalid_fraction,
        )


@dataclass
class StepResult:
    decision: str
    message: str
    exit_code: int = EXIT_OK
    trigger_id: int | None = None
    run_id: str | None = None


def _say(out: TextIO, text: str) -> None:
    out.write(f"beamline loop: {text}\n")
    out.flush()


def _workspace(config: LoopRequest):
    """The step's run root and store: one MLMD open for the whole step."""
    from beamline.metadata.workspace import Workspace

    return Workspace(config.root, config.metadata)


def run_step(config: LoopRequest, out: TextIO) -> StepResult:
    with _workspace(config) as workspace:
        store = workspace.store
        decided = tr.triggers(store, config.pipeline)
        pending = [t for t in decided if t.pending]
        if pending:
            return _resume(config, store, pending[0], out)
        return _new_window(config, workspace, decided, out, None, carry_out=True)


def decide_step(
    config: LoopRequest,
    out: TextIO,
    run_id: str,
    settle: Callable[[object, tr.TriggerRecord], None],
) -> StepResult:
    """One step for an orchestrator that runs the pipeline itself (Airflow): monitors, decides
    and records the decision as `run_step` does, with the run id `run_id`, but starts no run.

    A retrain decision comes back as RETRAIN with its trigger id (the orchestrator runs the
    pipeline, then concludes it with `record_failure`/`record_delivery`). A decision this same
    run already recorded (the orchestrator retried the task) is returned again; a pending
    decision of another run (its orchestrator run ended without concluding) is handed to
    `settle(store, trigger)` first, so it never blocks later windows.
    """
    with _workspace(config) as workspace:
        store = workspace.store
        decided = tr.triggers(store, config.pipeline)
        for t in decided:
            if t.pending and t.run_id == run_id:
                _say(out, f"trigger #{t.execution_id} decided {t.decision} for this run "
                          f"already: {t.reason}")
                return StepResult(Decision.RETRAIN, t.reason, EXIT_OK, t.execution_id, run_id)
        for t in decided:
            if t.pending:
                settle(store, t)
        return _new_window(config, workspace, decided, out, run_id, carry_out=False)


def _new_window(
    config: LoopRequest, workspace, decided: list[tr.TriggerRecord], out: TextIO,
    run_id: str | None, carry_out: bool,
) -> StepResult:
    until = int((config.until or dt.datetime.now(dt.timezone.utc)).timestamp())
    since = decided[-1].until_secs if decided else -1
    same = [t for t in decided if t.until_secs == until]
    if same or until <= since:
        t = same[0] if same else decided[-1]
        message = (
            f"the window up to {format_secs(until)} was decided already by trigger "
            f"#{t.execution_id} "
            f"({t.decision}{', run ' + t.run_id if t.run_id else ''}): nothing to do"
        )
        _say(out, message)
        return StepResult(Decision.NOTHING, message, trigger_id=t.execution_id)
    from beamline.runner.run_lock import is_held

    if is_held(config.layout, config.pipeline):
        message = (
            f"a run of {config.pipeline} is live in {config.root} (its lock is held): this step "
            "is skipped; the next step covers its window"
        )
        _say(out, message)
        return StepResult(Decision.NOTHING, message, exit_code=EXIT_LOCKED)
    return _decide_window(config, workspace, since, until, out, run_id, carry_out)


# --------------------------------------------------------------------------- monitor + decide


@dataclass
class _Watched:
    signals: Signals
    monitor_execution_id: int | None
    monitoring_result_id: int | None
    served: Served | None
    canary_note: str | None = None


def _drift_detail(version_report) -> str:
    parts = []
    for f in version_report.features:
        if not f.crossed:
            continue
        measures = [m for m in (f.skew, f.drift) if m is not None and m.crossed]
        worst = max(measures, key=lambda m: m.value - m.threshold)
        parts.append(
            f"{f.feature} {SHORT.get(worst.measure, worst.measure)} {worst.value:.2f} > "
            f"{worst.threshold:.2f}"
        )
    return (
        ", ".join(parts)
        + f" (window {format_secs(version_report.first_secs)} .. "
        f"{format_secs(version_report.last_secs)}, "
        f"{version_report.requests} request rows, version {version_report.version})"
    )


def _result_artifact(store, monitor_execution_id: int) -> int | None:
    from ml_metadata.proto import metadata_store_pb2 as pb

    for event in store.get_events_by_execution_ids([monitor_execution_id]):
        if event.type == pb.Event.OUTPUT and event.path.steps[0].key == "result":
            return event.artifact_id
    return None


def _watch(
    config: LoopRequest, workspace, since: int, until: int, timings: dict[str, float]
) -> _Watched:
    from beamline import registry
    from beamline.data.spans import span_pattern_of
    from beamline.lineage.access import graph_of
    from beamline.monitor.monitor import run_monitor
    from beamline.monitor.window import MonitorInputError, read_window

    clock = time.perf_counter()
    store = workspace.store
    graph = graph_of(workspace, config.pipeline)
    served = served_version(graph)
    if served is None:
        raise DataError(
            f"No version of pipeline {config.pipeline!r} was ever pushed in {graph.source}: the "
            "loop watches a served model. Run the pipeline once (beamline run "
            f"{config.pipeline} --data {config.data}) and serve it with --request_log_dir."
        )
    pattern = span_pattern_of(registry.load_module(config.pipeline))
    newest = newest_span(config.data, pattern)
    since_t = dt.datetime.fromtimestamp(since, dt.timezone.utc) if since >= 0 else None
    until_t = dt.datetime.fromtimestamp(until, dt.timezone.utc)
    if not os.path.isdir(config.requests):
        raise DataError(
            f"The request log directory {config.requests} does not exist. Point --requests at "
            "the directory given to `beamline serve --request_log_dir`."
        )
    timings["lineage and spans"] = time.perf_counter() - clock
    clock = time.perf_counter()
    try:
        window = read_window(config.requests, since_t, until_t)
    except MonitorInputError:
        timings["request logs"] = time.perf_counter() - clock
        since_text = format_secs(since) if since >= 0 else "the start"
        return _Watched(
            Signals([], "", "", served.span, newest,
                    no_traffic=f"no requests logged between {since_text} and {format_secs(until)}"),
            None, None, served,
        )
    timings["request logs"] = time.perf_counter() - clock
    clock = time.perf_counter()
    report = run_monitor(config.monitor_request(since_t, until_t), graph, store, window)
    timings["monitoring (statistics, comparisons, record)"] = time.perf_counter() - clock
    canary_note = None
    if config.push_policy == CANARY:
        from beamline.loop.delivery import CanaryWindow, review_canary

        canary_note = review_canary(
            store, graph, config.layout, config.pipeline, report.versions,
            CanaryWindow(
                f"{format_secs(since) if since >= 0 else 'the start'} .. {format_secs(until)}",
                config.requests, since_t, until_t,
            ),
        )
    moved = [v for v in report.versions if v.crossed]
    # The decision reads the window of the version that moved (else the newest one served).
    chosen = moved[-1] if moved else max(report.versions, key=lambda v: v.version)
    drifted = sorted({f for v in moved for f in v.crossed})
    quality = (
        "; ".join(v.quality.summary() for v in report.versions if v.data_quality)
        if not moved
        else ""
    )
    return _Watched(
        Signals(drifted, _drift_detail(chosen) if moved else "", quality, served.span, newest),
        chosen.execution_id,
        _result_artifact(store, chosen.execution_id) if chosen.execution_id else None,
        served,
        canary_note,
    )


def _decide_window(
    config: LoopRequest, workspace, since: int, until: int, out: TextIO, run_id: str | None,
    carry_out: bool,
) -> StepResult:
    from ml_metadata import errors as mlmd_errors

    store = workspace.store
    timings: dict[str, float] = {}
    watched = _watch(config, workspace, since, until, timings)
    if watched.canary_note:
        _say(out, watched.canary_note)
    clock = time.perf_counter()
    verdict: Verdict = decide(config.policy, watched.signals)
    span = -1
    if verdict.decision == Decision.RETRAIN:
        run_id = run_id or dt.datetime.now().isoformat()
        span = watched.signals.newest_span if watched.signals.newest_span is not None else -1
    try:
        trigger_id = tr.record_decision(
            store,
            config.pipeline,
            kind=verdict.kind,
            decision=verdict.decision,
            reason=verdict.reason,
            since=since,
            until=until,
            monitoring_result_id=watched.monitoring_result_id,
            monitor_execution_id=watched.monitor_execution_id,
            run_id=run_id if verdict.decision == Decision.RETRAIN else "",
            span=span,
            canary_review=watched.canary_note or "",
        )
    except mlmd_errors.AlreadyExistsError:
        message = f"the window up to {format_secs(until)} was decided by another loop just now"
        _say(out, message)
        return StepResult(Decision.NOTHING, message)
    timings["decision record"] = time.perf_counter() - clock
    _say(out, "step timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    monitor = (
        f" (monitoring #{watched.monitor_execution_id})" if watched.monitor_execution_id else ""
    )
    _say(out, f"trigger #{trigger_id}{monitor}: {verdict.decision}: {verdict.reason}")
    fault_point("loop-after-decision")
    if verdict.decision == Decision.RETRAIN:
        if not carry_out:
            return StepResult(Decision.RETRAIN, verdict.reason, EXIT_OK, trigger_id, run_id)
        trigger = tr.trigger_by_id(store, trigger_id)
        return _carry_out(config, store, trigger, out)
    code = {Decision.ALERT: EXIT_ALERT, Decision.DATA_QUALITY: EXIT_DATA_QUALITY}.get(
        verdict.decision, EXIT_OK
    )
    return StepResult(verdict.decision, verdict.reason, code, trigger_id)


# --------------------------------------------------------------------------- runs


def _run_context(store, run_id: str):
    return store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)


def _resume(config: LoopRequest, store, trigger: tr.TriggerRecord, out: TextIO) -> StepResult:
    """A decision whose run did not finish when its loop stopped (killed, power loss)."""
    context = _run_context(store, trigger.run_id)
    if context is None:
        _say(
            out,
            f"trigger #{trigger.execution_id} decided {trigger.decision} ({trigger.reason}) and "
            f"its run {trigger.run_id} never started: starting it now",
        )
        return _carry_out(config, store, trigger, out)
    from beamline.metadata.liveness import runner_alive

    props = rc.properties_of(context)
    if props.get(rc.STATE) == rc.RunState.RUNNING and runner_alive(props) is not False:
        message = (
            f"run {trigger.run_id} of trigger #{trigger.execution_id} is still running: "
            "this step waits for it"
        )
        _say(out, message)
        return StepResult(Decision.RETRAIN, message, EXIT_LOCKED, trigger.execution_id,
                          trigger.run_id)
    _say(out, f"trigger #{trigger.execution_id}: its run {trigger.run_id} ended while the loop "
              "was down; recording how")
    return _conclude(config, store, trigger, None, out)


def _run_command(config: LoopRequest, trigger: tr.TriggerRecord) -> list[str]:
    command = [
        sys.executable, "-m", "beamline", "run", config.pipeline,
        "--data", str(config.data), "--root", str(config.root),
        "--run-id", trigger.run_id, "--trigger", trigger.kind,
        "--trigger-execution", str(trigger.execution_id),
        "--beam", config.beam_profile, "--push-policy", config.push_policy,
    ]
    if trigger.span >= 0:
        command += ["--span", str(trigger.span)]
    if config.metadata:
        command += ["--metadata", config.metadata]
    if not config.tune:
        command.append("--no-tune")
    elif config.retune:
        command.append("--tune")
    return command


def _run_environment(config: LoopRequest) -> dict[str, str]:
    """The run's environment: the loop's own, as it started (see LoopRequest.environment)."""
    return dict(config.environment)


def _carry_out(config: LoopRequest, store, trigger: tr.TriggerRecord, out: TextIO) -> StepResult:
    """Runs the decided run (as `beamline run`, in a child process) and concludes it."""
    _say(out, f"run {trigger.run_id} on span {trigger.span} ({trigger.kind}): "
              + shlex.join(_run_command(config, trigger)[2:]))
    out.flush()
    started = time.perf_counter()
    proc = subprocess.run(
        _run_command(config, trigger), stdin=subprocess.DEVNULL, env=_run_environment(config)
    )
    if proc.returncode == EXIT_LOCKED and _run_context(store, trigger.run_id) is None:
        message = (
            f"a run of {config.pipeline} is live (lock held): trigger #{trigger.execution_id}'s "
            f"run {trigger.run_id} starts at the next step"
        )
        _say(out, message)
        return StepResult(Decision.RETRAIN, message, EXIT_LOCKED, trigger.execution_id)
    if proc.returncode == 0:
        from beamline.loop.saving import describe, reused_search

        reused = reused_search(store, config.pipeline, trigger.run_id)
        _say(out, describe(reused, trigger.run_id, time.perf_counter() - started))
    return _conclude(config, store, trigger, proc.returncode, out)


def _conclude(
    config: LoopRequest, store, trigger: tr.TriggerRecord, returncode: int | None, out: TextIO
) -> StepResult:
    from beamline.runner.outcome import RunOutcome, fill_from_mlmd

    context = _run_context(store, trigger.run_id)
    if context is not None:
        tr.link_run(store, trigger.execution_id, trigger.run_id)
    props = rc.properties_of(context) if context is not None else {}
    state = props.get(rc.STATE)
    if context is None or state != rc.RunState.COMPLETE or returncode not in (None, 0):
        if state == rc.RunState.RUNNING:
            state = rc.RunState.KILLED
        why = str(props.get(rc.REASON) or "") or (
            f"exit code {returncode}" if returncode is not None else "no end recorded"
        )
        message = f"run {trigger.run_id} {state or 'did not start'}: {why}"
        return record_failure(config, store, trigger, message, out)
    outcome = fill_from_mlmd(RunOutcome(config.pipeline, trigger.run_id), store)
    return record_delivery(config, store, trigger, outcome, out)


def record_failure(
    config: LoopRequest, store, trigger: tr.TriggerRecord, message: str, out: TextIO
) -> StepResult:
    """A decided run that failed: the trigger ends FAILED with `message`; --on-failure runs."""
    tr.finish(store, trigger.execution_id, message, failed=True)
    _say(out, f"trigger #{trigger.execution_id}: {message}; nothing serves differently")
    _on_failure(config, trigger, out)
    return StepResult(Decision.RETRAIN, message, EXIT_RUN_FAILED, trigger.execution_id,
                      trigger.run_id)


def record_delivery(
    config: LoopRequest, store, trigger: tr.TriggerRecord, outcome, out: TextIO
) -> StepResult:
    """A decided run that finished: its model is delivered under the push policy and the
    trigger ends COMPLETE with what serves now. `outcome` is the run's RunOutcome."""
    delivery = deliver(config.push_policy, outcome, store, config.pipeline)
    tr.finish(store, trigger.execution_id, delivery.message)
    _say(out, f"trigger #{trigger.execution_id}: {delivery.message}")
    return StepResult(Decision.RETRAIN, delivery.message, EXIT_OK, trigger.execution_id,
                      trigger.run_id)


RUN_ID_PLACEHOLDER = "{run_id}"
# What `{run_id}` becomes in each quoting context of the shell command: a reference to the run
# id (the shell's $1), never the run id itself, so no run id is ever read as shell code; "$1"
# outside quotes and $1 inside double quotes keep it one word, and inside single quotes the
# quote is closed around "$1" and reopened.
_RUN_ID_REFERENCE = {"": '"$1"', '"': "$1", "'": "'\"$1\"'"}


def on_failure_script(command: str) -> str:
    """The shell script `--on-failure CMD` runs, with the run id as its $1: each `{run_id}`
    replaced by a reference fit for its quoting context, else `"$1"` appended."""
    if RUN_ID_PLACEHOLDER not in command:
        return f'{command} "$1"'
    out: list[str] = []
    quote = ""  # the open quote: "" (none), '"' or "'"
    i = 0
    while i < len(command):
        if command.startswith(RUN_ID_PLACEHOLDER, i):
            out.append(_RUN_ID_REFERENCE[quote])
            i += len(RUN_ID_PLACEHOLDER)
            continue
        char = command[i]
        if char == "\\" and quote != "'":  # the next character is escaped: take both
            out.append(command[i:i + 2])
            i += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        out.append(char)
        i += 1
    return "".join(out)


def _on_failure(config: LoopRequest, trigger: tr.TriggerRecord, out: TextIO) -> None:
    """--on-failure CMD runs in `sh -c` with the run id as $1 (on_failure_script), the full
    environment, and $BEAMLINE_RUN_ID, $BEAMLINE_PIPELINE and $BEAMLINE_TRIGGER_EXECUTION."""
    if not config.on_failure:
        return
    env = {
        **os.environ,
        "BEAMLINE_RUN_ID": trigger.run_id,
        "BEAMLINE_PIPELINE": config.pipeline,
        "BEAMLINE_TRIGGER_EXECUTION": str(trigger.execution_id),
    }
    argv = ["sh", "-c", on_failure_script(config.on_failure), "sh", trigger.run_id]
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL)
    except OSError as exc:
        _say(out, f"--on-failure {config.on_failure!r} could not start: {exc}")
        return
    if done.returncode:
        _say(out, f"--on-failure command exited {done.returncode}")


def check_config(config: LoopRequest) -> None:
    """Bad flags, before any step: one paragraph each."""
    check_flags(config)
    check_store(config)


def check_flags(config: LoopRequest) -> None:
    """The flags alone (no store): --data and the push policy."""
    from beamline.loop.delivery import check_policy

    if not config.data.is_dir():
        raise ConfigError(
            f"--data {config.data} is not a directory. The loop reads spans from it "
            "(span-1/, span-2/ ... or the pipeline's SPAN_PATTERN); point it at the directory "
            "new spans are added to."
        )
    check_policy(config.push_policy)


def check_store(config: LoopRequest) -> None:
    """A SQLite store that does not exist: nothing ever ran there (not a transient error)."""
    from beamline.metadata.connection import sqlite_path

    sqlite = sqlite_path(config.metadata, config.layout.metadata_path)
    if sqlite is not None and not sqlite.is_file():
        # Not a transient error to retry: nothing ever ran there.
        raise DataError(
            f"No metadata store at {sqlite}: the loop watches a model a pipeline run trained and "
            f"pushed. Run it once (beamline run {config.pipeline} --data {config.data} --root "
            f"{config.root}), or point --root / --metadata at its store."
        )

