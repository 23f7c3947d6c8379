"""The canary comparison's arithmetic (beamline.monitor.canary): percentiles, shares, checks."""

from __future__ import annotations

import pytest

from beamline.errors import DataError
from beamline.monitor.canary import (
    CompareThresholds,
    cdf_distance,
    class_shares,
    compare_sides,
    comparison_text,
    l_infinity,
    percentile,
    side_of,
)
from beamline_serving.request_log.outcomes import Outcome


def _outcomes(version: int, latencies: list[int], failed: int = 0) -> list[Outcome]:
    ok = [Outcome(1, "penguin", version, "predict", "OK", us) for us in latencies]
    bad = [Outcome(1, "penguin", version, "predict", "INVALID_ARGUMENT", 5)] * failed
    return ok + bad


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile(values, 100) == 100 and percentile([7], 99) == 7
    assert percentile([], 50) is None


def test_shares_and_distance():
    shares = class_shares(["a", "b", "a", "a"])
    assert shares == {"a": 0.75, "b": 0.25}
    assert l_infinity(shares, {"a": 0.25, "c": 0.5}) == pytest.approx(0.5)
    assert l_infinity({}, {}) == 0.0


def test_a_side_counts_failures_apart_and_times_only_ok_requests():
    side = side_of("canary", 4, _outcomes(4, [1000] * 30, failed=10), ["x"] * 30)
    assert (side.requests, side.errors) == (40, 10)
    assert side.error_rate == pytest.approx(0.25)
    assert side.p99_ms == 1.0  # the failures' 5 µs are not latency of answers
    assert side.statuses == {"OK": 30, "INVALID_ARGUMENT": 10}


def test_a_worse_canary_crosses_exactly_the_checks_it_fails():
    stable = side_of("stable", 3, _outcomes(3, [1000] * 100), ["Adelie"] * 50 + ["Gentoo"] * 50)
    same = side_of("canary", 4, _outcomes(4, [1100] * 100), ["Adelie"] * 45 + ["Gentoo"] * 55)
    ok = compare_sides("penguin", "penguin", stable, same, CompareThresholds())
    assert ok.crossed == [] and [c.name for c in ok.checks] == [
        "error_rate_increase", "p99_ratio", "prediction_distance"
    ]
    slow_and_failing = side_of(
        "canary", 4, _outcomes(4, [3000] * 90, failed=10), ["Adelie"] * 45 + ["Gentoo"] * 45
    )
    worse = compare_sides("penguin", "penguin", stable, slow_and_failing, CompareThresholds())
    assert worse.crossed == ["error_rate_increase", "p99_ratio"]
    text = comparison_text(worse)
    assert "stable (v3)" in text and "canary (v4)" in text and "10 (10.00%)" in text
    assert "verdict: canary is worse than stable (error_rate_increase, p99_ratio)" in text
    assert worse.to_json()["candidate"]["error_rate"] == pytest.approx(0.1)


def test_too_little_traffic_is_refused_naming_the_side():
    stable = side_of("stable", 3, _outcomes(3, [1000] * 100), [])
    thin = side_of("canary", 4, _outcomes(4, [1000] * 5), [])
    with pytest.raises(DataError, match=r"canary \(version 4 of penguin\) answered 5 request"):
        compare_sides("penguin", "penguin", stable, thin, CompareThresholds())


def test_numbers_are_compared_by_the_largest_gap_between_their_distributions():
    assert cdf_distance([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]) == 0.0
    assert cdf_distance([1.0, 2.0], [3.0, 4.0]) == 1.0
    # At 2: all of the first sample lies at or below it, half of the second.
    assert cdf_distance([1.0, 2.0], [1.5, 3.0]) == pytest.approx(0.5)
    assert cdf_distance([1.0, 1.0, 5.0], [1.0, 5.0, 5.0]) == pytest.approx(1 / 3)
    assert cdf_distance([], [1.0]) == 0.0


def test_a_regression_canary_is_judged_by_its_predicted_numbers():
    stable_values = [100.0 + i for i in range(100)]
    stable = side_of("stable", 3, _outcomes(3, [1000] * 100), [], stable_values)
    alike = side_of("canary", 4, _outcomes(4, [1000] * 100), [], [v + 5 for v in stable_values])
    ok = compare_sides("diabetes", "diabetes", stable, alike, CompareThresholds())
    assert ok.crossed == [] and [c.name for c in ok.checks] == [
        "error_rate_increase", "p99_ratio", "prediction_distance"
    ]
    assert ok.checks[-1].value == pytest.approx(0.05)
    assert (stable.predicted_rows, stable.predicted_mean) == (100, pytest.approx(149.5))
    assert stable.predictions == {}

    higher = side_of("canary", 4, _outcomes(4, [1000] * 100), [], [v + 60 for v in stable_values])
    worse = compare_sides("diabetes", "diabetes", stable, higher, CompareThresholds())
    assert worse.crossed == ["prediction_distance"]
    assert worse.checks[-1].value == pytest.approx(0.6)
    text = comparison_text(worse)
    assert "predicted mean  149.5" in text and "209.5" in text and "predicted std" in text
    assert "verdict: canary is worse than stable (prediction_distance)" in text
    data = worse.to_json()
    assert data["candidate"]["predicted_mean"] == pytest.approx(209.5)
    assert "values" not in data["candidate"]  # the numbers themselves stay out of the JSON
    assert "predicted_mean" not in compare_sides(
        "penguin", "penguin", side_of("stable", 3, _outcomes(3, [1000] * 30), ["A"] * 30),
        side_of("canary", 4, _outcomes(4, [1000] * 30), ["A"] * 30), CompareThresholds(),
    ).to_json()["candidate"]
