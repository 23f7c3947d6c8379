"""A local Flink cluster: JobManager, TaskManager and Beam worker pool, on 127.0.0.1 only.

`up` starts whichever part is not running (a second `up` is a no-op that says so), each in a
session of its own, records its pid and start time in the cache's state.json, and waits until
it answers. `down` stops exactly the recorded processes (and their children: each part's
process group), nothing matched by name. `status` reads the record and asks each part.

The parts get a reduced environment (`cluster_environment`): any local user can run code in
them through Flink's REST API or the worker pool's port, so the caller's secrets stay out.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from beamline.errors import BeamlineError
from beamline.flink.home import FlinkHome, flink_ports
from beamline.flink.rest import FlinkRest, RestError
from beamline.flink.settings import (
    FLINK_HOST,
    FLINK_PASS_ENV,
    FLINK_SLOTS,
    FLINK_START_TIMEOUT_SECONDS,
    FLINK_VERSION,
)
from beamline.redaction import SECRET_NAME, declared_secret_names

Say = Callable[[str], None]
PARTS = ("jobmanager", "taskmanager", "worker_pool")


class ClusterError(BeamlineError):
    """The local Flink cluster could not be started (exit 13: Flink unusable)."""

    exit_code = 13


@dataclass
class Part:
    name: str
    pid: int
    started: float  # the process's start time (psutil), so a reused pid is not taken for it
    endpoint: str
    log: str


@dataclass
class ClusterState:
    rest: str = field(default_factory=lambda: f"{FLINK_HOST}:{flink_ports().rest}")
    worker_pool: str = field(
        default_factory=lambda: f"{FLINK_HOST}:{flink_ports().worker_pool}")
    jar: str = ""
    parts: dict[str, Part] = field(default_factory=dict)

    @classmethod
    def load(cls, home: FlinkHome) -> ClusterState | None:
        try:
            data = json.loads(home.state_file.read_text())
        except (OSError, ValueError):
            return None
        parts = {name: Part(**p) for name, p in data.pop("parts", {}).items()}
        return cls(**data, parts=parts)

    def save(self, home: FlinkHome) -> None:
        home.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = home.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(home.state_file)


def process_alive(part: Part) -> bool:
    """The recorded process still runs (same pid and start time; not a zombie)."""
    import psutil

    try:
        proc = psutil.Process(part.pid)
        return (abs(proc.create_time() - part.started) < 1.0
                and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def port_answers(endpoint: str, timeout: float = 1.0) -> bool:
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Health:
    part: str
    endpoint: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str


def health(home: FlinkHome, state: ClusterState | None = None) -> list[Health]:
    state = state or ClusterState.load(home) or ClusterState()
    rest = FlinkRest(state.rest, timeout=3)
    try:
        overview = rest.overview()
    except RestError as exc:
        overview, rest_error = None, str(exc)
    else:
        rest_error = ""
    rows = []
    for name in PARTS:
        part = state.parts.get(name)
        running = part is not None and process_alive(part)
        endpoint = part.endpoint if part else ""
        if name == "jobmanager":
            endpoint = endpoint or state.rest
            healthy = overview is not None
            detail = (f"Flink {overview.get('flink-version')}, {overview.get('jobs-running')} "
                      f"job(s) running" if overview else rest_error)
        elif name == "taskmanager":
            healthy = bool(overview and overview.get("taskmanagers", 0) >= 1)
            detail = (f"{overview.get('taskmanagers')} taskmanager(s), "
                      f"{overview.get('slots-available')}/{overview.get('slots-total')} slots free"
                      if overview else "the JobManager does not answer")
            endpoint = endpoint or "(registers with the JobManager)"
        else:
            endpoint = endpoint or state.worker_pool
            healthy = port_answers(endpoint)
            detail = "accepts connections" if healthy else "does not accept connections"
        rows.append(Health(name, endpoint, part.pid if part else None, running, healthy, detail))
    return rows


# What the Flink scripts, the JVMs and the Beam worker pool (Python, TFX) need of the caller's
# environment. Any local user can run code in these processes (Flink's REST API takes jars and
# runs them; the pool starts a worker for any client of its port), so the rest of it (database
# passwords, tokens, cloud credentials) stays out.
_PASSED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "JAVA_HOME", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "MALLOC_ARENA_MAX", "HADOOP_CLASSPATH",
    "HADOOP_CONF_DIR", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES", "SSL_CERT_FILE",
    "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
})
_PASSED_PREFIXES = ("LC_", "FLINK_", "BEAMLINE_", "PYTHON", "TF_", "XDG_")


def _withheld(name: str, declared: set[str]) -> bool:
    """A name that looks secret (KEY too: in here nothing needs one) or a declared secret."""
    return bool(SECRET_NAME.search(name)) or "KEY" in name.upper() or name in declared


def cluster_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the cluster's processes: the variables `_PASSED_NAMES` and
    `_PASSED_PREFIXES` allow, minus secret-looking and declared secret ones, plus the names
    ${FLINK_PASS_ENV} lists (comma-separated) whatever they are."""
    declared = declared_secret_names(environ)
    extra = {n.strip() for n in environ.get(FLINK_PASS_ENV, "").split(",") if n.strip()}
    return {
        name: value for name, value in environ.items()
        if name in extra or (
            (name in _PASSED_NAMES or name.startswith(_PASSED_PREFIXES))
            and not _withheld(name, declared)
        )
    }


