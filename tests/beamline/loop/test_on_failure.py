"""`loop --on-failure CMD`: the failed run's id reaches the command intact and is never run as
shell code, wherever `{run_id}` stands in CMD (a run id resumed from the store is not trusted)."""

from __future__ import annotations

import io

import pytest

from beamline.loop import triggers as tr
from beamline.loop.step import LoopRequest, _on_failure

# Command substitution in both syntaxes, both quotes, a separator, a space and a glob.
HOSTILE = "x$(touch PWNED) `touch PWNED`'\"; touch PWNED *"


def _trigger(run_id: str) -> tr.TriggerRecord:
    return tr.TriggerRecord(
        execution_id=7, pipeline="p", kind="scheduled", decision="retrain", reason="",
        since_secs=-1, until_secs=0, monitor_execution_id=None, run_id=run_id, span=0,
        state="FAILED", outcome="", time_ms=0,
    )


@pytest.mark.parametrize(("command", "written"), [
    ("printf '%s\\n' {run_id} > out.txt", "{}"),
    ("printf '%s\\n' \"run {run_id} failed\" > out.txt", "run {} failed"),
    ("printf '%s\\n' 'run {run_id} failed' > out.txt", "run {} failed"),
    ("printf '%s\\n' > out.txt", "{}"),  # no placeholder: the run id is the last argument
    ("printf '%s\\n' \"$BEAMLINE_RUN_ID\" > out.txt; true", "{}"),
])
def test_hostile_run_id_arrives_intact_and_runs_nothing(tmp_path, monkeypatch, command, written):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a file a glob would list").touch()
    config = LoopRequest("p", tmp_path, tmp_path, tmp_path, on_failure=command)
    out = io.StringIO()
    _on_failure(config, _trigger(HOSTILE), out)
    assert out.getvalue() == ""  # the command exited 0
    assert (tmp_path / "out.txt").read_text() == written.format(HOSTILE) + "\n"
    assert not (tmp_path / "PWNED").exists()
