"""The watchdog parent of `beamline run`: transparent to callers, fatal to runaway runs.

Real processes: a script forks through `supervise` exactly as the CLI does, and its child then
exits, is killed, sleeps or allocates. The full path (a real run stopped, recorded as failed and
cleaned up) is step 7 of test_chaos.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path

    from beamline.runner.memory import MemoryBudget
    from beamline.runner.supervisor import Watched, supervise
    from beamline.settings import RootLayout

    root, mode, limit = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    # limit 0: no limit and no reserve, so only the kernel can stop the run.
    budget = MemoryBudget(limit=limit or None, reserve=0)
    fd = supervise(Watched("demo", RootLayout(root), None, budget))
    (root / "child.pid").write_text(str(os.getpid()))
    print(f"child {os.getpid()} of {os.getppid()} report_fd {fd}", flush=True)
    if mode == "exit3":
        sys.exit(3)
    if mode == "kill9":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "sleep":
        try:
            (root / "sleeping").touch()  # inside the try: a SIGINT from here on is caught
            time.sleep(60)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            time.sleep(0.5)  # a second, duplicated SIGINT would land here
            sys.exit(130)
    if mode == "fast-exit":
        import atexit
        from beamline.runner.supervisor import exit_child_now

        atexit.register(lambda: print("teardown ran"))
        print("done", end="")  # still in the buffer
        exit_child_now(5)
    if mode == "hog":  # one C call that holds the GIL for the whole allocation
        held = b"x" * (3 << 30)
        (root / "hog-done").write_text("finished")
    """
)
GIB = 1024**3


@pytest.fixture
def launch(tmp_path):
    script = tmp_path / "supervised.py"
    script.write_text(SCRIPT)

    def start(mode: str, limit: int = 64 * GIB, cgroup: Path | None = None) -> subprocess.Popen:
        def join_cgroup() -> None:
            if cgroup is not None:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))

        return subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), mode, str(limit)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=join_cgroup,
        )

    return start


