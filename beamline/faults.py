"""Named fault points for the chaos tests: `BEAMLINE_FAULT=<point>[=SIGNAL]` kills the process
there (SIGKILL unless another signal is named).

The runner's guarantees under kill -9 (docs/explanation/reliability.md) are tested by killing
a real run at a chosen point. Timing a kill from outside cannot land reliably between two steps
that take milliseconds (a push made visible, and recorded), so the few such points name
themselves here. Unset (always, outside tests) a fault point does nothing.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "BEAMLINE_FAULT"


def fault_point(name: str) -> None:
    """SIGKILLs this process when $BEAMLINE_FAULT is `name` (`name=SIGINT`: sends that signal,
    as Ctrl-C would)."""
    point, _, sig = os.environ.get(FAULT_ENV, "").partition("=")
    if point == name:
        os.kill(os.getpid(), getattr(signal, sig or "SIGKILL"))
