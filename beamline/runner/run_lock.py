"""One live run per pipeline and run root: an exclusive lock file, released by the kernel.

`flock` is held for the whole run, so a run killed with -9 frees it at once (no stale lock to
clean), and a second `beamline run` of the same pipeline into the same root stops with a clear
message instead of sharing log files, output directories and the push.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from beamline.errors import RunInProgress
from beamline.metadata.liveness import this_process
from beamline.settings import RootLayout


def lock_path(layout: RootLayout, pipeline: str) -> Path:
    return layout.locks_dir / f"{pipeline}.lock"


class PipelineLock:
    """Context manager: holds `<root>/locks/<pipeline>.lock` or raises RunInProgress."""

    def __init__(self, layout: RootLayout, pipeline: str, run_id: str) -> None:
        self.path = lock_path(layout, pipeline)
        self.pipeline = pipeline
        self.run_id = run_id
        self._fd: int | None = None

    def __enter__(self) -> PipelineLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunInProgress(
                f"Pipeline {self.pipeline!r} is already running in this run root "
                f"({holder}; lock {self.path}). Runs of one pipeline into one root are "
                "serialized: wait for it to finish, or use another --root."
            ) from None
        self._fd = fd
        self._write_holder()
        return self

    def record_run(self, run_id: str) -> None:
        """Names the run holding the lock, once its id is known (claimed in MLMD)."""
        self.run_id = run_id
        self._write_holder()

    def _write_holder(self) -> None:
        me = this_process()
        os.ftruncate(self._fd, 0)
        os.pwrite(
            self._fd,
            json.dumps({"pid": me.pid, "host": me.host, "run_id": self.run_id}).encode(),
            0,
        )

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return "holder unknown"
    if not data:
        return "holder unknown"
    return f"run {data.get('run_id')}, pid {data.get('pid')} on {data.get('host')}"


def is_held(layout: RootLayout, pipeline: str) -> bool:
    """True while a live process holds the pipeline's lock (checked without taking it for long)."""
    path = lock_path(layout, pipeline)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
