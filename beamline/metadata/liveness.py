"""Is the process that runs a pipeline still alive? (pid + host + process start time)

The runner stamps its identity on the run's `pipeline_run` context and refreshes a heartbeat
while it runs (beamline.runner.heartbeat). A reader decides from those stamps alone:
- same host: the pid must exist *and* have the recorded start time (pids are reused);
- another host (a shared MySQL store): the heartbeat must be recent.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from beamline.metadata import run_context as rc

HEARTBEAT_SECONDS = 10.0
# A remote runner whose heartbeat is older than this is presumed dead.
STALE_AFTER_SECONDS = 120.0


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    host: str
    start: str  # the process's start time in clock ticks since boot ("" where unknown)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the parenthesised command name (which may hold spaces): field 3
    (state) first. None when the process does not exist or there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def process_start(pid: int) -> str:
    """Start time of `pid` (Linux /proc; "" elsewhere or when the process does not exist)."""
    fields = _stat_fields(pid)
    # Field 22 (starttime).
    return fields[19] if fields is not None and len(fields) > 19 else ""


def _exited(pid: int) -> bool:
    """True for a process that has exited and waits to be reaped (Z, zombie) or is being torn
    down (X, dead): its pid still answers kill(0), but nothing runs any more."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("Z", "X", "x")


def this_process() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(pid, socket.gethostname(), process_start(pid))


def pid_alive(pid: int, start: str) -> bool:
    """True when `pid` runs and (if known) started at `start`. A process that has exited but
    is not yet reaped (a zombie: right after kill -9, until its parent waits) is not alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _exited(pid):
        return False
    return not start or process_start(pid) == start


def now_ms() -> int:
    return int(time.time() * 1000)


def runner_alive(
    properties: Mapping[str, Any],
    at_ms: int | None = None,
    host: str | None = None,
) -> bool | None:
    """Whether the runner that stamped `properties` still runs; None when it stamped nothing."""
    if not properties.get(rc.RUNNER_PID):
        return None
    pid = int(properties[rc.RUNNER_PID])
    runner_host = str(properties.get(rc.RUNNER_HOST) or "")
    if runner_host == (host or socket.gethostname()):
        return pid_alive(pid, str(properties.get(rc.RUNNER_START) or ""))
    beat = int(properties.get(rc.HEARTBEAT_MS) or 0)
    at_ms = now_ms() if at_ms is None else at_ms
    return at_ms - beat <= STALE_AFTER_SECONDS * 1000
