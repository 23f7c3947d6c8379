"""kill -9 a real run (Beamline's runner, real TFX, real MLMD) and read what it left.

One module-scoped sequence on the tiny chaos pipeline (tests/beamline/runner/chaos_pipeline.py),
each step a separate process, as an operator would see it:
1. killed inside the Trainer's executor;  2. re-run: completes, cleans up after 1;
(kills at every step of a push: test_push_chaos.py)
5. module changed, Ctrl-C (SIGINT) while the Trainer runs: recorded as interrupted;
6. module changed, the Trainer outgrows --memory-limit: the memory guard stops the run, says so
   and records it failed (test_memory_guard.py has the guard's parts);
7. the same, but in one C call that holds the GIL: only the watchdog process can stop it.
Every step runs as `beamline run` does: the run in a child of a watchdog process.
Run 2 also checks that a run leaves nothing in $TMPDIR (a private one) or under <root>/tmp.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from beamline.runner.run_lock import is_held
from beamline.settings import MEMORY_LIMIT_ENV, RootLayout

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import chaos_pipeline  # noqa: E402


@dataclass
class Step:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Chaos:
    root: Path
    files: Path
    tmpdir: Path
    steps: dict[str, Step]
    # Each step's own run record (found as the one run id the step added), by step name.
    records: dict[str, dict] = field(default_factory=dict)

    @property
    def layout(self) -> RootLayout:
        return RootLayout(self.root)

    def cli(self, *args: str) -> Step:
        proc = subprocess.run(
            [sys.executable, "-m", "beamline", *args, "--root", str(self.root)],
            capture_output=True, text=True, timeout=300,
        )
        return Step(proc.returncode, proc.stdout, proc.stderr)

    def runs(self) -> list[dict]:
        step = self.cli("runs", "--json")
        assert step.returncode == 0, step.stderr
        return json.loads(step.stdout)  # newest first

    def record(self, name: str, runs: list[dict] | None = None) -> list[dict]:
        """Files the run record step `name` added (exactly one new run id) under its name, so
        each step is checked through `runs` by its own id, not by whichever run is newest."""
        runs = self.runs() if runs is None else runs
        seen = {r["run_id"] for r in self.records.values()}
        new = [r for r in runs if r["run_id"] not in seen]
        assert len(new) == 1, f"step {name} should have added one run record: {new}"
        self.records[name] = new[0]
        return runs


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(
    root: Path, files: Path, tmpdir: Path, fault: str = "", extra_env: dict | None = None
) -> Step:
    env = {**os.environ, chaos_pipeline.CHAOS_DIR_ENV: str(files), "TMPDIR": str(tmpdir)}
    env.pop("BEAMLINE_FAULT", None)
    env.pop(MEMORY_LIMIT_ENV, None)
    env.update(extra_env or {})
    if fault:
        env["BEAMLINE_FAULT"] = fault
    proc = subprocess.run(
        [sys.executable, str(HERE / "chaos_pipeline.py"), str(root)],
        capture_output=True, text=True, timeout=1500, env=env,
        # As in a terminal: a shell that starts the tests in the background (`cmd &`) ignores
        # SIGINT, and Python would then never turn Ctrl-C into KeyboardInterrupt.
        preexec_fn=_default_sigint,
    )
    return Step(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def chaos(tmp_path_factory) -> Chaos:
    base = tmp_path_factory.mktemp("chaos")
    root, files, tmpdir = base / "root", base / "files", base / "tmp"
    tmpdir.mkdir()
    chaos_pipeline.write_files(files, scale=1)
    state = Chaos(root, files, tmpdir, {})
    state.steps["trainer_killed"] = _run(root, files, tmpdir, "trainer:run_fn")
    state.record("trainer_killed")
    own_id = state.records["trainer_killed"]["run_id"]
    state.steps["why_trainer"] = state.cli("why", "Trainer", "--run", own_id, "--json")
    state.steps["trainer_leftovers"] = sorted(
        str(p.relative_to(root)) for p in
        (root / "pipelines" / "chaos" / "Trainer").glob(".system/executor_execution/*")
    )
    state.steps["rerun"] = _run(root, files, tmpdir)
    state.record("rerun")
    state.steps["tmpdir_after_rerun"] = sorted(os.listdir(tmpdir))
    chaos_pipeline.write_files(files, scale=3)
    state.steps["interrupted"] = _run(root, files, tmpdir, "trainer:run_fn=SIGINT")
    state.steps["tmpdir_after_interrupt"] = sorted(os.listdir(tmpdir))
    state.record("interrupted")
    state.steps["lock_held_after_interrupt"] = is_held(state.layout, "chaos")
    tmp_root = state.layout.tmp_root
    state.steps["root_tmp_after_interrupt"] = (
        sorted(os.listdir(tmp_root)) if tmp_root.exists() else []
    )
    chaos_pipeline.write_files(files, scale=4)
    trainer_outputs = root / "pipelines" / "chaos" / "Trainer" / "model"
    state.steps["trainer_outputs_before_oom"] = sorted(os.listdir(trainer_outputs))
    # The tiny run holds ~1 GiB before the Trainer; the Trainer then asks for 8 GiB more.
    hog = {"BEAMLINE_CHAOS_HOG_MIB": "8192", MEMORY_LIMIT_ENV: "2.5GiB"}
    state.steps["out_of_memory"] = _run(root, files, tmpdir, extra_env=hog)
    state.record("out_of_memory")
    state.steps["trainer_outputs_after_oom"] = sorted(os.listdir(trainer_outputs))
    own_id = state.records["out_of_memory"]["run_id"]
    state.steps["why_out_of_memory"] = state.cli("why", "Trainer", "--run", own_id)
    state.steps["tmpdir_after_out_of_memory"] = sorted(os.listdir(tmpdir))
    # 8 GiB in one C call that holds the GIL: the run's own guard thread cannot sample until
    # it returns; only the watchdog process can stop it half-way.
    at_once = {**hog, "BEAMLINE_CHAOS_HOG_AT_ONCE": "1"}
    state.steps["out_of_memory_gil_held"] = _run(root, files, tmpdir, extra_env=at_once)
    state.record("out_of_memory_gil_held")
    state.steps["tmpdir_after_gil_held"] = sorted(os.listdir(tmpdir))
    return state


def test_a_run_killed_in_the_trainer_is_recorded_as_killed_there(chaos):
    killed = chaos.steps["trainer_killed"]
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    latest = chaos.records["trainer_killed"]
    assert latest["state"] == "killed", latest
    assert "Trainer" in latest["reason"] and latest["pushed_version"] is None
    why = json.loads(chaos.steps["why_trainer"].stdout)
    assert why["state"] == "KILLED" and "did not finish" in why["verdict"]
    assert chaos.steps["trainer_leftovers"], "the killed Trainer left no execution dir to clean"


def test_the_rerun_completes_and_cleans_up_after_the_killed_run(chaos):
    rerun = chaos.steps["rerun"]
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert chaos.records["rerun"]["state"] == "complete", chaos.records["rerun"]
    assert "cleaned up after earlier runs" in rerun.stdout
    for leftover in chaos.steps["trainer_leftovers"]:
        assert not (chaos.root / leftover).exists(), leftover
    assert not is_held(chaos.layout, "chaos")


def test_runs_leave_nothing_in_tmpdir_or_under_the_root_tmp(chaos):
    assert chaos.steps["tmpdir_after_rerun"] == []
    assert not chaos.layout.tmp_root.exists() or not any(chaos.layout.tmp_root.iterdir())


def test_ctrl_c_records_the_run_as_interrupted_and_removes_its_temp_files(chaos):
    interrupted = chaos.steps["interrupted"]
    assert interrupted.returncode in (130, -signal.SIGINT), interrupted.stdout + interrupted.stderr
    latest = chaos.records["interrupted"]
    assert latest["state"] == "failed" and "interrupted" in latest["reason"], latest
    assert chaos.steps["tmpdir_after_interrupt"] == []
    assert chaos.steps["root_tmp_after_interrupt"] == []
    assert not chaos.steps["lock_held_after_interrupt"]


def test_a_run_outgrowing_its_memory_limit_is_stopped_with_a_word_and_recorded_failed(chaos):
    stopped = chaos.steps["out_of_memory"]
    assert stopped.returncode == 7, stopped.stdout + stopped.stderr
    [message] = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert "out of memory" in message and "Trainer" in message, message
    assert "2.50 GiB that --memory-limit allows" in message
    assert "--beam direct-multi" in message  # the tiny run is in-memory Beam: what to change
    latest = chaos.records["out_of_memory"]
    assert latest["state"] == "failed" and latest["reason"].startswith("out of memory"), latest
    assert latest["pushed_version"] is None
    why = chaos.steps["why_out_of_memory"]
    assert "The execution failed (out of memory" in why.stdout, why.stdout + why.stderr
    # The stopped Trainer's output directory was removed (nothing was published from it).
    assert chaos.steps["trainer_outputs_after_oom"] == chaos.steps["trainer_outputs_before_oom"]
    assert chaos.steps["tmpdir_after_out_of_memory"] == []
    assert not chaos.layout.tmp_root.exists() or not any(chaos.layout.tmp_root.iterdir())
    assert not is_held(chaos.layout, "chaos")


def test_the_watchdog_process_stops_a_run_whose_threads_cannot_run(chaos):
    stopped = chaos.steps["out_of_memory_gil_held"]
    assert stopped.returncode == 7, stopped.stdout + stopped.stderr
    assert not (chaos.files / "hog-done").exists(), "the 8 GiB allocation was allowed to finish"
    [message] = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    # Nodes independent of the Trainer may be running too; all of them are named.
    assert "out of memory" in message and "Trainer" in message, message
    assert "2.50 GiB that --memory-limit allows" in message and "--beam direct-multi" in message
    latest = chaos.records["out_of_memory_gil_held"]
    assert latest["state"] == "failed" and latest["reason"].startswith("out of memory"), latest
    assert latest["pushed_version"] is None
    assert chaos.steps["tmpdir_after_gil_held"] == []
    assert not chaos.layout.tmp_root.exists() or not any(chaos.layout.tmp_root.iterdir())
    assert not is_held(chaos.layout, "chaos")
