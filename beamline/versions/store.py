"""A content-addressed object store: each content once, named by its SHA-256.

Layout under the store directory (`RootLayout.objects_dir`):

    <ab>/<cdef...>     an object: its SHA-256 is `ab` + `cdef...` (64 hex digits in all)
    tmp/.put-*         an object being written (removed by `remove_dead_temp_files`)
    .lock              held shared while a run keeps and names its versions or a checkout
                       reads them, exclusive while `beamline gc` deletes objects (`locked`)

Writes are atomic: the bytes go to a temporary file inside the store (so the final rename never
crosses a file system), are fsynced, and only then renamed to the name of their hash; the
directory is fsynced after. A writer killed with -9 leaves at most a temporary file, never a
named object with the wrong bytes. Each temporary file is held under an exclusive `flock` while
it is written: the kernel releases the lock when its writer dies, so a temporary file whose lock
can be taken belongs to nobody alive and may go, whatever its age.

Input files are cloned (FICLONE, a reflink on btrfs/XFS: no bytes copied, and the clone is a
separate inode) or else copied; never hard-linked. A hard link shares the inode with the input,
and the usual ways of rewriting a data file (pandas' `to_csv`, a shell `>`, `open(path, "w")`)
truncate and write that inode in place: the "stored" object would silently become the new data.

Nothing a record names is trusted as a path: a key must be 64 lower-case hex digits, and the
path it names is resolved and must lie inside the store directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError, DataError
from beamline.faults import fault_point

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
FAN_PATTERN = re.compile(r"[0-9a-f]{2}")
TMP_DIR_NAME = "tmp"
TMP_PREFIX = ".put-"
LOCK_NAME = ".lock"
# The chaos tests' kill point: the object's bytes written, not yet renamed to their key.
FAULT_BEFORE_RENAME = "versions_before_rename"
CHUNK_BYTES = 1 << 20
# linux/fs.h: _IOW(0x94, 9, int). Absent from Python's fcntl module on 3.10.
FICLONE = 0x40049409


class BadKey(ConfigError):
    """A store key that is not a SHA-256, or a path it names outside the store."""


class CorruptObject(DataError):
    """An object whose bytes no longer hash to its name."""


class StoreBusy(DataError):
    """The store's lock is held by another process (`ObjectStore.locked(wait=False)`)."""


@dataclass(frozen=True)
class Listing:
    """What the store directory holds: each object's size, and entries refused as not Beamline's
    (a symlink, a directory where an object belongs), never followed."""

    sizes: dict[str, int]
    refused: list[str]


@dataclass(frozen=True)
class Stored:
    """One content put into the store."""

    key: str
    bytes: int
    added: bool  # False: the store held this content already (no bytes written)


