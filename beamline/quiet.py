"""Quiet output: fd 2 held and filtered, and the start-up noise of TensorFlow and the Google
client libraries kept off a command's stderr.

Importing TensorFlow prints three `E ... Unable to register cuFFT/cuDNN/cuBLAS factory` lines
(XLA registers its CUDA plugins twice: harmless, and printed with or without a GPU), and each
Google client library TFX imports warns that Python 3.10 is no longer supported (a two-line
FutureWarning). Nobody can act on either, and the exit-code page promises that warnings start
`warning: `. `beamline run` keeps its framework output in the run's log; `quiet_startup()`
(called once by the CLI for every command) drops exactly these lines and nothing else.
Nothing heavy is imported here: the CLI's start-up stays light.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager

# Lines TensorFlow's import writes to fd 2 that say nothing to a user.
NOISE = re.compile(rb"Unable to register cu\w+ factory")
QUIETED_MODULE = "tensorflow"


def filter_warnings() -> None:
    """Ignores the client libraries' "non-supported Python version" FutureWarnings, and the one
    Airflow 2.10 raises about its own config key while importing itself (its secrets masker
    reads `core/sql_alchemy_conn` under the old name, set or not)."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*non-supported Python")
    warnings.filterwarnings("ignore", category=FutureWarning,
                            message=r"section/key \[core/sql_alchemy_conn\] has been deprecated")


def quiet_library_logs() -> None:
    """Library log records below ERROR (e.g. TFX's `custom_executor_spec is deprecated`) are
    for Beamline's developers, not for the user of a command that prints its own result."""
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)


@contextmanager
def held_stderr(keep=lambda line: True):
    """Holds what is written to fd 2 meanwhile (C++ logs included), then writes the lines
    `keep` accepts (bytes, each with its newline) to fd 2."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 to hold
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(True) if keep(line)]
            if kept:
                os.write(2, b"".join(kept))


def filtered_stderr():
    """fd 2 without the NOISE lines written meanwhile."""
    return held_stderr(lambda line: not NOISE.search(line))


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader inside filtered_stderr(), then steps aside."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        # The module keeps the real loader (resource readers, reloads).
        module.__loader__ = module.__spec__.loader = self._loader
        with filtered_stderr():
            self._loader.exec_module(module)


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds one top-level module as usual (once), handing its import to a _QuietLoader."""

    def __init__(self, module: str) -> None:
        self.module = module

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.module:
            return None
        sys.meta_path.remove(self)  # the other finders locate it; later imports are normal
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_startup(module: str = QUIETED_MODULE) -> None:
    """Filters the warnings now, and `module`'s start-up lines when it is first imported."""
    filter_warnings()
    if module in sys.modules:
        return
    if not any(getattr(finder, "module", None) == module for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImportFinder(module))
