"""Benchmark: a newcomer's wall time from `git clone` to the first prediction answered (not a test).

Does what the README's first screen says, in a fresh temporary directory:
`git clone SOURCE`, `make serve` there (bootstrap: a pinned uv, .venv from requirements.lock;
the penguin pipeline, since nothing is pushed yet; then `beamline serve`), waits for the
server's ready line, runs the curl that line prints exactly as printed (through bash, as if
pasted), then stops the server with Ctrl-C (SIGINT to the process group, as a terminal sends it).

Cold by default: uv's cache is a new empty directory (every package is downloaded and
byte-compiled) and pip, which installs uv itself, uses no cache and no local wheel directory.
What stays warm, and is said in the output: the Python 3.10 interpreter (bootstrap finds an
installed one), the operating system's page cache, and git's objects (the clone is local).
`--warm` keeps the user's uv cache (a second clone on the same machine).

    .venv/bin/python benchmarks/first_answer.py [--source DIR] [--warm] [--keep DIR]

Prints each phase's wall time from the start, the load average before and after, and the
total to the first answer. `make serve` uses the default ports (8501 REST, 8500 gRPC): they
must be free.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PORTS = (8501, 8500)  # what `make serve` listens on (beamline serve's defaults)
READY = re.compile(r"beamline serve: ready \(pid \d+\).*; try: (?P<command>curl .*)$")
# Lines of `make serve`'s output that end a phase: (phase, pattern).
PHASES = (
    ("bootstrap done (.venv synced)", re.compile(r"^bootstrap: ready")),
    ("pipeline run done", re.compile(r"^Run \S+ of '\w+': ")),
    ("server ready", READY),
)
READY_TIMEOUT = 3600.0


class Output:
    """`make serve`'s merged output, read on a thread, each line with its time."""

    def __init__(self, process: subprocess.Popen, start: float, log: Path) -> None:
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process, start, log), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen, start: float, log: Path) -> None:
        with log.open("w", encoding="utf-8") as out:
            for raw in process.stdout:
                line = raw.rstrip("\n")
                out.write(line + "\n")
                out.flush()
                with self._changed:
                    self.lines.append((time.monotonic() - start, line))
                    self._changed.notify_all()
        with self._changed:
            self.lines.append((time.monotonic() - start, None))  # end of output
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern, timeout: float) -> tuple[float, re.Match]:
        """The first line matching `pattern` and when it came; SystemExit if output ends."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for at, line in self.lines[seen:]:
                    if line is None:
                        sys.exit(f"make serve ended before its ready line:\n{self.tail()}")
                    match = pattern.search(line)
                    if match:
                        return at, match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    sys.exit(f"no ready line in {timeout:.0f}s:\n{self.tail()}")
                self._changed.wait(left)

    def first(self, pattern: re.Pattern) -> float | None:
        with self._changed:
            return next((at for at, line in self.lines if line and pattern.search(line)), None)

    def tail(self, count: int = 30) -> str:
        with self._changed:
            return "\n".join(line for _, line in self.lines[-count:] if line is not None)


def _check_ports_free() -> None:
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                sys.exit(f"port {port} is in use: `make serve` needs 8501 and 8500 free")


def _environment(base: Path, warm: bool) -> tuple[dict[str, str], list[str]]:
    """The newcomer's environment, and what in it is warm."""
    env = dict(os.environ)
    for name in ("VIRTUAL_ENV", "BEAMLINE_ROOT", "BEAMLINE_PROJECT", "PYTHONPATH"):
        env.pop(name, None)  # a fresh shell: nothing of this checkout's environment
    warm_parts = ["the Python 3.10 interpreter", "the OS page cache", "git objects (local clone)"]
    if warm:
        warm_parts.append("uv's cache")
        return env, warm_parts
    env["UV_CACHE_DIR"] = str(base / "uv-cache")  # empty: every package downloaded
    env["PIP_NO_CACHE_DIR"] = "1"
    env.pop("PIP_FIND_LINKS", None)  # no local wheel directory: uv itself from PyPI
    return env, warm_parts


def _answer(command: str, cwd: Path) -> dict:
    """Runs the ready line's curl as pasted into a shell; its JSON answer."""
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        sys.exit(f"the curl failed (exit {result.returncode}): {result.stderr}")
    answer = json.loads(result.stdout)
    if "predictions" not in answer:
        sys.exit(f"the server answered without predictions: {result.stdout}")
    return answer


def _stop(process: subprocess.Popen) -> int:
    """Ctrl-C: SIGINT to the whole process group, as a terminal sends it."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return -signal.SIGKILL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(PROJECT), help="What to clone (default: here).")
    parser.add_argument("--warm", action="store_true", help="Keep the user's uv cache.")
    parser.add_argument("--keep", type=Path, default=None, help="Work here and keep it.")
    args = parser.parse_args()
    _check_ports_free()
    base = args.keep or Path(tempfile.mkdtemp(prefix="first-answer-"))
    base.mkdir(parents=True, exist_ok=True)
    env, warm = _environment(base, args.warm)
    clone = base / "beamline"
    # Outside `base`, which is removed at the end.
    log = Path(tempfile.gettempdir()) / f"first-answer-{time.strftime('%Y%m%d-%H%M%S')}.log"
    load_before = os.getloadavg()
    print(f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load {load_before[0]:.1f}; warm: {', '.join(warm)}")
    start = time.monotonic()
    try:
        subprocess.run(["git", "clone", "--quiet", args.source, str(clone)], check=True, env=env)
        cloned = time.monotonic() - start
        process = subprocess.Popen(
            ["make", "serve"], cwd=clone, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        output = Output(process, start, log)
        try:
            ready_at, ready = output.wait_for(READY, READY_TIMEOUT)
            answer = _answer(ready["command"], clone)
            answered = time.monotonic() - start
        finally:
            code = _stop(process) if process.poll() is None else process.returncode
        print(f"  {cloned:7.1f} s  git clone")
        for phase, pattern in PHASES:
            at = output.first(pattern)
            print(f"  {at:7.1f} s  {phase}" if at is not None else f"        -    {phase}")
        print(f"  {answered:7.1f} s  first answer: {json.dumps(answer)[:100]}")
        print(f"make serve after Ctrl-C: exit {code}; load after {os.getloadavg()[0]:.1f}")
        print(f"first answer {answered // 60:.0f}m{answered % 60:04.1f}s after `git clone` "
              f"(ready line at {ready_at:.1f} s); log: {log}")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
