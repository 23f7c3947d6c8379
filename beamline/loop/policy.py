"""What a loop step decides, from the window's verdict and the spans on disk (pure).

Policies (`--retrain-on`):
- `drift`: retrain when the window's distributions moved (skew, drift, predictions);
- `new-data`: retrain whenever a span newer than the served model's training span exists;
- `drift+new-data` (default): either signal; the trigger's kind says which (drift first).
Every retrain needs a span newer than the one the served model trained on: retraining on the
same data gives the same model. Drift without one is an alert ("drift on body_mass_g, no new
data since span 3"). Too many bad requests (data quality) never start a run: retraining cannot
fix the clients.
"""

from __future__ import annotations

from dataclasses import dataclass

from beamline.metadata.records import Decision, TriggerKind

DRIFT = "drift"
NEW_DATA = "new-data"
DRIFT_OR_NEW_DATA = "drift+new-data"
POLICIES = (DRIFT, NEW_DATA, DRIFT_OR_NEW_DATA)


@dataclass(frozen=True)
class Signals:
    """What the step saw."""

    drifted: list[str]  # features whose distribution moved, e.g. ["body_mass_g"]
    drift_detail: str  # "body_mass_g JSD 0.41 > 0.10 (window ...)", "" when none
    data_quality: str  # the data-quality summary when the verdict is `data quality`, else ""
    served_span: int | None  # the span the served model trained on (None: unknown)
    newest_span: int | None  # the newest span under --data (None: no spans)
    no_traffic: str = ""  # why nothing was monitored ("" when a window was monitored)

    @property
    def new_data(self) -> bool:
        return self.newest_span is not None and (
            self.served_span is None or self.newest_span > self.served_span
        )


@dataclass(frozen=True)
class Verdict:
    decision: str  # records.Decision
    kind: str  # records.TriggerKind of the run it starts ("" when none)
    reason: str  # one line, recorded and printed


def _since(signals: Signals) -> str:
    return f"span {signals.served_span}" if signals.served_span is not None else "the last run"


def decide(policy: str, signals: Signals) -> Verdict:
    watches_drift = policy in (DRIFT, DRIFT_OR_NEW_DATA)
    watches_data = policy in (NEW_DATA, DRIFT_OR_NEW_DATA)
    newer = f"span {signals.newest_span} is newer than {_since(signals)}"
    if signals.drifted and watches_drift:
        if signals.new_data:
            return Verdict(Decision.RETRAIN, TriggerKind.DRIFT, f"{signals.drift_detail}; {newer}")
        return Verdict(
            Decision.ALERT,
            "",
            f"drift on {', '.join(signals.drifted)}, no new data since {_since(signals)} "
            f"({signals.drift_detail})",
        )
    if signals.new_data and watches_data:
        return Verdict(Decision.RETRAIN, TriggerKind.NEW_DATA, newer)
    if signals.data_quality:
        return Verdict(Decision.DATA_QUALITY, "", f"data quality: {signals.data_quality}")
    if signals.no_traffic:
        why = signals.no_traffic
    elif signals.drifted:  # new-data policy: drift is reported, not acted on
        why = f"drift on {', '.join(signals.drifted)} (policy {policy} retrains on new data only)"
    else:
        why = "no drift"
    if signals.new_data:
        why += f"; {newer}, but policy {policy} waits for drift"
    elif signals.newest_span is not None:
        why += f"; no new data since {_since(signals)}"
    return Verdict(Decision.NOTHING, "", why)
