"""One live run per pipeline and run root: an exclusive lock file, released by the kernel.

`flock` is held for the whole run, so a run killed with -9 frees it at once (no stale lock to
clean), and a second `beamline run` of the same pipeline into the same root stops with a clear
message instead of sharing log files, output directories and the push.

A sweep (`beamline run --set NAME=V1,V2 --jobs N`) holds the lock once for all its variants
(`sweep_lock`): the variants it runs in child processes inherit the locked file description
(its number in SWEEP_LOCK_ENV) and run under it, so no other run of the pipeline can start
between or beside them, and the lock is freed only when the sweep and every child have ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from beamline.errors import RunInProgress
from beamline.metadata.liveness import this_process
from beamline.settings import RootLayout

# The number of the sweep's locked file description, in the environment of its variants.
SWEEP_LOCK_ENV = "BEAMLINE_SWEEP_LOCK_FD"


def lock_path(layout: RootLayout, pipeline: str) -> Path:
    return layout.locks_dir / f"{pipeline}.lock"


class PipelineLock:
    """Context manager: holds `<root>/locks/<pipeline>.lock` or raises RunInProgress."""

    def __init__(self, layout: RootLayout, pipeline: str, run_id: str) -> None:
        self.path = lock_path(layout, pipeline)
        self.pipeline = pipeline
        self.run_id = run_id
        self._fd: int | None = None
        # True: a sweep holds the lock and this run is one of its variants (see the module).
        self.shared = False

    @property
    def fd(self) -> int | None:
        """The locked descriptor (None when a sweep holds the lock for this run)."""
        return self._fd

    @property
    def cleans(self) -> bool:
        """Whether this run may clean what dead runs left: not when it is a sweep's variant
        (the sweep cleaned before its first variant; its others may be running now)."""
        return not self.shared

    def __enter__(self) -> PipelineLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if _sweep_fd(self.path) is not None:
            self.shared = True
            return self
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
        """Names the run holding the lock, once its id is known (claimed in MLMD); a sweep's
        variant leaves the sweep named."""
        self.run_id = run_id
        if not self.shared:
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


@contextlib.contextmanager
def sweep_lock(layout: RootLayout, pipeline: str, experiment: str) -> Iterator[PipelineLock]:
    """Holds the pipeline's lock for a whole sweep: every PipelineLock of the pipeline taken in
    this process, or in a child started with `pass_fds=(SWEEP_LOCK_ENV's fd,)` and this
    environment, runs under it (RunInProgress if another run holds it)."""
    before = os.environ.get(SWEEP_LOCK_ENV)
    lock = PipelineLock(layout, pipeline, f"experiment {experiment}").__enter__()
    os.set_inheritable(lock.fd, True)
    os.environ[SWEEP_LOCK_ENV] = str(lock.fd)
    try:
        yield lock
    finally:
        if before is None:
            os.environ.pop(SWEEP_LOCK_ENV, None)
        else:
            os.environ[SWEEP_LOCK_ENV] = before
        # Closed, not unlocked: a variant still running in a child (the sweep interrupted)
        # keeps the lock until it ends too.
        os.close(lock.fd)
        lock._fd = None


def _sweep_fd(path: Path) -> int | None:
    """The sweep's locked descriptor of `path` this process holds, if any (the environment
    may name a descriptor of another pipeline's or root's lock, or one already closed)."""
    text = os.environ.get(SWEEP_LOCK_ENV, "")
    if not text.isdigit():
        return None
    try:
        held, wanted = os.fstat(int(text)), os.stat(path)
    except OSError:
        return None
    return int(text) if (held.st_dev, held.st_ino) == (wanted.st_dev, wanted.st_ino) else None


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
