"""The loop's canary policy over a real SQLite MLMD store: a canary is promoted to stable only
on enough healthy traffic of its own, recorded as a label change and written to models.config."""

from __future__ import annotations

from beamline.loop.delivery import MIN_CANARY_REQUESTS, review_canary
from beamline.metadata import labels as history
from beamline.metadata import labels_file
from beamline.models.changes import promote
from beamline.monitor.compare import FeatureResult, Measure
from beamline.monitor.monitor import VersionReport

PIPELINE = "p"  # conftest.PIPELINE
WINDOW = "2026-12-01T00:00:00Z .. 2026-12-01T06:00:00Z"


def _report(version: int, requests: int, jsd: float = 0.01) -> VersionReport:
    feature = FeatureResult(
        "body_mass_g", "numeric", skew=Measure("jensen_shannon_divergence", jsd, 0.1, "training")
    )
    return VersionReport(PIPELINE, version, requests, 0, 1, "r", features=[feature])


def _stable_and_canary(mlmd):
    mlmd.push("r1", 100)
    mlmd.push("r2", 200)
    graph = mlmd.graph()
    promote(mlmd.store, graph, mlmd.layout, PIPELINE, 100, "stable", rest_port=None)
    promote(mlmd.store, graph, mlmd.layout, PIPELINE, 200, "canary", rest_port=None)
    return graph


def _holders(mlmd) -> dict[str, int]:
    return history.holders(history.history(mlmd.store, PIPELINE))


def test_no_canary_apart_from_stable_means_nothing_to_review(mlmd):
    mlmd.push("r1", 100)
    graph = mlmd.graph()
    promote(mlmd.store, graph, mlmd.layout, PIPELINE, 100, "stable", rest_port=None)
    assert review_canary(mlmd.store, graph, mlmd.layout, PIPELINE, [_report(100, 500)],
                         WINDOW) is None


def test_too_little_canary_traffic_or_drift_keeps_stable(mlmd):
    graph = _stable_and_canary(mlmd)
    few = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE,
                        [_report(100, 500), _report(200, MIN_CANARY_REQUESTS - 1)], WINDOW)
    assert f"{MIN_CANARY_REQUESTS - 1} request(s)" in few and "stable stays on 100" in few
    moved = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE,
                          [_report(200, 400, jsd=0.4)], WINDOW)
    assert "not healthy" in moved and "body_mass_g" in moved
    assert _holders(mlmd) == {"stable": 100, "canary": 200}


def test_a_healthy_canary_is_promoted_recorded_and_written(mlmd):
    graph = _stable_and_canary(mlmd)
    note = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE,
                         [_report(100, 300), _report(200, MIN_CANARY_REQUESTS)], WINDOW)
    assert note.startswith("promoted canary version 200 to stable")
    assert _holders(mlmd) == {"stable": 200, "canary": 200}
    last = history.history(mlmd.store, PIPELINE)[-1]
    assert (last.label, last.from_version, last.to_version, last.action) == (
        "stable", 100, 200, "promote")
    assert WINDOW in last.reason and "beamline loop" in last.reason
    text = labels_file.models_config_path(mlmd.layout).read_text()
    assert 'key: "stable"' in text and "value: 200" in text
