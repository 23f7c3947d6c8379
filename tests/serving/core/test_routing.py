"""The version routing rules: label moves, request keys, canary buckets, routing.json."""

from __future__ import annotations

import re

import pytest

from beamline_serving.core.routing import (
    BUCKETS,
    MAX_REQUEST_KEY,
    Routing,
    bucket,
    check_request_key,
    resolve_labels,
)
from beamline_serving.core.serving_root import check_percent, parse_routing_json
from beamline_serving.errors import Code, ConfigError, ServingError


def test_a_label_moves_at_once_onto_an_available_version():
    assert resolve_labels({"stable": 2}, {"stable": 1}, {1, 2}) == {"stable": 2}


def test_a_label_keeps_its_version_while_the_new_one_loads_or_after_it_failed():
    # 3 is not AVAILABLE (loading, failed, or not on disk): stable stays on 1.
    assert resolve_labels({"stable": 3, "canary": 2}, {"stable": 1}, {1, 2}) == {
        "stable": 1,
        "canary": 2,
    }


def test_a_new_label_waits_for_its_version_unless_allowed_as_in_tf_serving():
    assert resolve_labels({"canary": 3}, {}, {1}) == {}
    assert resolve_labels({"canary": 3}, {}, {1}, allow_unavailable=True) == {"canary": 3}


def test_the_allow_flag_never_moves_an_existing_label_onto_an_unavailable_version():
    # TF Serving: "contains_existing_label_with_different_version" still fails with the flag.
    assert resolve_labels({"stable": 3}, {"stable": 1}, {1}, allow_unavailable=True) == {
        "stable": 1
    }


def test_a_label_removed_from_the_config_is_dropped():
    assert resolve_labels({}, {"canary": 2}, {1, 2}) == {}


@pytest.mark.parametrize("value", [None, ""])
def test_no_request_key_means_random_routing(value):
    assert check_request_key(value) is None


@pytest.mark.parametrize(
    "value", ["x" * (MAX_REQUEST_KEY + 1), "caf\u00e9", "tab\there", "bell\x07"]
)
def test_an_unusable_request_key_is_invalid_argument(value):
    with pytest.raises(ServingError) as caught:
        check_request_key(value)
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert "X-Beamline-Request-Key" in caught.value.message


def test_buckets_are_stable_and_spread_evenly():
    keys = [f"user-{i}" for i in range(20_000)]
    buckets = [bucket(k) for k in keys]
    assert buckets == [bucket(k) for k in keys]  # deterministic
    assert all(0 <= b < BUCKETS for b in buckets)
    share = sum(b < BUCKETS // 10 for b in buckets) / len(buckets)  # a 10 % canary
    assert 0.09 < share < 0.11


def test_routing_json_gives_per_model_percentages_over_the_flag():
    percents = parse_routing_json(
        '{"models": {"penguin": {"canary_percent": 25}, "taxi": {"note": "kept"}}}', "r.json"
    )
    assert percents == {"penguin": 25.0}
    routing = Routing(5.0, percents)
    assert (routing.percent("penguin"), routing.percent("taxi")) == (25.0, 5.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "Cannot parse r.json as JSON"),
        ("[]", "top level must be a JSON object"),
        ('{"models": []}', '"models" must be an object'),
        ('{"models": {"m": 3}}', "models.m must be an object"),
        ('{"models": {"m": {"canary_percent": 150}}}', "models.m.canary_percent is 150"),
        ('{"models": {"m": {"canary_percent": -1}}}', "outside 0..100"),
        ('{"models": {"m": {"canary_percent": "10"}}}', "must be a number"),
        ('{"models": {"m": {"canary_percent": true}}}', "must be a number"),
        ('{"models": {"m": {"canary_percent": NaN}}}', "must be a number"),
        # An int too large for a float: refused, not an OverflowError out of the poll.
        ('{"models": {"m": {"canary_percent": 1' + "0" * 400 + "}}}", "outside 0..100"),
        ('{"models": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
)
def test_hostile_routing_json_is_a_config_error_naming_the_field(text, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        parse_routing_json(text, "r.json")


def test_percent_bounds_are_inclusive():
    assert check_percent(0, "x") == 0.0 and check_percent(100, "x") == 100.0
