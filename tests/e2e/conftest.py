"""One shared end-to-end run of the penguin pipeline (plus its re-run), through the real CLI.

Session-scoped: the cold run costs minutes on two cores, so every end-to-end test reads the
same run root. Other test packages can reuse `penguin_run` for a pushed penguin model.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from beamline.settings import RootLayout


@dataclass
class CliRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def run_id(self) -> str:
        match = re.search(r"run id (\S+)", self.stdout)
        assert match, f"no run id in output:\n{self.stdout}\n{self.stderr}"
        return match.group(1)


def beamline(*args: str, timeout: int = 1800, env: dict[str, str] | None = None) -> CliRun:
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", *args], capture_output=True, text=True,
        timeout=timeout, env=None if env is None else {**os.environ, **env},
    )
    return CliRun(list(args), proc.returncode, proc.stdout, proc.stderr)


@dataclass
class PenguinRuns:
    root: Path
    first: CliRun
    rerun: CliRun  # unchanged, through TFX's own per-node cache (--no-fast-cache)
    fast_rerun: CliRun  # unchanged again, Beamline's fast path (no TensorFlow import)
    tmpdir_left: list[str]  # what the first run left in its private, initially empty $TMPDIR

    @property
    def layout(self) -> RootLayout:
        return RootLayout(self.root)

    def store(self):
        import ml_metadata as mlmd

        from beamline.metadata.connection import sqlite_config

        return mlmd.MetadataStore(sqlite_config(self.layout.metadata_path))


@pytest.fixture(scope="session")
def penguin_run(tmp_path_factory) -> PenguinRuns:
    root = tmp_path_factory.mktemp("penguin_root")
    tmpdir = tmp_path_factory.mktemp("penguin_tmpdir")
    first = beamline("run", "penguin", "--root", str(root), env={"TMPDIR": str(tmpdir)})
    assert first.returncode == 0, first.stdout + first.stderr
    tmpdir_left = sorted(os.listdir(tmpdir))
    rerun = beamline("run", "penguin", "--root", str(root), "--no-fast-cache")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    fast = beamline("run", "penguin", "--root", str(root))
    assert fast.returncode == 0, fast.stdout + fast.stderr
    return PenguinRuns(root, first, rerun, fast, tmpdir_left)
