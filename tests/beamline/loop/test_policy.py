"""The loop's decision table (pure)."""

from __future__ import annotations

import pytest

from beamline.loop.policy import DRIFT, DRIFT_OR_NEW_DATA, NEW_DATA, Signals, decide
from beamline.metadata.records import Decision, TriggerKind

DETAIL = "body_mass_g JSD 0.41 > 0.10 (window ...)"


def _signals(drift=False, quality="", served=3, newest=3, no_traffic=""):
    return Signals(
        ["body_mass_g"] if drift else [], DETAIL if drift else "", quality, served, newest,
        no_traffic,
    )


def test_drift_with_a_new_span_retrains_and_says_why():
    verdict = decide(DRIFT_OR_NEW_DATA, _signals(drift=True, newest=4))
    assert (verdict.decision, verdict.kind) == (Decision.RETRAIN, TriggerKind.DRIFT)
    assert verdict.reason == f"{DETAIL}; span 4 is newer than span 3"


@pytest.mark.parametrize("policy", [DRIFT, DRIFT_OR_NEW_DATA])
def test_drift_without_new_data_is_an_alert(policy):
    verdict = decide(policy, _signals(drift=True))
    assert verdict.decision == Decision.ALERT and verdict.kind == ""
    assert verdict.reason.startswith("drift on body_mass_g, no new data since span 3")


def test_new_data_alone_retrains_under_the_policies_that_watch_it():
    assert decide(NEW_DATA, _signals(newest=4)).kind == TriggerKind.NEW_DATA
    assert decide(DRIFT_OR_NEW_DATA, _signals(newest=4)).kind == TriggerKind.NEW_DATA
    waiting = decide(DRIFT, _signals(newest=4))
    assert waiting.decision == Decision.NOTHING and "waits for drift" in waiting.reason


def test_data_quality_never_retrains_and_nothing_is_nothing():
    verdict = decide(DRIFT_OR_NEW_DATA, _signals(quality="30 of 300 request rows ..."))
    assert verdict.decision == Decision.DATA_QUALITY
    calm = decide(DRIFT_OR_NEW_DATA, _signals())
    assert calm.decision == Decision.NOTHING
    assert calm.reason == "no drift; no new data since span 3"
    quiet = decide(DRIFT, _signals(no_traffic="no requests logged between a and b"))
    assert quiet.reason.startswith("no requests logged")


def test_new_data_policy_reports_drift_without_acting_on_it():
    verdict = decide(NEW_DATA, _signals(drift=True))
    assert verdict.decision == Decision.NOTHING and "drift on body_mass_g" in verdict.reason
