"""Liveness, the per-pipeline lock, leftovers and a killed run's record (no TFX)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from beamline.errors import RunInProgress
from beamline.lineage.model import Artifact, Execution, Graph, Run
from beamline.lineage.runs import summarize, unrecorded_versions
from beamline.lineage.why import explain
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import STALE_AFTER_SECONDS, runner_alive, this_process
from beamline.runner.cleanup import remove_leftover_files
from beamline.runner.run_lock import SWEEP_LOCK_ENV, PipelineLock, is_held, sweep_lock
from beamline.runner.run_tmp import run_tmp_dir, run_tmpdir
from beamline.settings import RootLayout


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_liveness_from_pid_start_time_and_heartbeat():
    me = this_process()
    mine = {rc.RUNNER_PID: me.pid, rc.RUNNER_HOST: me.host, rc.RUNNER_START: me.start}
    assert runner_alive(mine) is True
    assert runner_alive({**mine, rc.RUNNER_PID: _dead_pid()}) is False
    # The same pid with another start time is another process (pid reuse).
    assert runner_alive({**mine, rc.RUNNER_START: "1"}) is False
    assert runner_alive({}) is None
    remote = {rc.RUNNER_PID: 1, rc.RUNNER_HOST: "elsewhere", rc.HEARTBEAT_MS: "1000000"}
    assert runner_alive(remote, at_ms=1_000_000 + 1000) is True
    assert runner_alive(remote, at_ms=1_000_000 + int(STALE_AFTER_SECONDS * 1000) + 1) is False


def test_an_exited_runner_not_yet_reaped_is_not_alive():
    """kill -9 of a runner whose parent has not waited yet leaves a zombie: the pid exists (kill
    0 succeeds) with the same start time, but the run is over."""
    import signal
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        start = _start_of(child.pid)
        assert runner_alive(_stamped(child.pid, start)) is True
        os.kill(child.pid, signal.SIGKILL)
        # Wait (bounded) for the kernel to make it a zombie; do not reap it.
        deadline = time.monotonic() + 30
        while _state(child.pid) != "Z":
            assert time.monotonic() < deadline, f"state {_state(child.pid)!r}, never Z"
            time.sleep(0.01)
        os.kill(child.pid, 0)  # the pid still answers: this is what used to read as alive
        assert _start_of(child.pid) == start
        assert runner_alive(_stamped(child.pid, start)) is False
    finally:
        child.kill()
        child.wait()


def _stamped(pid: int, start: str) -> dict:
    return {rc.RUNNER_PID: pid, rc.RUNNER_HOST: this_process().host, rc.RUNNER_START: start}


def _start_of(pid: int) -> str:
    from beamline.metadata.liveness import process_start

    return process_start(pid)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[-1].split()[0]


def test_one_live_run_per_pipeline_and_root(tmp_path):
    layout = RootLayout(tmp_path)
    with PipelineLock(layout, "penguin", "run-1"):
        assert is_held(layout, "penguin")
        with pytest.raises(RunInProgress) as info:
            with PipelineLock(layout, "penguin", "run-2"):
                pass
        assert "run-1" in str(info.value) and "--root" in str(info.value)
        with PipelineLock(layout, "taxi", "run-3"):  # another pipeline is independent
            pass
    assert not is_held(layout, "penguin")
    with PipelineLock(layout, "penguin", "run-4"):
        pass


# A variant in a child process: takes the pipeline's lock as a run does and says how it holds it.
_VARIANT = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from beamline.errors import RunInProgress\n"
    "from beamline.runner.run_lock import PipelineLock\n"
    "from beamline.settings import RootLayout\n"
    "try:\n"
    "    with PipelineLock(RootLayout(Path(sys.argv[1])), 'penguin', 'child') as lock:\n"
    "        print('shared' if lock.shared else 'own', lock.cleans, flush=True)\n"
    "        time.sleep(float(sys.argv[2]))\n"
    "except RunInProgress as exc:\n"
    "    print('refused', exc)\n"
)


def test_a_sweep_holds_the_lock_for_its_variants_here_and_in_child_processes(tmp_path):
    layout = RootLayout(tmp_path)

    def variant(sleep: float = 0.0, **kwargs):
        return subprocess.Popen([sys.executable, "-c", _VARIANT, str(tmp_path), str(sleep)],
                                stdout=subprocess.PIPE, text=True, **kwargs)

    with sweep_lock(layout, "penguin", "lr") as lock:
        with PipelineLock(layout, "penguin", "variant-1") as here:
            assert here.shared and not here.cleans  # the sweep cleaned once, before
            here.record_run("variant-1")
        assert is_held(layout, "penguin")  # a variant's end does not free the sweep's lock
        inheriting = variant(pass_fds=(lock.fd,))
        assert inheriting.communicate()[0].split() == ["shared", "False"]
        # A run the sweep did not start (no descriptor passed) is refused, naming the sweep.
        outsider = variant(env={k: v for k, v in os.environ.items() if k != SWEEP_LOCK_ENV})
        out = outsider.communicate()[0]
        assert out.startswith("refused") and "experiment lr" in out
        with PipelineLock(layout, "taxi", "other") as other:  # another pipeline: its own lock
            assert not other.shared
        late = variant(sleep=1.0, pass_fds=(lock.fd,))
        assert late.stdout.readline().split() == ["shared", "False"]
    assert SWEEP_LOCK_ENV not in os.environ
    # A child still running keeps the lock after the sweep's own process let go.
    assert is_held(layout, "penguin")
    late.communicate()
    assert not is_held(layout, "penguin")
    with PipelineLock(layout, "penguin", "after") as after:
        assert not after.shared and after.cleans


def test_run_tmpdir_is_the_process_temp_dir_and_is_removed(tmp_path):
    layout = RootLayout(tmp_path)
    path = run_tmp_dir(layout, "p", "2026-01-01T00:00:00.1")
    before = (os.environ.get("TMPDIR"), tempfile.gettempdir())
    with pytest.raises(KeyboardInterrupt):
        with run_tmpdir(path):
            assert tempfile.gettempdir() == str(path) and os.environ["TMPDIR"] == str(path)
            tempfile.mkdtemp()
            raise KeyboardInterrupt
    assert not path.exists() and not layout.tmp_root.exists()
    assert (os.environ.get("TMPDIR"), tempfile.gettempdir()) == before


def test_leftovers_of_killed_runs_are_removed(tmp_path):
    layout = RootLayout(tmp_path)
    stale = run_tmp_dir(layout, "p", "old")
    stale.mkdir(parents=True)
    other = run_tmp_dir(layout, "q", "old")
    other.mkdir(parents=True)
    incoming = layout.serving_dir("p") / ".incoming-17-123"
    incoming.mkdir(parents=True)
    version = layout.serving_dir("p") / "17"
    version.mkdir()
    done = remove_leftover_files(layout, "p")
    assert set(done.removed) == {stale}
    # Staged pushes are finished or undone from the record (beamline.runner.push.recover).
    assert other.exists() and version.exists() and incoming.exists()


def _killed_graph(pid_props: dict) -> Graph:
    g = Graph(source="test")
    props = {rc.STATE: rc.RunState.RUNNING, rc.NODES_TOTAL: 3, **pid_props}
    g.runs["r1"] = Run("r1", "p", 1000, [1, 2], props)
    g.executions[1] = Execution(1, "x.Trainer", "Trainer", "p", "r1", "COMPLETE", 1000, 2000)
    g.executions[2] = Execution(2, "x.Pusher", "Pusher", "p", "r1", "RUNNING", 2000, 2000)
    return g


def test_a_dead_runner_makes_the_run_killed_in_the_node_it_died_in():
    g = _killed_graph({rc.RUNNER_PID: _dead_pid(), rc.RUNNER_HOST: this_process().host})
    summary = summarize(g, g.runs["r1"])
    assert summary.state == rc.RunState.KILLED and "Pusher" in summary.reason
    why = explain(g, "r1", "Pusher")
    assert why.state == "KILLED" and "did not finish" in why.verdict
    assert "executed" not in why.verdict
    # Its runner alive: the very same record reads as running.
    live = _killed_graph(
        {rc.RUNNER_PID: os.getpid(), rc.RUNNER_HOST: this_process().host,
         rc.RUNNER_START: this_process().start}
    )
    assert summarize(live, live.runs["r1"]).state == rc.RunState.RUNNING
    assert "running now" in explain(live, "r1", "Pusher").verdict


def test_versions_no_run_recorded_are_found(tmp_path):
    layout = RootLayout(tmp_path)
    g = Graph(source="test")
    g.runs["r1"] = Run("r1", "p", 1000, [1])
    recorded = layout.serving_dir("p") / "100"
    orphan = layout.serving_dir("p") / "200"
    for path in (recorded, orphan, layout.serving_dir("p") / ".incoming-300-1"):
        path.mkdir(parents=True)
    g.executions[1] = Execution(1, "x.Pusher", "Pusher", "p", "r1", "COMPLETE", 1, 2,
                                outputs={"pushed_model": [5]})
    g.artifacts[5] = Artifact(5, rc.PUSHED_MODEL_TYPE, "/a", properties={
        "pushed": 1, "pushed_version": "100", "pushed_destination": str(recorded)})
    assert unrecorded_versions(g, layout.serving_root) == [orphan]
