"""What a run shows in the terminal: node states and durations as they happen."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from beamline.runner.scheduler import (
    CACHED,
    COMPLETE,
    FAILED,
    RESOLVED,
    RUNNING,
    SKIPPED,
    NodeEvent,
)

_MARK = {RUNNING: "▸", COMPLETE: "✓", CACHED: "≡", RESOLVED: "→", FAILED: "✗", SKIPPED: "·"}
_WORD = {RUNNING: "running", COMPLETE: "executed", CACHED: "cached", RESOLVED: "resolved",
         FAILED: "FAILED", SKIPPED: "skipped"}


class Progress:
    """Prints node events; on a terminal also keeps a live line of what is running."""

    def __init__(self, out: TextIO = sys.stdout, live: bool | None = None) -> None:
        self._out = out
        self._live = out.isatty() if live is None else live
        self._running: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.width = 24

    def __enter__(self) -> Progress:
        if self._live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        self._clear_live()

    def event(self, event: NodeEvent) -> None:
        with self._lock:
            self._clear_live()
            if event.state == RUNNING:
                self._running[event.node_id] = time.monotonic()
            else:
                self._running.pop(event.node_id, None)
            line = f"  {_MARK[event.state]} {event.node_id:<{self.width}} {_WORD[event.state]}"
            if event.state in (COMPLETE, CACHED, RESOLVED, FAILED):
                line += f"  {event.seconds:6.1f}s"
            self._out.write(line + "\n")
            self._out.flush()

    def _clear_live(self) -> None:
        if self._live:
            self._out.write("\r\033[K")

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                now = time.monotonic()
                parts = [f"{n} {now - t:.0f}s" for n, t in self._running.items()]
                if parts:
                    self._out.write("\r\033[K  running: " + ", ".join(parts))
                    self._out.flush()