def _poll(condition, timeout: float, interval: float = 0.05):
    """Polls `condition` until it returns something truthy (returned) or `timeout` passes
    (returns the last falsy value): a bound on a condition, never a fixed wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# Hang guards, far above a real start-up: a child's interpreter start on a loaded two-core
# machine took over 30 s once (a CPU hog beside the full suite).
START_TIMEOUT = 300


def _child_pid(root: Path, timeout: float = START_TIMEOUT) -> int:
    pid_file = root / "child.pid"
    text = _poll(lambda: pid_file.exists() and pid_file.read_text(), timeout)
    assert text, "the supervised child never started"
    return int(text)


def _gone(pid: int, timeout: float = 10) -> bool:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    return _poll(gone, timeout)


def _caught_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def _watchdog_forwards_signals(pid: int, root: Path, timeout: float = START_TIMEOUT) -> None:
    """Waits until the watchdog (pid) has installed its handlers (it sets SIGCONT's last, and
    nothing but the watchdog catches SIGCONT, so the bit in /proc's SigCgt is the event) and
    the child is inside its `try` (before it, a SIGINT would kill it: exit -2, not 130)."""
    bit = 1 << (signal.SIGCONT - 1)
    assert _poll(lambda: _caught_signals(pid) & bit, timeout), "the watchdog never got ready"
    assert _poll((root / "sleeping").exists, timeout), "the child never reached its sleep"


def test_the_child_runs_in_its_own_group_and_its_exit_code_is_relayed(launch, tmp_path):
    proc = launch("exit3")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    child = int(out.split()[1])
    assert child != proc.pid and f"of {proc.pid}" in out
    assert "report_fd None" not in out  # the child got the report channel


def test_a_child_killed_by_a_signal_kills_the_parent_with_the_same_signal(launch):
    proc = launch("kill9")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_sigint_to_the_parent_reaches_the_child_exactly_once(launch, tmp_path):
    proc = launch("sleep")
    _child_pid(tmp_path)
    _watchdog_forwards_signals(proc.pid, tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert out.count("interrupted") == 1 and "Traceback" not in err, out + err


def test_ctrl_c_in_a_terminal_interrupts_the_run_once(tmp_path):
    """In a real pseudo-terminal: ^C signals the terminal's foreground group, which holds the
    watchdog but not the run's own group; the watchdog passes it on, once."""
    import pty

    script = tmp_path / "supervised.py"
    script.write_text(SCRIPT)
    pid, master = pty.fork()
    if pid == 0:  # the session leader on the new terminal, as a shell's foreground job
        os.execv(sys.executable, [sys.executable, str(script), str(tmp_path), "sleep", "0"])
    output = b""
    try:
        while b"report_fd" not in output:
            output += os.read(master, 4096)
        _watchdog_forwards_signals(pid, tmp_path)
        os.write(master, b"\x03")
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every process on the terminal is gone
                break
            if not chunk:
                break
            output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(master)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 130, text
    assert text.count("interrupted") == 1, text


def test_killing_the_parent_with_sigkill_kills_the_run(launch, tmp_path):
    proc = launch("sleep")
    child = _child_pid(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert _gone(child), "the run outlived its watchdog"


def test_a_run_that_holds_the_gil_while_it_outgrows_its_limit_is_stopped(launch, tmp_path):
    proc = launch("hog", limit=GIB)
    child = _child_pid(tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 7, out + err
    assert not (tmp_path / "hog-done").exists(), "the 3 GiB allocation was allowed to finish"
    assert _gone(child)
    [message] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "out of memory" in message and "1.00 GiB that --memory-limit allows" in message


def test_the_child_leaves_without_teardown_after_flushing_its_output(launch):
    proc = launch("fast-exit")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert out.endswith("done") and "teardown ran" not in out


def test_outside_a_runs_child_exiting_now_is_left_to_the_caller():
    from beamline.runner.supervisor import exit_child_now

    assert exit_child_now(3) is None  # this test process is not a run's child: it returns


# The one explicit opt-out of the kernel-OOM test (as BEAMLINE_SKIP_BROWSER is for the browser
# tests): without root and a writable cgroup hierarchy the test fails rather than skips.
SKIP_CGROUP_ENV = "BEAMLINE_SKIP_CGROUP"


@pytest.fixture
def memory_cgroup():
    """A real memory cgroup of 384 MiB (v1 or v2; needs root, as CI has here)."""
    limit = 384 << 20
    name = f"beamline-test-{os.getpid()}"
    v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
    if v1.is_dir():
        path, limit_file = v1 / name, "memory.limit_in_bytes"
    else:
        path, limit_file = v2 / name, "memory.max"
    try:
        path.mkdir()
        (path / limit_file).write_text(str(limit))
    except OSError as exc:
        if os.environ.get(SKIP_CGROUP_ENV) == "1":
            pytest.skip(f"no memory cgroup here ({exc}) and {SKIP_CGROUP_ENV}=1")
        pytest.fail(
            f"a memory cgroup cannot be created at {path} ({exc}): this is the only test of "
            "the kernel's OOM killer taking a run. Run the tests as root on a host with a "
            f"writable cgroup hierarchy, or set {SKIP_CGROUP_ENV}=1 to skip it knowingly."
        )
    yield path
    # The killed run's pages can take a moment to leave the cgroup; rmdir is the condition.
    _poll(lambda: _try_rmdir(path), timeout=10)


def _try_rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def test_a_run_the_kernel_kills_for_memory_is_reported_by_the_watchdog(
    launch, tmp_path, memory_cgroup
):
    """The watchdog never stops this run itself (no limit, no reserve); the cgroup's limit makes
    the kernel's OOM killer take the run, and the watchdog, being small, survives to say so."""
    proc = launch("hog", limit=0, cgroup=memory_cgroup)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 7, out + err
    assert not (tmp_path / "hog-done").exists()
    [message] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "the kernel's out-of-memory killer killed the run" in message, message
    assert "At the watchdog's last sample the run's process held" in message
    assert "of its memory cgroup's 0.38 GiB" in message
    assert "was not recorded" in message  # this script never claimed a run id
