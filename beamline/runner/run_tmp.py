"""A run's own temporary directory, under its run root, removed however the run ends.

TensorFlow (autograph), Beam, TFX and their subprocesses write temporary files through
`tempfile` / $TMPDIR. Pointing both at `<root>/tmp/<pipeline>-<run id>/` for the run keeps them
out of the machine's /tmp, and removing that directory on success, failure and Ctrl-C alike keeps
nothing behind. Directories left by a killed run are removed by the next run of the pipeline
(under its lock) or by `beamline gc`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from beamline.settings import RootLayout, file_safe

_ENV_KEYS = ("TMPDIR", "TEMP", "TMP")


def run_tmp_dir(layout: RootLayout, pipeline: str, run_id: str) -> Path:
    return layout.tmp_root / f"{pipeline}-{file_safe(run_id)}"


def stale_tmp_dirs(layout: RootLayout, pipeline: str) -> list[Path]:
    """Temporary directories of earlier runs of `pipeline` (call only while holding its lock)."""
    if not layout.tmp_root.is_dir():
        return []
    return sorted(p for p in layout.tmp_root.glob(f"{pipeline}-*") if p.is_dir())


@contextlib.contextmanager
def run_tmpdir(path: Path) -> Iterator[Path]:
    """Makes `path` the process's temporary directory (tempfile and $TMPDIR) for the block."""
    path.mkdir(parents=True, exist_ok=True)
    saved_env = {key: os.environ.get(key) for key in _ENV_KEYS}
    saved_tempdir = tempfile.tempdir
    for key in _ENV_KEYS:
        os.environ[key] = str(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when no other run's directory is left
