"""Recovery of half-done pushes from the record (beamline.runner.push) over a real SQLite store:
finish what MLMD recorded, undo what it did not, owe no label step, leave no stale file."""

from __future__ import annotations

from beamline.metadata import labels as history
from beamline.metadata import labels_file
from beamline.runner.push import policy_labels, recover

PIPELINE = "p"  # conftest.PIPELINE


def _stage(mlmd, version: int, pid: int = 4242):
    staged = mlmd.layout.serving_dir(PIPELINE) / f".incoming-{version}-{pid}"
    (staged / "variables").mkdir(parents=True)
    (staged / "saved_model.pb").write_bytes(b"staged")
    return staged


def test_a_recorded_push_is_finished_and_labelled_an_unrecorded_copy_is_removed(mlmd):
    mlmd.push("r1", 100, on_disk=False, policy="canary")
    recorded = _stage(mlmd, 100)
    unrecorded = _stage(mlmd, 200, pid=99)
    done = recover(mlmd.store, mlmd.layout, PIPELINE, port=None)
    serving = mlmd.layout.serving_dir(PIPELINE)
    assert done.finished == ["100"] and done.undone == [unrecorded]
    assert (serving / "100" / "saved_model.pb").read_bytes() == b"staged"
    assert not recorded.exists() and not unrecorded.exists()
    # The first push under canary takes both labels; the record links it to the push.
    assert sorted(done.labelled) == ["canary -> 100", "stable -> 100"]
    changes = history.history(mlmd.store, PIPELINE)
    assert {(c.label, c.action) for c in changes} == {("canary", "push"), ("stable", "push")}
    assert labels_file.current_labels(mlmd.store) == {PIPELINE: {"canary": 100, "stable": 100}}
    assert "value: 100" in labels_file.models_config_path(mlmd.layout).read_text()
    again = recover(mlmd.store, mlmd.layout, PIPELINE, port=None)
    assert again.describe() == []  # idempotent: nothing left to finish


def test_a_stale_labels_file_is_rewritten_and_runs_without_a_policy_get_no_labels(mlmd):
    mlmd.push("r0", 50)  # no policy stamped: a run from before labels existed
    assert recover(mlmd.store, mlmd.layout, PIPELINE, port=None).describe() == []
    history.record_change(mlmd.store, PIPELINE, "stable", 50, "promote")
    path = labels_file.models_config_path(mlmd.layout)
    assert not path.exists()  # recorded, never written (a kill between the two)
    done = recover(mlmd.store, mlmd.layout, PIPELINE, port=None)
    assert done.rewrote == path and "value: 50" in path.read_text()


def test_what_each_policy_gives_a_blessed_push():
    assert policy_labels("live", {}) == ["stable"]
    assert policy_labels("live", {"stable": 1, "canary": 2}) == ["stable"]
    assert policy_labels("canary", {}) == ["canary", "stable"]
    assert policy_labels("canary", {"stable": 1}) == ["canary"]
