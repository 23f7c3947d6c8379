"""A run's own temporary directory, under its run root, removed however the run ends.

TensorFlow (autograph), Beam, TFX and their subprocesses write temporary files through
`tempfile` / $TMPDIR. Pointing both at `<root>/tmp/<pipeline>/<run id>/` for the run keeps them
out of the machine's /tmp, and removing that directory on success, failure and Ctrl-C alike keeps
nothing behind. Directories left by a killed run are removed by the next run of the pipeline
(under its lock) or by `beamline gc`. One directory per pipeline, not a `<pipeline>-` prefix:
pipeline names may hold `-`, and cleaning up after `taxi` must never reach the live temp
directory of a run of `taxi-v2`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from beamline.runner.contained import contained, name_problem
from beamline.settings import RootLayout, file_safe

_ENV_KEYS = ("TMPDIR", "TEMP", "TMP")


def run_tmp_dir(layout: RootLayout, pipeline: str, run_id: str) -> Path:
    name = file_safe(run_id)
    # A run id of "", "." or ".." would name the pipeline's or the root's temp directory.
    return layout.tmp_root / pipeline / (name if name_problem(name) is None else f"run-{name}")


def stale_tmp_dirs(layout: RootLayout, pipeline: str) -> list[Path]:
    """Temporary directories of earlier runs of `pipeline` (call only while holding its lock);
    symlinks and a pipeline name that is no plain file name are left alone."""
    base = contained(layout.tmp_root, pipeline)
    if base is None or not base.is_dir():
        return []
    own = layout.tmp_root / pipeline
    return sorted(
        own / p.name for p in base.iterdir() if contained(base, p.name) and p.is_dir()
    )


def remove_empty_tmp_dirs(layout: RootLayout, pipeline: str) -> None:
    """The pipeline's and the root's temp directories, when no run's directory is left."""
    if name_problem(pipeline) is None:
        _remove_if_empty(layout.tmp_root / pipeline, layout.tmp_root)


def _remove_if_empty(*directories: Path) -> None:
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()  # fails, as it should, while another run's directory is there


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
        _remove_if_empty(path.parent, path.parent.parent)
