"""The label history over a real SQLite MLMD store: records, replays, rollback targets, the
labels file (parsed by tensorflow_serving's own ModelServerConfig), and the refusals."""

from __future__ import annotations

import pytest

from beamline.errors import PromoteRefused
from beamline.metadata import labels as history
from beamline.metadata import labels_file
from beamline.metadata import records as r
from beamline.models import retention
from beamline.models.changes import promote, rollback

PIPELINE = "p"  # conftest.PIPELINE


def _parse(path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())


def test_a_change_is_recorded_with_who_where_when_and_its_pushed_model(mlmd):
    pushed = mlmd.push("r1", 100)
    change = history.record_change(mlmd.store, PIPELINE, "stable", 100, r.LabelAction.PUSH,
                                   reason="first", pushed_model_id=pushed, time_ms=5)
    [read] = history.history(mlmd.store, PIPELINE)
    assert read == change
    assert (read.label, read.from_version, read.to_version, read.action, read.time_ms) == (
        "stable", r.NO_VERSION, 100, "push", 5)
    assert read.user and read.host and read.pushed_model_id == pushed
    assert history.pipelines_with_labels(mlmd.store) == [PIPELINE]
    assert history.history(mlmd.store, "other") == []


def test_holders_now_and_at_a_past_time_and_the_rollback_stack(mlmd):
    for t, (label, version, action) in enumerate([
        ("stable", 1, "push"), ("canary", 2, "push"), ("stable", 2, "promote"),
        ("stable", 3, "promote"), ("stable", 2, "rollback"), ("canary", 3, "push"),
    ]):
        history.record_change(mlmd.store, PIPELINE, label, version, action, time_ms=1000 * t)
    changes = history.history(mlmd.store, PIPELINE)
    assert history.holders(changes) == {"stable": 2, "canary": 3}
    assert history.holders(changes, at_ms=0) == {"stable": 1}
    assert history.holders(changes, at_ms=3500) == {"stable": 3, "canary": 2}
    # stable went 1 -> 2 -> 3, then 3 was rolled back: the next rollback goes to 1, not 3.
    assert history.holder_stack(changes, "stable") == [1, 2]
    periods = history.version_periods(changes, 2)
    assert [(p["label"], p["since_ms"], p["until_ms"]) for p in periods] == [
        ("canary", 1000, 5000), ("stable", 2000, 3000), ("stable", 4000, None)]
    assert retention.protected(changes) == {
        3: ["holds canary"], 2: ["holds stable", "a rollback of canary returns to it"],
        1: ["a rollback of stable returns to it"],
    }


def test_promote_records_then_writes_a_config_tf_serving_parses(mlmd):
    mlmd.push("r1", 100)
    mlmd.push("r2", 200)
    graph = mlmd.graph()
    first = promote(mlmd.store, graph, mlmd.layout, PIPELINE, 100, "stable", "first",
                    rest_port=None)
    second = promote(mlmd.store, graph, mlmd.layout, PIPELINE, 200, "canary", rest_port=None)
    assert first.change.from_version == r.NO_VERSION and second.change.to_version == 200
    config = _parse(labels_file.models_config_path(mlmd.layout))
    [model] = config.model_config_list.config
    assert model.name == PIPELINE and model.model_platform == "tensorflow"
    assert model.base_path == str(mlmd.layout.serving_dir(PIPELINE))
    assert sorted(model.model_version_policy.specific.versions) == [100, 200]
    assert dict(model.version_labels) == {"stable": 100, "canary": 200}
    again = promote(mlmd.store, graph, mlmd.layout, PIPELINE, 200, "canary", rest_port=None)
    assert again.change is None and len(history.history(mlmd.store, PIPELINE)) == 2


def test_rollback_goes_to_the_recorded_previous_holder_not_the_latest_blessed(mlmd):
    for run, version in (("r1", 100), ("r2", 200), ("r3", 300)):
        mlmd.push(run, version)
    graph = mlmd.graph()
    promote(mlmd.store, graph, mlmd.layout, PIPELINE, 200, "stable", rest_port=None)
    promote(mlmd.store, graph, mlmd.layout, PIPELINE, 100, "stable", rest_port=None)
    back = rollback(mlmd.store, graph, mlmd.layout, PIPELINE, "stable", "bad", rest_port=None)
    assert (back.change.from_version, back.change.to_version, back.change.action) == (
        100, 200, "rollback")
    assert dict(_parse(labels_file.models_config_path(mlmd.layout))
                .model_config_list.config[0].version_labels) == {"stable": 200}
    with pytest.raises(PromoteRefused, match="no earlier holder") as refused:
        rollback(mlmd.store, graph, mlmd.layout, PIPELINE, "stable", rest_port=None)
    assert refused.value.exit_code == 10
    with pytest.raises(PromoteRefused, match="no history"):
        rollback(mlmd.store, graph, mlmd.layout, PIPELINE, "canary", rest_port=None)


def test_promote_refuses_each_failed_check_by_name(mlmd):
    mlmd.push("r1", 100, blessed=0)
    mlmd.push("r2", 200, blessed=None)
    mlmd.push("r3", 300, on_disk=False)
    mlmd.push("r4", 400, state="RUNNING")  # killed before TFX recorded the push's end
    graph = mlmd.graph()
    cases = {
        100: "not promotable: the model was NOT blessed",
        200: "without a blessing",
        300: "is not on disk",
        400: "was not recorded as pushed",
        500: "is not on disk",
    }
    for version, message in cases.items():
        with pytest.raises(PromoteRefused, match=message):
            promote(mlmd.store, graph, mlmd.layout, PIPELINE, version, "stable", rest_port=None)
    assert history.history(mlmd.store, PIPELINE) == []
    assert not labels_file.models_config_path(mlmd.layout).exists()
