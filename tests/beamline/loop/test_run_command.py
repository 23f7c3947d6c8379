"""The run a loop step starts is `beamline run` as a user would type it: the same options (so the
same Beam arguments, chosen by the run itself from the data) and the environment the loop was
started with, not the one its monitoring left behind (TensorFlow, TFDV and scikit-learn set
variables when imported)."""

from __future__ import annotations

import os
import sys

from beamline.beam import beam_args
from beamline.commands.run import run as run_command
from beamline.loop.step import LoopRequest, _run_command, _run_environment
from beamline.loop.triggers import TriggerRecord
from beamline.metadata.records import TriggerKind

# What importing TensorFlow (TF2_BEHAVIOR) and scikit-learn/joblib (KMP_*) set in the loop's
# process while a step monitors.
SET_BY_IMPORTS = {"TF2_BEHAVIOR": "1", "KMP_DUPLICATE_LIB_OK": "True", "KMP_INIT_AT_FORK": "FALSE"}


def _trigger(span: int = 2) -> TriggerRecord:
    return TriggerRecord(
        execution_id=7, pipeline="penguin", kind=TriggerKind.NEW_DATA, decision="retrain",
        reason="span 2 is newer than span 1", since_secs=-1, until_secs=100,
        monitor_execution_id=None, run_id="2026-12-06T10:00:00", span=span, state="RUNNING",
        outcome="", time_ms=0,
    )


def _params(argv: list[str]) -> dict:
    return run_command.make_context("run", list(argv)).params


def test_the_loops_run_takes_the_options_of_a_plain_beamline_run(tmp_path):
    config = LoopRequest("penguin", tmp_path / "data", tmp_path / "logs", tmp_path / "root")
    argv = _run_command(config, _trigger())
    assert argv[:4] == [sys.executable, "-m", "beamline", "run"]
    loop = _params(argv[4:])
    plain = _params(["penguin", "--data", str(tmp_path / "data"), "--root",
                     str(tmp_path / "root"), "--span", "2", "--trigger", "new data"])
    # Only what identifies the run and the loop's explicit push policy differ.
    for own in ("run_id", "trigger_execution", "push_policy"):
        loop.pop(own), plain.pop(own)
    assert loop == plain
    assert loop["beam_profile"] == "auto" and loop["beam_extra"] == ()
    # Both resolve their Beam arguments the same way, from the same profile and data.
    assert beam_args(loop["beam_profile"], 1000) == beam_args(plain["beam_profile"], 1000)


def test_the_loops_run_gets_the_environment_the_loop_started_with(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAMLINE_TEST_USER_SETTING", "kept")
    for name in SET_BY_IMPORTS:
        monkeypatch.delenv(name, raising=False)
    config = LoopRequest("penguin", tmp_path / "data", tmp_path / "logs", tmp_path / "root")
    started_with = dict(os.environ)
    for name, value in SET_BY_IMPORTS.items():  # the step's monitoring imports TF, TFDV, Beam
        monkeypatch.setenv(name, value)
    env = _run_environment(config)
    assert env == started_with
    assert env["BEAMLINE_TEST_USER_SETTING"] == "kept"
    assert not set(SET_BY_IMPORTS) & set(env)
