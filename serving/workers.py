"""Several `beamline serve` processes on one REST port (`--rest_api_workers N`).

One process runs Python's HTTP/JSON work under one GIL, which capped REST near 2x the
in-process rate on 2 cores; N processes bound to the same port with SO_REUSEPORT each get a
share of the connections from the kernel (measured: 1 process 4,649 req/s, 2 processes 9,192).

The process started by the user is the primary: it serves gRPC and REST and owns config
reloads. It starts N-1 REST workers, each the same command line (`beamline serve ...` or
`python -m beamline_serving ...`, as the primary was started) with `--port=0` (no gRPC) and
`--rest_api_workers=1`, plus the shared state directory. Every process loads and polls its
models itself, as replicas behind a load balancer do. What must agree goes through that
directory, written atomically (write, then rename):
- `metrics-<pid>.json`: each process's metric points, every METRICS_SECONDS; whichever process
  answers `/monitoring/prometheus/metrics` adds the others' points to its own;
- `model_config.pb`: the ModelServerConfig of the last gRPC ReloadConfig the primary applied;
  workers apply it within FOLLOW_SECONDS.
Workers die with the primary (PR_SET_PDEATHSIG, set by a small launcher that then execs the
worker) and are stopped with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

METRICS_SECONDS = 1.0
FOLLOW_SECONDS = 0.5
_CONFIG = "model_config.pb"
_PR_SET_PDEATHSIG = 1


class SharedState:
    """The directory the processes of one server share."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def create(cls) -> SharedState:
        return cls(Path(tempfile.mkdtemp(prefix="beamline-serve-")))

    def _write(self, name: str, data: bytes) -> None:
        partial = self.directory / f".{name}.{os.getpid()}"
        partial.write_bytes(data)
        os.replace(partial, self.directory / name)

    def publish_metrics(self, snapshot: dict) -> None:
        self._write(f"metrics-{os.getpid()}.json", json.dumps(snapshot).encode())

    def peer_metrics(self) -> list[dict]:
        """The other processes' last snapshots (a process that ended keeps counting: its
        requests happened)."""
        mine = f"metrics-{os.getpid()}.json"
        peers = []
        for path in sorted(self.directory.glob("metrics-*.json")):
            if path.name == mine:
                continue
            try:
                peers.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue
        return peers

    def publish_config(self, serialized: bytes) -> None:
        self._write(_CONFIG, serialized)

    def config(self) -> tuple[int, bytes] | None:
        """(modification time in ns, bytes) of the last published config, if any."""
        path = self.directory / _CONFIG
        try:
            return path.stat().st_mtime_ns, path.read_bytes()
        except OSError:
            return None

    def mark_loaded(self) -> None:
        """A worker: its models are loaded; it opens its port once the primary has opened its."""
        self._write(f"loaded-{os.getpid()}", b"")

    def is_loaded(self, pid: int) -> bool:
        return (self.directory / f"loaded-{pid}").exists()

    def mark_primary_listening(self) -> None:
        self._write("primary-listening", b"")

    async def wait_for_primary(self) -> None:
        import asyncio

        while not (self.directory / "primary-listening").exists():
            await asyncio.sleep(0.05)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def worker_command(launch_command: tuple[str, ...], state: SharedState) -> list[str]:
    """A REST worker's command line: the primary's own (its front door and flags), then the
    overrides (both front doors' parsers keep the last value of a flag given twice)."""
    from beamline_serving.errors import ConfigError

    if not launch_command:
        raise ConfigError(
            "--rest_api_workers starts its workers with the command line that started this "
            "server, and this one was started without one (ServerOptions.launch_command is "
            "empty): run `beamline serve --rest_api_workers N` or `python -m beamline_serving "
            "--rest_api_workers=N`."
        )
    return [
        *launch_command,
        "--port=0", "--rest_api_workers=1", f"--rest_worker_state_dir={state.directory}",
    ]


# Runs first in the child, then execs the command, which keeps the parent-death signal. Not
# Popen(preexec_fn=...): that runs Python between fork and exec, in a copy of a process whose
# TensorFlow threads may have held locks at the fork, and the child can deadlock on them. A
# parent that ended before the signal was set is seen as a changed parent pid.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None, use_errno=True).prctl({_PR_SET_PDEATHSIG}, signal.SIGTERM, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def dying_with_this_process(command: list[str]) -> list[str]:
    """`command` (its first item an absolute executable path) run so that it gets SIGTERM when
    this process ends, however it ends."""
    return [sys.executable, "-I", "-c", _LAUNCHER, str(os.getpid()), *command]


def start_workers(
    count: int, launch_command: tuple[str, ...], state: SharedState
) -> list[subprocess.Popen]:
    command = dying_with_this_process(worker_command(launch_command, state))
    return [subprocess.Popen(command) for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen], timeout: float = 10.0) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def wait_until_loaded(workers: list[subprocess.Popen], state: SharedState) -> None:
    """Until every worker has loaded its models (the primary opens its ports then, and the
    workers theirs right after, so "ready" means every process can answer); a worker that
    exits first is a ConfigError."""
    import asyncio

    from beamline_serving.errors import ConfigError

    while True:
        for worker in workers:
            if worker.poll() is not None:
                raise ConfigError(
                    f"REST worker process {worker.pid} exited with code {worker.returncode} "
                    "before it was ready; its log lines above say why."
                )
        if all(state.is_loaded(worker.pid) for worker in workers):
            return
        await asyncio.sleep(0.1)
