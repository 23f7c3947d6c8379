"""Stops a run that is about to run out of memory, with a word, before the kernel kills it.

A background thread samples the run's process tree (Beam's worker processes included) and what
the machine or cgroup has left (beamline.runner.memory). When the budget is exceeded it kills
the Beam workers (their memory comes back at once), builds one paragraph naming the node(s)
running and what to change, and hands it to `on_exceeded`, which records the run as failed and
ends the process: a node thread cannot be stopped from outside, and in-memory Beam holds the
data in this very process, so leaving is the only way to give the memory back.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence

from beamline.runner.memory import MemoryBudget, MemorySample, gib, over_budget, take_sample
from beamline.settings import MEMORY_SAMPLE_SECONDS

_log = logging.getLogger("beamline")


def advice_for(beam_args: Sequence[str]) -> str:
    """What to change, given how Beam runs now."""
    if "--direct_running_mode=in_memory" in beam_args:
        return (
            "In-memory Beam (--beam direct, which auto picks for small inputs) holds a node's "
            "data in this one process: re-run with --beam direct-multi, or on a distributed "
            "runner (--beam dataflow, flink or spark), or give the run more memory "
            "(--memory-limit)."
        )
    if "--direct_running_mode=multi_processing" in beam_args:
        return (
            "Every multi-processing Beam worker holds its share of the data: re-run with fewer "
            "workers (--beam-arg=--direct_num_workers=1), on a distributed runner (--beam "
            "dataflow, flink or spark), or with more memory (--memory-limit)."
        )
    return (
        "The node's work ran in this process: give the run more memory (--memory-limit) or move "
        "it to a bigger machine."
    )


def describe(
    sample: MemorySample, why: str, running: Sequence[str], advice: str, recorded: bool = True
) -> str:
    """One paragraph: which node(s) ran, how much the run held, what happened, what to do.

    Nodes share the process (and Beam's workers), so memory cannot be split between nodes that
    run at once: all of them are named."""
    return (
        f"out of memory {_where(running)}: {_held_by(sample)} {why}. The run was stopped before "
        f"the kernel's out-of-memory killer acted{_record(recorded, ', and')}. {advice}"
    )


def describe_kernel_kill(
    sample: MemorySample | None, running: Sequence[str], advice: str, recorded: bool = True
) -> str:
    """The paragraph for a run the kernel's out-of-memory killer took first (`sample`: the
    watchdog's last, if any)."""
    last = ""
    if sample is not None:
        last = (
            f" At the watchdog's last sample {_held_by(sample)} held {gib(sample.tree_rss)}, "
            f"with {gib(sample.available)} left of {sample.whose} {gib(sample.total)}: it grew "
            "faster than the watchdog samples."
        )
    return (
        f"out of memory {_where(running)}: the kernel's out-of-memory killer killed the run."
        f"{last}{_record(recorded, ' The run')}. {advice}"
    )


def _record(recorded: bool, lead: str) -> str:
    return f"{lead} is recorded as failed" if recorded else f"{lead} was not recorded"


def _where(running: Sequence[str]) -> str:
    if not running:
        return "between nodes"
    if len(running) == 1:
        return f"in node {running[0]}"
    return f"while nodes {', '.join(running[:-1])} and {running[-1]} ran"


def _held_by(sample: MemorySample) -> str:
    workers = sample.processes - 1
    held_by = "the run's process"
    if workers:
        held_by += f" and its {workers} Beam worker process(es)"
    return held_by


class MemoryGuard:
    def __init__(
        self,
        budget: MemoryBudget,
        running_nodes: Callable[[], list[str]],
        on_exceeded: Callable[[str], None],
        advice: str,
        interval: float = MEMORY_SAMPLE_SECONDS,
        pid: int | None = None,
    ) -> None:
        """Watches the process tree under `pid` (default: this process)."""
        self._budget = budget
        self._running_nodes = running_nodes
        self._on_exceeded = on_exceeded
        self._advice = advice
        self._interval = interval
        self._pid = pid or os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MemoryGuard:
        self._thread = threading.Thread(target=self._watch, name="memory-guard", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                sample = take_sample(self._pid)
            except Exception as exc:  # noqa: BLE001 - an unreadable /proc must not fail runs
                _log.warning("memory guard stopped: %s", exc)
                return
            why = over_budget(sample, self._budget)
            if why is not None and not self._stop.is_set():
                self._exceeded(sample, why)
                return
            self._stop.wait(self._interval)

    def _exceeded(self, sample: MemorySample, why: str) -> None:
        running = list(self._running_nodes())
        kill_descendants(self._pid)
        self._on_exceeded(describe(sample, why, running, self._advice))


def kill_descendants(pid: int) -> int:
    """SIGKILLs every descendant of process `pid` (Beam's workers); returns how many."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            child.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=5)
    return len(children)
