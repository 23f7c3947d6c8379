"""Steps, repeated: `--once` (one step, its exit code) or `--every DURATION` until SIGTERM.

SIGTERM (and Ctrl-C) end the loop *between* steps: a step in progress finishes (its run too,
whose record would otherwise say killed), then the loop exits 0 saying so. Transient errors are
retried with backoff (beamline.loop.retry); a step that still fails is reported and, under
--every, the loop goes on to the next step.
"""

from __future__ import annotations

import re
import signal
import threading
from typing import TextIO

from beamline.errors import BeamlineError, ConfigError
from beamline.loop.retry import with_retries
from beamline.loop.step import LoopRequest, StepResult, run_step

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `6h`, `1d` (or plain seconds) as seconds; ConfigError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f"--every {text!r} is not a duration. Write a positive number with a unit: 90s, "
            "15m, 6h or 1d."
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def one_step(config: LoopRequest, out: TextIO) -> StepResult:
    return with_retries(lambda: run_step(config, out), "step", out)


def run_loop(config: LoopRequest, every_s: float, out: TextIO) -> int:
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        if not stop.is_set():
            out.write(
                f"beamline loop: {signal.Signals(signum).name}: the loop ends after this step\n"
            )
            out.flush()
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.is_set():
            try:
                one_step(config, out)
            except BeamlineError as exc:
                out.write(f"beamline loop: step failed: {exc}\n")
                out.flush()
            if stop.wait(every_s):
                break
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    out.write("beamline loop: stopped between steps\n")
    out.flush()
    return 0
