"""The loop's decision table (pure), its policies named by what they do, and their first names
still read (with one warning on the command line)."""

from __future__ import annotations

import pytest

from beamline.errors import ConfigError
from beamline.loop.policy import (
    DEFAULT_POLICY,
    DEPRECATED,
    NEW_SPAN,
    NEW_SPAN_IF_DRIFT,
    NEW_SPAN_IGNORE_DRIFT,
    POLICIES,
    Signals,
    decide,
    policy_named,
)
from beamline.metadata.records import Decision, TriggerKind

DETAIL = "body_mass_g JSD 0.41 > 0.10 (window ...)"


def _signals(drift=False, quality="", served=3, newest=3, no_traffic=""):
    return Signals(
        ["body_mass_g"] if drift else [], DETAIL if drift else "", quality, served, newest,
        no_traffic,
    )


def test_drift_with_a_new_span_retrains_and_says_why():
    verdict = decide(NEW_SPAN, _signals(drift=True, newest=4))
    assert (verdict.decision, verdict.kind) == (Decision.RETRAIN, TriggerKind.DRIFT)
    assert verdict.reason == f"{DETAIL}; span 4 is newer than span 3"


@pytest.mark.parametrize("policy", [NEW_SPAN_IF_DRIFT, NEW_SPAN])
def test_drift_without_new_data_is_an_alert(policy):
    verdict = decide(policy, _signals(drift=True))
    assert verdict.decision == Decision.ALERT and verdict.kind == ""
    assert verdict.reason.startswith("drift on body_mass_g, no new data since span 3")


def test_new_data_alone_retrains_under_the_policies_that_watch_it():
    assert decide(NEW_SPAN_IGNORE_DRIFT, _signals(newest=4)).kind == TriggerKind.NEW_DATA
    assert decide(NEW_SPAN, _signals(newest=4)).kind == TriggerKind.NEW_DATA
    waiting = decide(NEW_SPAN_IF_DRIFT, _signals(newest=4))
    assert waiting.decision == Decision.NOTHING and "waits for drift" in waiting.reason


def test_data_quality_never_retrains_and_nothing_is_nothing():
    verdict = decide(NEW_SPAN, _signals(quality="30 of 300 request rows ..."))
    assert verdict.decision == Decision.DATA_QUALITY
    calm = decide(NEW_SPAN, _signals())
    assert calm.decision == Decision.NOTHING
    assert calm.reason == "no drift; no new data since span 3"
    quiet = decide(NEW_SPAN_IF_DRIFT, _signals(no_traffic="no requests logged between a and b"))
    assert quiet.reason.startswith("no requests logged")


def test_new_span_ignore_drift_reports_drift_without_acting_on_it():
    verdict = decide(NEW_SPAN_IGNORE_DRIFT, _signals(drift=True))
    assert verdict.decision == Decision.NOTHING and "drift on body_mass_g" in verdict.reason
    assert f"policy {NEW_SPAN_IGNORE_DRIFT} does not act on drift" in verdict.reason


SITUATIONS = [
    {"drift": d, "newest": n, "quality": q}
    for d in (False, True) for n in (3, 4, None) for q in ("", "30 of 300 rows")
]


@pytest.mark.parametrize("situation", SITUATIONS)
def test_every_policy_retrains_only_on_a_new_span_and_the_names_say_which(situation):
    signals = _signals(**situation)
    retrains = {p: decide(p, signals).decision == Decision.RETRAIN for p in POLICIES}
    new_span = signals.new_data
    assert retrains == {
        NEW_SPAN: new_span,
        NEW_SPAN_IF_DRIFT: new_span and situation["drift"],
        NEW_SPAN_IGNORE_DRIFT: new_span,
    }
    alerts = {p: decide(p, signals).decision == Decision.ALERT for p in POLICIES}
    assert alerts[NEW_SPAN_IGNORE_DRIFT] is False


@pytest.mark.parametrize("situation", SITUATIONS)
@pytest.mark.parametrize(("old", "new"), sorted(DEPRECATED.items()))
def test_a_deprecated_name_decides_exactly_as_its_new_name(old, new, situation):
    assert decide(old, _signals(**situation)) == decide(new, _signals(**situation))


def test_the_default_retrains_on_every_new_span_and_an_unknown_name_lists_the_policies():
    assert DEFAULT_POLICY == NEW_SPAN == policy_named("drift+new-data")
    with pytest.raises(ConfigError, match="'drift-and-new-data' is not a policy: use one of "
                       "new-span, new-span-if-drift, new-span-ignore-drift"):
        policy_named("drift-and-new-data")
