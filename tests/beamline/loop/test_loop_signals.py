"""`beamline loop --every`: SIGTERM ends it between steps; a failing step does not end it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

from tests.e2e.conftest import penguin_rows, write_csv


def _line_with(proc: subprocess.Popen, text: str, timeout: float = 120) -> str:
    """Reads the loop's stdout until a line holds `text` (bounded)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if text in line:
                return line
    raise AssertionError(f"{text!r} never printed; output so far:\n{''.join(seen)}")


def test_sigterm_ends_the_loop_between_steps_and_failed_steps_do_not(tmp_path):
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    root = tmp_path / "root"
    root.mkdir()
    mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))  # a store where nothing ran
    header, rows = penguin_rows()
    write_csv(tmp_path / "data" / "span-1" / "penguins.csv", header, rows[:10])
    (tmp_path / "requests").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "beamline", "loop", "penguin", "--data", str(tmp_path / "data"),
         "--requests", str(tmp_path / "requests"), "--every", "1s", "--root", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )
    try:
        first = _line_with(proc, "step failed")
        assert "No runs of pipeline 'penguin'" in first
        _line_with(proc, "step failed")  # the loop went on to a second step
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert "stopped between steps" in rest and "Traceback" not in rest
