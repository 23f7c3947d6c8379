"""The loop DAG's label step (`loop_conclude`, beamline.loop.airflow.label_push) over a real
SQLite MLMD store: the version TFX's Pusher pushed under Airflow gets its push policy's labels,
recorded and written to models.config, once."""

from __future__ import annotations

from beamline.loop.airflow import label_push
from beamline.loop.step import LoopRequest
from beamline.metadata import labels as history
from beamline.metadata import labels_file

PIPELINE = "p"  # conftest.PIPELINE


def _config(mlmd, push_policy: str) -> LoopRequest:
    root = mlmd.layout.root
    return LoopRequest(PIPELINE, root / "data", root / "logs", root, push_policy=push_policy)


def _holders(mlmd) -> dict[str, int]:
    return history.holders(history.history(mlmd.store, PIPELINE))


def test_live_labels_the_pushed_version_stable_once(mlmd):
    mlmd.push("p.manual__1", 100)
    config = _config(mlmd, "live")
    assert label_push(config, mlmd.store, "p.manual__1", "100") == [
        "applied the push policy live: stable -> 100"
    ]
    assert _holders(mlmd) == {"stable": 100}
    [change] = history.history(mlmd.store, PIPELINE)
    assert change.action == "push" and change.reason == (
        "pushed by run p.manual__1 under the live push policy")
    text = labels_file.models_config_path(mlmd.layout).read_text()
    assert 'key: "stable"' in text and "value: 100" in text
    # loop_conclude retried for the same DAG run: nothing more is recorded.
    assert label_push(config, mlmd.store, "p.manual__1", "100") == []
    assert len(history.history(mlmd.store, PIPELINE)) == 1


def test_canary_keeps_stable_where_it_is(mlmd):
    mlmd.push("p.manual__1", 100)
    mlmd.push("p.manual__2", 200)
    config = _config(mlmd, "canary")
    first = label_push(config, mlmd.store, "p.manual__1", "100")
    assert sorted(first) == ["applied the push policy canary: canary -> 100",
                             "applied the push policy canary: stable -> 100"]
    assert label_push(config, mlmd.store, "p.manual__2", "200") == [
        "applied the push policy canary: canary -> 200"
    ]
    assert _holders(mlmd) == {"stable": 100, "canary": 200}


def test_a_push_outside_the_roots_serving_directory_changes_no_label(mlmd):
    mlmd.push("p.manual__1", 100)
    [line] = label_push(_config(mlmd, "live"), mlmd.store, "p.manual__1", "300")
    assert line.startswith("version 300 was not pushed under ") and "no label was changed" in line
    assert _holders(mlmd) == {}
