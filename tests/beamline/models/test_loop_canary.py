"""The loop's canary policy over a real SQLite MLMD store: a canary is promoted to stable only
on enough healthy traffic of its own, no worse than stable's in the server's outcome files,
recorded as a label change and written to models.config."""

from __future__ import annotations

import time

from beamline.loop.delivery import MIN_CANARY_REQUESTS, CanaryWindow, review_canary
from beamline.metadata import labels as history
from beamline.metadata import labels_file
from beamline.models.changes import promote
from beamline.monitor.compare import FeatureResult, Measure
from beamline.monitor.monitor import VersionReport
from beamline_serving.request_log.outcomes import outcome_line

PIPELINE = "p"  # conftest.PIPELINE
WINDOW = CanaryWindow("2026-12-01T00:00:00Z .. 2026-12-01T06:00:00Z")


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
    assert WINDOW.text in last.reason and "beamline loop" in last.reason
    text = labels_file.models_config_path(mlmd.layout).read_text()
    assert 'key: "stable"' in text and "value: 200" in text


def _served(directory, outcomes: dict[int, tuple[int, int, int]]):
    """Outcome files as `beamline serve` writes them: version -> (requests, errors, latency µs)."""
    directory.mkdir(exist_ok=True)
    now = int(time.time() * 1000)
    lines = []
    for version, (requests, errors, latency_us) in outcomes.items():
        for i in range(requests):
            status = "INVALID_ARGUMENT" if i < errors else "OK"
            lines.append(outcome_line(now, PIPELINE, version, "predict", status, latency_us))
    (directory / f"{PIPELINE}-20261201T000000-1-0.outcomes.tsv").write_bytes(b"".join(lines))
    return CanaryWindow(WINDOW.text, directory)


def _healthy_data():
    return [_report(100, 300), _report(200, MIN_CANARY_REQUESTS)]


def test_a_canary_failing_more_requests_than_stable_stays_a_canary(mlmd, tmp_path):
    graph = _stable_and_canary(mlmd)
    window = _served(tmp_path / "logs", {100: (200, 0, 900), 200: (100, 5, 900)})
    note = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE, _healthy_data(), window)
    assert note.startswith("canary version 200 is worse than stable version 100"), note
    assert "error_rate_increase 0.05 > 0.01" in note and "rollback p --label canary" in note
    assert _holders(mlmd) == {"stable": 100, "canary": 200}


def test_a_slower_canary_stays_a_canary(mlmd, tmp_path):
    graph = _stable_and_canary(mlmd)
    window = _served(tmp_path / "logs", {100: (200, 0, 1_000), 200: (100, 0, 2_000)})
    note = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE, _healthy_data(), window)
    assert "p99_ratio 2 > 1.5" in note, note
    assert _holders(mlmd) == {"stable": 100, "canary": 200}


def test_without_stable_traffic_to_compare_with_the_canary_waits(mlmd, tmp_path):
    graph = _stable_and_canary(mlmd)
    window = _served(tmp_path / "logs", {100: (3, 0, 900), 200: (100, 0, 900)})
    note = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE, _healthy_data(), window)
    assert "stable answered 3 request(s) in this window, fewer than the 20" in note, note
    assert note.endswith("stable stays on 100") and "rollback" not in note
    assert _holders(mlmd) == {"stable": 100, "canary": 200}


def test_a_canary_as_good_as_stable_is_promoted_with_the_figures_recorded(mlmd, tmp_path):
    graph = _stable_and_canary(mlmd)
    window = _served(tmp_path / "logs", {100: (200, 2, 1_000), 200: (100, 1, 1_100)})
    note = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE, _healthy_data(), window)
    assert note.startswith("promoted canary version 200 to stable"), note
    assert _holders(mlmd) == {"stable": 200, "canary": 200}
    reason = history.history(mlmd.store, PIPELINE)[-1].reason
    assert "against stable version 100 (200 requests)" in reason
    assert "error_rate_increase 0" in reason and "p99_ratio 1.1" in reason


def test_without_outcome_files_the_record_says_serving_was_not_compared(mlmd, tmp_path):
    graph = _stable_and_canary(mlmd)
    (tmp_path / "logs").mkdir()
    window = CanaryWindow(WINDOW.text, tmp_path / "logs")
    note = review_canary(mlmd.store, graph, mlmd.layout, PIPELINE, _healthy_data(), window)
    assert note.startswith("promoted canary version 200 to stable"), note
    reason = history.history(mlmd.store, PIPELINE)[-1].reason
    assert "no outcome files: error rate and latency not compared" in reason
