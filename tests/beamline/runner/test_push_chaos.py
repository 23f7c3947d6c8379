"""kill -9 a real run at every step of a push, and check that no version is ever visible
before it is recorded, and that recovery finishes or undoes each half-done push from the record.

One module-scoped sequence on the chaos pipeline (tests/beamline/runner/chaos_pipeline.py, live
push policy: every push takes `stable`). The Trainer module changes before each run, so the
Trainer and Pusher run again. Each kill is recovered by a different path:

    fault point            what it leaves                          recovered by
    push:copied            staged copy, no record                  the next run (undone)
    push:staged            staged copy, PushedModel unpublished    beamline gc (undone)
    push:recorded          push recorded, copy still staged        beamline serve start-up (done)
    push:visible           visible and recorded, no label change   beamline gc (label applied)
    push:labels-recorded   labels recorded, models.config stale    the next run (file rewritten)
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

from beamline.metadata.labels_file import models_config_path
from beamline.settings import MEMORY_LIMIT_ENV, PUSH_INCOMING_PREFIX, RootLayout

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import chaos_pipeline  # noqa: E402

POINTS = ("push:copied", "push:staged", "push:recorded", "push:visible", "push:labels-recorded")


@dataclass
class Snapshot:
    """What a reader (or a server) sees in the root at one moment."""

    returncode: int
    stdout: str
    stderr: str
    versions: list[str] = field(default_factory=list)  # visible (numeric) version dirs
    staged: list[str] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)  # newest first
    runs_stderr: str = ""
    labels: dict = field(default_factory=dict)
    config: str = ""


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beamline", *args, "--root", str(root)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BEAMLINE_REST_PORT": "9"})


def _snapshot(root: Path, proc) -> Snapshot:
    layout = RootLayout(root)
    serving = layout.serving_dir(chaos_pipeline.PIPELINE_NAME)
    names = sorted(os.listdir(serving)) if serving.is_dir() else []
    runs = _cli(root, "runs", "--json")
    labels = _cli(root, "labels", chaos_pipeline.PIPELINE_NAME, "--json")
    config = models_config_path(layout)
    return Snapshot(
        proc.returncode, proc.stdout, proc.stderr,
        versions=[n for n in names if n.isdigit()],
        staged=[n for n in names if n.startswith(PUSH_INCOMING_PREFIX)],
        runs=json.loads(runs.stdout) if runs.returncode == 0 else [],
        runs_stderr=runs.stderr,
        labels=json.loads(labels.stdout)["labels"] if labels.returncode == 0 else {},
        config=config.read_text() if config.exists() else "",
    )


def _run(root: Path, files: Path, tmpdir: Path, fault: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, chaos_pipeline.CHAOS_DIR_ENV: str(files), "TMPDIR": str(tmpdir),
           "BEAMLINE_REST_PORT": "9"}
    env.pop(MEMORY_LIMIT_ENV, None)
    env.pop("BEAMLINE_FAULT", None)
    if fault:
        env["BEAMLINE_FAULT"] = fault
    return subprocess.run([sys.executable, str(HERE / "chaos_pipeline.py"), str(root)],
                          capture_output=True, text=True, timeout=1500, env=env)


@pytest.fixture(scope="module")
def push_chaos(tmp_path_factory) -> dict[str, Snapshot]:
    base = tmp_path_factory.mktemp("push_chaos")
    root, files, tmpdir = base / "root", base / "files", base / "tmp"
    tmpdir.mkdir()
    steps: dict[str, Snapshot] = {}

    def run(name: str, scale: int, fault: str = "") -> None:
        chaos_pipeline.write_files(files, scale=scale)
        steps[name] = _snapshot(root, _run(root, files, tmpdir, fault))

    def recover(name: str, how: str) -> None:
        if how == "gc":
            proc = _cli(root, "gc")
        else:  # what `beamline serve --root` does before it serves (without the server)
            proc = subprocess.run(
                [sys.executable, "-c", "import sys; from beamline.commands.serve import "
                 "recover_pushes; from pathlib import Path; recover_pushes(Path(sys.argv[1]))",
                 str(root)], capture_output=True, text=True, timeout=300)
        steps[name] = _snapshot(root, proc)

    run("baseline", 1)
    run("push:copied", 2, "push:copied")
    run("push:staged", 3, "push:staged")  # its start recovered push:copied
    recover("after push:staged", "gc")
    run("push:recorded", 4, "push:recorded")
    recover("after push:recorded", "serve")
    run("push:visible", 5, "push:visible")
    recover("after push:visible", "gc")
    run("push:labels-recorded", 6, "push:labels-recorded")
    run("final", 7)
    return steps


def test_every_kill_is_a_kill_and_nothing_visible_is_ever_unrecorded(push_chaos):
    for point in POINTS:
        step = push_chaos[point]
        assert step.returncode == -signal.SIGKILL, (point, step.stdout + step.stderr)
        assert step.runs[0]["state"] == "killed", (point, step.runs[0])
    for name, step in push_chaos.items():
        # `runs` names any version directory that no run recorded: there must never be one.
        assert "no run recorded" not in step.runs_stderr, (name, step.runs_stderr)
        recorded = {r["pushed_version"] for r in step.runs if r["pushed_version"]}
        assert set(step.versions) <= recorded, (name, step.versions, recorded)


def test_a_kill_before_the_record_leaves_only_a_staged_copy_that_recovery_removes(push_chaos):
    for point in ("push:copied", "push:staged"):
        step = push_chaos[point]
        assert len(step.staged) == 1 and step.runs[0]["pushed_version"] is None, step
    baseline = push_chaos["baseline"].versions
    # The run after push:copied removed its copy at start-up; gc removed push:staged's.
    assert push_chaos["push:staged"].staged[0] != push_chaos["push:copied"].staged[0]
    after = push_chaos["after push:staged"]
    assert after.staged == [] and after.versions == baseline
    assert "removed" in after.stdout and "never recorded" in after.stdout, after.stdout


def test_a_recorded_push_killed_before_its_rename_is_finished_at_serve_start_up(push_chaos):
    killed = push_chaos["push:recorded"]
    version = killed.runs[0]["pushed_version"]
    assert version and version not in killed.versions and len(killed.staged) == 1
    after = push_chaos["after push:recorded"]
    assert after.returncode == 0, after.stderr
    assert version in after.versions and after.staged == []
    assert f"finished the recorded push of version {version}" in after.stderr
    # The label step the run never reached was done too (live policy: stable).
    assert after.labels == {"stable": int(version)}
    assert f"value: {version}" in after.config


def test_a_push_killed_before_its_label_step_gets_it_from_gc(push_chaos):
    killed = push_chaos["push:visible"]
    version = killed.runs[0]["pushed_version"]
    assert version in killed.versions and killed.labels["stable"] != int(version)
    after = push_chaos["after push:visible"]
    assert after.labels == {"stable": int(version)}
    assert f"applied the push policy: stable -> {version}" in after.stdout, after.stdout


def test_labels_recorded_but_not_written_are_written_by_the_next_run(push_chaos):
    killed = push_chaos["push:labels-recorded"]
    version = killed.runs[0]["pushed_version"]
    assert killed.labels == {"stable": int(version)}
    assert f"value: {version}" not in killed.config  # the file still names the old holder
    final = push_chaos["final"]
    assert final.returncode == 0, final.stdout + final.stderr
    newest = final.runs[0]["pushed_version"]
    assert "rewrote" in final.stdout and "from the label history" in final.stdout, final.stdout
    assert final.labels == {"stable": int(newest)} and f"value: {newest}" in final.config
    assert final.staged == []
