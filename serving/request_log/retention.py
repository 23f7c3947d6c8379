"""Where a request log's files may go and how much of the disk they may take.

A log is one filename prefix: its files are `<prefix>-<UTC time>-<pid>-<n>.tfrecord` and
`...outcomes.tsv` in the prefix's directory, from this process and from earlier or sibling
server processes (REST workers) logging to the same prefix. `LogRetention.make_room` keeps them
within a `LogBudget` by deleting the oldest closed ones, and touches nothing else: only regular
files whose whole name matches the log's pattern, never a symlink, a directory or another
prefix's file. Files are created private (0o600) and the directories the logger creates 0o700,
whatever the umask: request payloads are often personal data.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from beamline_serving.request_log.config import FILE_SUFFIX, LogBudget
from beamline_serving.request_log.outcomes import OUTCOME_SUFFIX

log = logging.getLogger("beamline.serving.request_log")

# The free space on the filesystem of a path (disk_free_bytes; tests pass their own).
FreeSpaceProbe = Callable[[str], int]

FILE_MODE = 0o600
DIR_MODE = 0o700
# Larger than any pid Linux hands out (2**22): a bigger number in a name is no process.
_MAX_PID = 1 << 22


def disk_free_bytes(path: str) -> int:
    """Bytes an unprivileged writer may still use on the filesystem of `path` (of its nearest
    existing parent while it does not exist yet)."""
    path = os.path.abspath(path)
    while True:
        try:
            stat = os.statvfs(path)
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                raise
            path = parent
            continue
        return stat.f_bavail * stat.f_frsize


def make_private_dirs(directory: str) -> None:
    """Creates the missing directories of `directory` as 0o700; existing ones stay as they are."""
    missing = []
    current = os.path.abspath(directory)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue  # another writer made it first: not ours to change
        os.chmod(path, DIR_MODE)  # the umask may have taken bits from the mode


def create_private_file(path: str) -> BinaryIO:
    """A new file at `path`, readable by its owner only; FileExistsError if anything (a file,
    a symlink) is there already, so a log never appends to or through something it did not
    create."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a umask can only take bits away; this restores the owner's
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class _LogFile:
    path: str
    size: int
    mtime_ns: int
    stamp: str
    pid: int
    sequence: int
    suffix: str

    @property
    def order(self) -> tuple:
        # Last written first; names break ties (a filesystem's clock can be coarse).
        return (self.mtime_ns, self.stamp, self.pid, self.sequence)


def _alive(pid: int) -> bool:
    if not 0 < pid < _MAX_PID:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


class LogRetention:
    """Keeps one log's files within its budget."""

    def __init__(self, prefix: str, budget: LogBudget, file_bytes: int) -> None:
        self.directory = os.path.dirname(prefix) or "."
        self._budget = budget
        self._file_bytes = file_bytes
        self._pattern = re.compile(
            re.escape(os.path.basename(prefix))
            + r"-(\d{8}T\d{6}Z)-(\d+)-(\d+)("
            + "|".join(re.escape(s) for s in (FILE_SUFFIX, OUTCOME_SUFFIX))
            + r")"
        )

    @property
    def limited(self) -> bool:
        return bool(self._budget.max_bytes or self._budget.max_files)

    def files(self) -> list[_LogFile]:
        """This log's files now on disk, oldest first."""
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = self._pattern.fullmatch(entry.name)
            if match is None:
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # removed meanwhile
            stamp, pid, sequence, suffix = match.groups()
            found.append(
                _LogFile(
                    entry.path, stat.st_size, stat.st_mtime_ns, stamp, int(pid), int(sequence),
                    suffix,
                )
            )
        return sorted(found, key=lambda f: f.order)

    def _being_written(self, files: list[_LogFile], ours: Iterable[str]) -> set[str]:
        """Files a writer may still hold open: this logger's own, and each other live process's
        newest file of each kind."""
        busy = {os.path.abspath(p) for p in ours}
        me = os.getpid()
        newest: dict[tuple[int, str], _LogFile] = {}
        for f in files:
            if f.pid != me and newest.get((f.pid, f.suffix), f).sequence <= f.sequence:
                newest[(f.pid, f.suffix)] = f
        busy |= {os.path.abspath(f.path) for f in newest.values() if _alive(f.pid)}
        return busy

    def make_room(self, reserve: int, ours: Iterable[str] = ()) -> bool:
        """Deletes the oldest closed files until a new file of `reserve` bytes fits the budget,
        with every file still being written counted at its full size; False if it cannot fit
        even then. `ours` are the files this logger has open."""
        if not self.limited:
            return True
        files = self.files()
        busy = self._being_written(files, ours)
        used = sum(
            max(f.size, self._file_bytes) if os.path.abspath(f.path) in busy else f.size
            for f in files
        )
        count = len(files)
        closed = [f for f in files if os.path.abspath(f.path) not in busy]
        while closed and not self._fits(used + reserve, count + 1):
            oldest = closed.pop(0)
            try:
                os.unlink(oldest.path)
            except FileNotFoundError:
                pass  # a sibling process of this log deleted it first
            except OSError as exc:
                log.warning("Cannot delete the old request log %s: %s", oldest.path, exc)
                continue
            used -= oldest.size
            count -= 1
        return self._fits(used + reserve, count + 1)

    def _fits(self, total_bytes: int, total_files: int) -> bool:
        budget = self._budget
        return (not budget.max_bytes or total_bytes <= budget.max_bytes) and (
            not budget.max_files or total_files <= budget.max_files
        )

