"""File access for model directories: local paths, or URIs (gs://, s3://, file://, ...) through
TensorFlow's file systems, as TF Serving reads them. Paths are strings: pathlib would fold the
`//` of a URI."""

from __future__ import annotations

import os
import posixpath


def is_uri(path: str) -> bool:
    return "://" in os.fspath(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def join(base: str, *parts: str) -> str:
    base = os.fspath(base)
    return posixpath.join(base, *parts) if is_uri(base) else os.path.join(base, *parts)


def is_file(path: str) -> bool:
    if is_uri(path):
        gfile = _gfile()
        return gfile.exists(path) and not gfile.isdir(path)
    return os.path.isfile(path)


def child_dirs(path: str) -> list[tuple[str, str]]:
    """(name, full path) of the subdirectories; empty if `path` cannot be listed."""
    if is_uri(path):
        gfile = _gfile()
        try:
            names = gfile.listdir(path)
        except Exception:  # missing or unreadable: no versions yet
            return []
        out = []
        for name in names:
            name = name.rstrip("/")
            full = join(path, name)
            if gfile.isdir(full):
                out.append((name, full))
        return out
    try:
        return [(e.name, e.path) for e in os.scandir(path) if e.is_dir()]
    except OSError:
        return []


def fingerprint(path: str) -> tuple | None:
    """(mtime, size, inode) of a file, or None if it does not exist."""
    if is_uri(path):
        gfile = _gfile()
        try:
            st = gfile.stat(path)
        except Exception:
            return None
        return (st.mtime_nsec, st.length, 0)
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_bytes(path: str) -> bytes:
    if is_uri(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")