def _flink_env(home: FlinkHome, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = cluster_environment(os.environ if environ is None else environ)
    env.update({
        "FLINK_HOME": str(home.flink_dist),
        "FLINK_CONF_DIR": str(home.conf_dir),
        "FLINK_LOG_DIR": str(home.log_dir),
        "FLINK_PID_DIR": str(home.cluster_dir),
    })
    return env


def _start(name: str, cmd: list[str], env: dict[str, str], log: Path, endpoint: str) -> Part:
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return Part(name, proc.pid, psutil.Process(proc.pid).create_time(), endpoint, str(log))


def _wait(what: str, ready: Callable[[], bool], part: Part, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not process_alive(part):
            raise ClusterError(
                f"The Flink {what} (pid {part.pid}) exited while starting; its output is in "
                f"{part.log}. Fix what it says, then run `beamline flink up` again."
            )
        time.sleep(0.5)
    raise ClusterError(
        f"The Flink {what} (pid {part.pid}) did not answer within {timeout:.0f} s; its output "
        f"is in {part.log}. `beamline flink down` stops what was started."
    )


def _registered_taskmanagers(rest: FlinkRest) -> set[str]:
    try:
        return set(rest.taskmanagers())
    except RestError:  # a JobManager just started: none yet
        return set()


def _check_port_free(endpoint: str, what: str) -> None:
    if port_answers(endpoint, timeout=0.5):
        raise ClusterError(
            f"Port {endpoint} (the {what}) is already in use by a process `beamline flink up` "
            "did not start. Stop that process, or use that cluster instead with `beamline run "
            "... --beam flink --flink-master HOST:PORT --flink-worker-pool HOST:PORT`."
        )


def up(home: FlinkHome, say: Say, timeout: float = FLINK_START_TIMEOUT_SECONDS) -> ClusterState:
    """Starts the parts that are not running; returns the state (already up: unchanged)."""
    from beamline.flink.config import write_config
    from beamline.flink.fetch import ensure_all

    state = ClusterState.load(home) or ClusterState()
    alive = {n for n, p in state.parts.items() if process_alive(p)}
    if alive == set(PARTS):
        say("flink: already up (nothing started); `beamline flink status` shows each part")
        return state
    ensure_all(home, say)
    write_config(home)
    state.jar = str(home.runner_jar)
    state.parts = {n: p for n, p in state.parts.items() if n in alive}
    env = _flink_env(home)
    bin_dir = home.flink_dist / "bin"
    rest = FlinkRest(state.rest, timeout=2)
    if "jobmanager" not in alive:
        _check_port_free(state.rest, "Flink REST API")
        part = _start("jobmanager", ["bash", str(bin_dir / "jobmanager.sh"), "start-foreground"],
                      env, home.log_dir / "jobmanager.out", state.rest)
        state.parts["jobmanager"] = part
        state.save(home)
        _wait("JobManager", rest.answers, part, timeout)
        version = rest.overview().get("flink-version")
        if version != FLINK_VERSION:
            raise ClusterError(f"The JobManager at {state.rest} runs Flink {version}, not "
                               f"{FLINK_VERSION}; stop it with `beamline flink down`.")
        say(f"flink: JobManager up, REST API http://{state.rest} (pid {part.pid})")
    if "taskmanager" not in alive:
        # A TaskManager that died stays registered until the JobManager's heartbeat times out:
        # its slots must not pass for the new one's, or a run started now finds none.
        stale = _registered_taskmanagers(rest)
        part = _start("taskmanager", ["bash", str(bin_dir / "taskmanager.sh"), "start-foreground"],
                      env, home.log_dir / "taskmanager.out", "(registers with the JobManager)")
        state.parts["taskmanager"] = part
        state.save(home)

        def registered() -> bool:
            try:
                current = rest.taskmanagers()
            except RestError:
                return False
            fresh = sum(slots for tm, slots in current.items() if tm not in stale)
            return fresh >= FLINK_SLOTS and not stale & current.keys()

        _wait("TaskManager", registered, part, timeout)
        say(f"flink: TaskManager up, {FLINK_SLOTS} slots (pid {part.pid})")
    if "worker_pool" not in alive:
        _check_port_free(state.worker_pool, "Beam worker pool")
        host, _, port = state.worker_pool.rpartition(":")
        part = _start("worker_pool",
                      [sys.executable, "-m", "beamline.flink.worker_pool", "--host", host,
                       "--port", port],
                      cluster_environment(os.environ), home.log_dir / "worker_pool.out",
                      state.worker_pool)
        state.parts["worker_pool"] = part
        state.save(home)
        _wait("Beam worker pool", lambda: port_answers(state.worker_pool), part, timeout)
        say(f"flink: Beam worker pool up, {state.worker_pool} (pid {part.pid}, python "
            f"{sys.executable})")
    state.save(home)
    return state


def _stop(part: Part, timeout: float = 30.0) -> None:
    """SIGTERM to the part's process group (it is the session leader), SIGKILL if it lingers."""
    import psutil

    if not process_alive(part):
        return
    try:
        os.killpg(part.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        psutil.Process(part.pid).wait(timeout)
    except psutil.TimeoutExpired:
        pass
    except psutil.Error:
        pass
    try:
        os.killpg(part.pid, signal.SIGKILL)  # the group's stragglers (pool workers) too
    except ProcessLookupError:
        pass
    try:
        psutil.Process(part.pid).wait(5)
    except psutil.Error:
        pass


def down(home: FlinkHome, say: Say) -> list[str]:
    """Stops the recorded parts (pool first, JobManager last); returns the parts stopped."""
    state = ClusterState.load(home)
    if state is None or not state.parts:
        say("flink: not up (no cluster recorded in "
            f"{home.state_file}); nothing stopped")
        return []
    stopped = []
    for name in reversed(PARTS):
        part = state.parts.get(name)
        if part is None:
            continue
        if process_alive(part):
            _stop(part)
            stopped.append(name)
            say(f"flink: stopped {name} (pid {part.pid})")
        else:
            say(f"flink: {name} (pid {part.pid}) was not running")
    home.state_file.unlink(missing_ok=True)
    return stopped


def local_cluster(home: FlinkHome | None = None) -> ClusterState | None:
    """The local cluster when every part of it runs, else None."""
    home = home or FlinkHome.default()
    state = ClusterState.load(home)
    if state is None or set(state.parts) != set(PARTS):
        return None
    if not all(process_alive(p) for p in state.parts.values()):
        return None
    return state