def check_key(key: str) -> str:
    """`key` when it is a SHA-256 in hex (what every object is named by); BadKey otherwise."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise BadKey(
            f"{key!r} is not a store key: a key is the SHA-256 of an object, 64 lower-case hex "
            "digits. It came from a damaged or forged record; run `beamline data log PIPELINE` "
            "to see the keys the runs recorded."
        )
    return key


def sha256_of(path: Path) -> tuple[str, int]:
    """(hex SHA-256, size) of a file's bytes."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class ObjectStore:
    """Objects under `directory`, created on first write."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, key: str) -> Path:
        """Where object `key` lives (whether or not it exists), proven inside the store."""
        check_key(key)
        path = (self.directory / key[:2] / key[2:]).resolve()
        if not path.is_relative_to(self.directory.resolve()):
            raise BadKey(
                f"Object {key} resolves to {path}, outside the store {self.directory}: a symlink "
                "in the store points elsewhere. Remove it; the store holds only directories and "
                "files Beamline wrote."
            )
        return path

    def has(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def keys(self) -> Iterator[str]:
        """Every object's key (temporary files are not objects)."""
        if not self.directory.is_dir():
            return
        for fan in sorted(self.directory.iterdir()):
            if len(fan.name) != 2 or not fan.is_dir():
                continue
            for obj in sorted(fan.iterdir()):
                key = fan.name + obj.name
                if KEY_PATTERN.fullmatch(key):
                    yield key

    def listing(self) -> Listing:
        """Every object with its size, read without following a symlink: a symlinked fan
        directory or object is refused (reported, not listed, never removed)."""
        sizes: dict[str, int] = {}
        refused: list[str] = []
        if self.directory.is_symlink():
            return Listing(sizes, [f"{self.directory} is a symlink: the store is not listed"])
        if not self.directory.is_dir():
            return Listing(sizes, refused)
        for fan in sorted(self.directory.iterdir()):
            if not FAN_PATTERN.fullmatch(fan.name):
                continue
            if fan.is_symlink() or not fan.is_dir():
                refused.append(f"{fan} is a symlink or not a directory")
                continue
            for obj in sorted(fan.iterdir()):
                key = fan.name + obj.name
                if not KEY_PATTERN.fullmatch(key):
                    continue
                info = obj.lstat()
                if not stat.S_ISREG(info.st_mode):
                    refused.append(f"{obj} is a symlink or not a regular file")
                    continue
                sizes[key] = info.st_size
        return Listing(sizes, refused)

    def remove(self, key: str) -> int:
        """Deletes object `key` (its size returned): only a regular file at `<ab>/<cdef...>`
        inside the store, reached through no symlink; BadKey otherwise, nothing removed."""
        check_key(key)
        fan = self.directory / key[:2]
        path = fan / key[2:]
        if self.directory.is_symlink() or fan.is_symlink() or path.is_symlink():
            raise BadKey(f"Object {key}: {path} is reached through a symlink; not removed.")
        resolved = self.path_of(key)  # resolves, and proves it inside the store
        info = path.lstat()
        if resolved != path.resolve() or not stat.S_ISREG(info.st_mode):
            raise BadKey(f"Object {key}: {path} is not a regular file of the store; not removed.")
        path.unlink()
        with contextlib.suppress(OSError):  # other objects share its fan directory
            fan.rmdir()
        return info.st_size

    @contextlib.contextmanager
    def locked(self, exclusive: bool = False, wait: bool = True) -> Iterator[None]:
        """The store's lock: shared for a run keeping and naming its versions or a checkout
        reading them, exclusive for `gc` deleting objects. With `wait=False`, StoreBusy when
        another process holds it in a mode that excludes this one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = self.directory / LOCK_NAME
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(fd, mode | (0 if wait else fcntl.LOCK_NB))
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                raise StoreBusy(
                    f"The object store {self.directory} is in use: a run is keeping its "
                    "versions, or a checkout reading them. Try again when it is done."
                ) from exc
            yield
        finally:
            os.close(fd)

    def put_file(self, source: Path) -> Stored:
        """Keeps the bytes of `source` (cloned, else copied), named by their hash."""
        key, size = sha256_of(source)
        if self.has(key):
            return Stored(key, size, added=False)
        with self._temp() as (fd, temp):
            with open(source, "rb") as src:
                if not _clone(src.fileno(), fd):
                    _copy(src, fd)
            # The key is the hash of the bytes that were kept: a source rewritten since it was
            # hashed above is stored under the hash of what was actually copied.
            key, size = sha256_of(temp)
            return Stored(key, size, added=self._publish(fd, temp, key))

    def put_bytes(self, data: bytes) -> Stored:
        """Keeps `data`, named by its hash."""
        key = hashlib.sha256(data).hexdigest()
        if self.has(key):
            return Stored(key, len(data), added=False)
        with self._temp() as (fd, temp):
            _write_all(fd, data)
            return Stored(key, len(data), added=self._publish(fd, temp, key))

    def read_bytes(self, key: str) -> bytes:
        """Object `key`'s bytes, checked against its name (CorruptObject when they differ)."""
        path = self._existing(key)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != key:
            raise _corrupt(key, path)
        return data

    def copy_out(self, key: str, target: Path) -> None:
        """Writes object `key` to `target` (a new file), hashing on the way: CorruptObject, and
        `target` removed, when the bytes differ from the name."""
        path = self._existing(key)
        digest = hashlib.sha256()
        with open(path, "rb") as src, open(target, "xb") as dst:
            while block := src.read(CHUNK_BYTES):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != key:
            target.unlink()
            raise _corrupt(key, path)

    def verify(self) -> list[str]:
        """The keys of objects whose bytes no longer hash to their name (empty: all sound)."""
        return [key for key in self.keys() if sha256_of(self.path_of(key))[0] != key]

    def remove_dead_temp_files(self, dry_run: bool = False) -> list[Path]:
        """Removes temporary files no live writer holds (a writer killed mid-write left them);
        with `dry_run`, only lists them."""
        tmp = self.directory / TMP_DIR_NAME
        removed = []
        if not tmp.is_dir():
            return removed
        for path in sorted(tmp.glob(TMP_PREFIX + "*")):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                continue  # a live writer holds it
            else:
                if not dry_run:
                    path.unlink(missing_ok=True)
                removed.append(path)
            finally:
                os.close(fd)
        return removed

    def _existing(self, key: str) -> Path:
        path = self.path_of(key)
        if not path.is_file():
            raise DataError(
                f"Object {key} is not in the store {self.directory}: it was removed, or the "
                "record naming it comes from another run root. Pass the --root the run used."
            )
        return path

    @contextlib.contextmanager
    def _temp(self) -> Iterator[tuple[int, Path]]:
        tmp = self.directory / TMP_DIR_NAME
        tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=tmp)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield fd, Path(name)
        finally:
            # Gone once published; on any failure the half-written file goes with the writer.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            os.close(fd)

    def _publish(self, fd: int, temp: Path, key: str) -> bool:
        """Renames the fsynced temporary file to its key; False when a concurrent writer
        published the same content first."""
        os.fsync(fd)
        os.fchmod(fd, 0o444)  # objects are never written again
        fault_point(FAULT_BEFORE_RENAME)
        final = self.path_of(key)
        final.parent.mkdir(exist_ok=True)
        if final.is_file():
            return False
        os.replace(temp, final)
        for directory in (final.parent, self.directory):
            _fsync_dir(directory)
        return True


def _corrupt(key: str, path: Path) -> CorruptObject:
    return CorruptObject(
        f"Object {key} ({path}) is corrupted: its bytes no longer hash to its name. Its data "
        "cannot be restored from this store; `beamline data verify` lists every such object."
    )


def _clone(src_fd: int, dst_fd: int) -> bool:
    """A reflink of src into dst where the file system shares blocks copy-on-write."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError:
        return False  # ext4, tmpfs, another file system, ...: copy instead
    return True


def _copy(src, dst_fd: int) -> None:
    while block := src.read(CHUNK_BYTES):
        _write_all(dst_fd, block)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
