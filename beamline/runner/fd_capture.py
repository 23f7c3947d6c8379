"""Sends everything written to file descriptors 1 and 2 to a log file for the duration.

TFX, Beam, TensorFlow's C++ runtime, KerasTuner and the pip/setup.py subprocesses TFX starts
all write straight to the process's stdout/stderr. The run's console output goes through a
duplicate of the original stdout instead, so the terminal shows Beamline's progress and the log
file keeps everything else.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def capture_to(log_path: Path) -> Iterator[tuple[TextIO, TextIO]]:
    """Redirects fds 1 and 2 into `log_path`; yields text streams to the real stdout and
    stderr."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8")
    console_err = os.fdopen(os.dup(saved_err), "w", buffering=1, encoding="utf-8")
    with open(log_path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console, console_err
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            console.close()
            console_err.close()
