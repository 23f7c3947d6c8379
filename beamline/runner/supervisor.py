"""`beamline run` as two processes: a small watchdog parent, and the run in a child.

The in-process memory guard (beamline.runner.memory_guard) is a thread; while in-memory Beam
holds the GIL in long C calls it samples every few seconds, and a real 2.5 GiB cgroup run was
OOM-killed by the kernel between two samples. The watchdog shares no GIL and imports no
TensorFlow: it samples the run's process tree every WATCHDOG_SAMPLE_SECONDS and, when the run
outgrows its budget, SIGKILLs the run's process group, records the run and its unfinished
executions as failed with one paragraph naming the node(s) and what to change, removes what
they left, prints the paragraph and exits 7 (beamline.errors.OutOfMemory). Should a burst
still beat it (faster than one interval), the watchdog, being small, is not what the kernel
kills: it sees the run die of SIGKILL while the kernel's OOM-kill counter moved, and records and
says the same, naming the kernel.

Otherwise the parent only relays: signals to the child, the child's exit status to the shell.
The child runs in its own process group (so a terminal's Ctrl-C reaches it once, through the
parent) and dies with the parent (PR_SET_PDEATHSIG): `kill -9` of `beamline run` still kills
the run. The child tells the parent its run id etc. over a pipe, once it has claimed one.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from beamline.errors import OutOfMemory
from beamline.runner.memory import (
    MemoryBudget,
    MemorySample,
    oom_kill_count,
    over_budget,
    plausible_oom_victim,
    take_sample,
)
from beamline.runner.memory_guard import describe, describe_kernel_kill
from beamline.settings import WATCHDOG_SAMPLE_SECONDS, RootLayout

_PR_SET_PDEATHSIG = 1
# (running nodes, advice, recorded) -> the paragraph that says what happened.
MessageFor = Callable[[list[str], str, bool], str]
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# This process's pid if it is a run's child (set right after the fork: a fact about this
# process, not configuration).
_child_pid = 0


@dataclass(frozen=True)
class Watched:
    """What the watchdog needs to record a run it stopped (the run id comes from the child)."""

    pipeline: str
    layout: RootLayout
    metadata: str | None  # the --metadata URI (None: SQLite under the root)
    budget: MemoryBudget


@dataclass(frozen=True)
class RunReport:
    """What the child reports once its run id is claimed."""

    run_id: str
    digest: str
    advice: str
    # On the flink profile: the cluster's REST endpoint and the run's job-name prefix, so that
    # the watchdog can cancel the run's live Flink jobs when the run dies or is interrupted.
    flink_master: str = ""
    flink_tag: str = ""


def report_run(fd: int | None, report: RunReport) -> None:
    """Child side: tells the watchdog which run it is (no-op when not supervised)."""
    if fd is None:
        return
    line = json.dumps(report.__dict__).encode() + b"\n"
    try:
        os.write(fd, line)
    except OSError:  # the watchdog is gone; PR_SET_PDEATHSIG ends this process soon
        pass


def exit_child_now(code: int) -> None:
    """In the run's child, once everything is recorded and printed: flush and leave without
    the interpreter's teardown of TensorFlow, Beam and gRPC objects (2.4 s after a penguin
    run, measured). Anywhere else: returns, and the caller exits normally."""
    if os.getpid() != _child_pid:
        return
    import logging

    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def supervise(watched: Watched) -> int | None:
    """Forks. Returns in the child only, with the report pipe's write end (None when the
    platform has no PR_SET_PDEATHSIG: then there is no watchdog and nothing forks). The parent
    watches until the child ends and exits with its status."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return None  # no PR_SET_PDEATHSIG; or threads, which a fork does not copy safely
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        global _child_pid
        _child_pid = os.getpid()
        os.close(read_end)
        os.setpgid(0, 0)
        _die_with_parent(parent)
        return write_end
    os.close(write_end)
    try:
        os.setpgid(child, child)  # also here: whichever of the two runs first
    except OSError:
        pass
    code = Watchdog(watched, child, read_end).watch()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(128 + signal.SIGKILL)


def relay(status: int) -> int:
    """The child's exit code; when a signal killed it, this process dies of the same one."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        sys.stdout.flush()
        sys.stderr.flush()
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return 128 + signum  # a signal whose default action is not to end the process
    return os.waitstatus_to_exitcode(status)


class Watchdog:
    def __init__(self, watched: Watched, child: int, reports: int) -> None:
        self._watched = watched
        self._child = child
        self._reports: int | None = reports
        self._buffer = b""
        self.report: RunReport | None = None
        self._last_sample: MemorySample | None = None
        self._oom_kills_before = oom_kill_count()

    def watch(self) -> int:
        """Returns the exit code for the shell; a child killed by a signal is relayed by
        dying of the same signal, so callers see what they would have without the watchdog."""
        for signum in _FORWARDED:
            signal.signal(signum, self._forward)
        signal.signal(signal.SIGTSTP, self._suspend)
        signal.signal(signal.SIGCONT, self._forward)
        while True:
            pid, status = os.waitpid(self._child, os.WNOHANG)
            if pid:
                self._cancel_flink_jobs(status)
                if self._killed_by_kernel(status):
                    return self._report_kernel_kill()
                return relay(status)
            self._read_reports(WATCHDOG_SAMPLE_SECONDS)
            try:
                sample = take_sample(self._child)  # the run's tree; this process is ~50 MiB
            except Exception:  # noqa: BLE001 - an unreadable /proc must not end the run
                continue
            if sample.tree_rss:  # not a zombie's
                self._last_sample = sample
            why = over_budget(sample, self._watched.budget)
            if why is not None:
                return self._stop(sample, why)

    def _cancel_flink_jobs(self, status: int, stopping: bool = False) -> None:
        """A run that did not end well (interrupted, killed, failed) or is being stopped
        (`stopping`: a forwarded Ctrl-C/SIGTERM) leaves no Flink job holding slots: its live
        jobs are canceled by name (PATCH /jobs/<id>?mode=cancel)."""
        if not stopping:
            self._read_reports(0)
        report = self.report
        if report is None or not report.flink_master or (
            not stopping and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        ):
            return
        from beamline.flink.jobs import cancel_run

        canceled = cancel_run(report.flink_master, report.flink_tag)
        if canceled:
            sys.stderr.write(f"beamline: canceled the run's live Flink job(s) on "
                             f"{report.flink_master}: {', '.join(canceled)}\n")

    def _forward(self, signum, _frame) -> None:
        try:
            os.killpg(self._child, signum)
        except ProcessLookupError:
            pass
        if signum in _FORWARDED:
            # The run waits for its running nodes to end before it exits: a node waiting on a
            # Flink job would hold the run (and the job its slots) until the job finished.
            self._cancel_flink_jobs(0, stopping=True)

    def _suspend(self, signum, _frame) -> None:
        """Ctrl-Z: stop the run's group, then this process (the shell's `fg` continues both)."""
        self._forward(signal.SIGTSTP, None)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)
        signal.signal(signal.SIGTSTP, self._suspend)

    def _read_reports(self, timeout: float) -> None:
        if self._reports is None:
            time.sleep(timeout)
            return
        try:
            ready, _, _ = select.select([self._reports], [], [], timeout)
        except InterruptedError:
            return
        if not ready:
            return
        chunk = os.read(self._reports, 65536)
        if not chunk:  # the child closed its end (it exits soon): just wait for it
            os.close(self._reports)
            self._reports = None
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                self.report = RunReport(**json.loads(line))
            except (ValueError, TypeError):
                pass

    def _stop(self, sample: MemorySample, why: str) -> int:
        """Kills the run, records it, says so: the paragraph on stderr, exit 7."""
        try:
            os.killpg(self._child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(self._child, 0)
        self._cancel_flink_jobs(status)
        if os.WIFEXITED(status):  # it ended on its own first (its own guard, or done)
            return relay(status)
        return self._record_and_say(
            lambda running, advice, recorded: describe(sample, why, running, advice, recorded)
        )

    def _killed_by_kernel(self, status: int) -> bool:
        """SIGKILLed while the kernel's OOM killer counter moved (the kernel was faster than
        the samples: a burst within WATCHDOG_SAMPLE_SECONDS), and this run was a plausible
        victim (the counter also counts other jobs' OOM kills)."""
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            return False
        after = oom_kill_count()
        moved = None not in (after, self._oom_kills_before) and after > self._oom_kills_before
        return moved and plausible_oom_victim(self._last_sample, self._watched.budget)

    def _report_kernel_kill(self) -> int:
        try:  # Beam workers outlive a runner the kernel killed
            os.killpg(self._child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        last = self._last_sample
        return self._record_and_say(
            lambda running, advice, recorded: describe_kernel_kill(last, running, advice, recorded)
        )

    def _record_and_say(self, message_for: MessageFor) -> int:
        """Records the dead run failed with the message, prints it, returns exit code 7."""
        self._read_reports(0)
        report = self.report
        running: list[str] = []
        recorded = False
        if report is not None:
            running, recorded = record_stopped(self._watched, report, message_for)
        message = message_for(running, report.advice if report else "", recorded)
        sys.stderr.write(f"\nerror: {message}\n")
        return OutOfMemory.exit_code


def record_stopped(
    watched: Watched, report: RunReport, message_for: MessageFor
) -> tuple[list[str], bool]:
    """Records the stopped run as failed with `message_for(running nodes, advice, True)`
    (unfinished executions too, their outputs removed) and removes its temporary files; returns
    the nodes that were running and whether the record was written. Never raises: the
    message on the terminal matters more than the record, and the next run records a run it
    finds dead anyway."""
    from beamline.metadata import run_context as rc
    from beamline.metadata.connection import connection_config, open_store
    from beamline.runner import cleanup
    from beamline.runner.push import recover as recover_pushes
    from beamline.runner.run_lock import PipelineLock
    from beamline.runner.run_tmp import run_tmp_dir

    layout = watched.layout
    shutil.rmtree(run_tmp_dir(layout, watched.pipeline, report.run_id), ignore_errors=True)
    running: list[str] = []
    try:
        store = open_store(connection_config(watched.metadata, layout.metadata_path))
        ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, report.run_id)
        if ctx is None:
            return running, False
        props = rc.properties_of(ctx)
        running = [n for n in str(props.get(rc.CURRENT_NODES) or "").split(",") if n]
        reason = message_for(running, report.advice, True)
        with PipelineLock(layout, watched.pipeline, report.run_id):
            cleanup.record_failed(
                store, layout, watched.pipeline, report.run_id, report.digest, reason,
                int(props.get(rc.NODES_TOTAL) or 0),
            )
            cleanup.remove_leftover_files(layout, watched.pipeline)
            recover_pushes(store, layout, watched.pipeline)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        sys.stderr.write(f"error: the stopped run was not recorded: {exc}\n")
        return running, False
    return running, True

