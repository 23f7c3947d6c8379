"""What a loop step decides, from the window's verdict and the spans on disk (pure).

Policies (`--retrain-on`), named by what they do. Every retrain needs a span newer than the one
the served model trained on (retraining on the same data gives the same model), so each policy
is an answer to "which new spans retrain?":
- `new-span` (default): every new span retrains (the trigger says drift when the window also
  drifted); drift without a new span is an alert ("drift on body_mass_g, no new data since
  span 3");
- `new-span-if-drift`: a new span retrains only when the window drifted; drift without a new
  span is an alert, a new span without drift waits;
- `new-span-ignore-drift`: every new span retrains; drift is only mentioned, never an alert.
Too many bad requests (data quality) never start a run: retraining cannot fix the clients.
The names before these (`drift+new-data`, `drift`, `new-data`) still work, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from beamline.errors import ConfigError
from beamline.metadata.records import Decision, TriggerKind

NEW_SPAN = "new-span"
NEW_SPAN_IF_DRIFT = "new-span-if-drift"
NEW_SPAN_IGNORE_DRIFT = "new-span-ignore-drift"
POLICIES = (NEW_SPAN, NEW_SPAN_IF_DRIFT, NEW_SPAN_IGNORE_DRIFT)
DEFAULT_POLICY = NEW_SPAN
# The first names, kept for scripts and compiled DAGs: `drift+new-data` read as "both" but
# meant "either", and behaved as `new-data` apart from the drift alert.
DEPRECATED = {
    "drift+new-data": NEW_SPAN,
    "drift": NEW_SPAN_IF_DRIFT,
    "new-data": NEW_SPAN_IGNORE_DRIFT,
}


def policy_named(name: str) -> str:
    """The policy `name` gives (a deprecated name gives its new one); ConfigError if none."""
    if name in POLICIES:
        return name
    if name in DEPRECATED:
        return DEPRECATED[name]
    raise ConfigError(
        f"--retrain-on {name!r} is not a policy: use one of {', '.join(POLICIES)} "
        "(docs/guides/continuous-training.md, \"Decide\")."
    )


def deprecation_warning(name: str) -> str | None:
    """The one `warning: ` line for a deprecated policy name (None for a current one)."""
    if name not in DEPRECATED:
        return None
    return f"warning: --retrain-on {name} is deprecated; use --retrain-on {DEPRECATED[name]}."


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
    policy = policy_named(policy)
    watches_drift = policy in (NEW_SPAN, NEW_SPAN_IF_DRIFT)  # drift alerts / names the trigger
    retrains_without_drift = policy in (NEW_SPAN, NEW_SPAN_IGNORE_DRIFT)
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
    if signals.new_data and retrains_without_drift:
        return Verdict(Decision.RETRAIN, TriggerKind.NEW_DATA, newer)
    if signals.data_quality:
        return Verdict(Decision.DATA_QUALITY, "", f"data quality: {signals.data_quality}")
    if signals.no_traffic:
        why = signals.no_traffic
    elif signals.drifted:  # new-span-ignore-drift: drift is reported, not acted on
        why = f"drift on {', '.join(signals.drifted)} (policy {policy} does not act on drift)"
    else:
        why = "no drift"
    if signals.new_data:
        why += f"; {newer}, but policy {policy} waits for drift"
    elif signals.newest_span is not None:
        why += f"; no new data since {_since(signals)}"
    return Verdict(Decision.NOTHING, "", why)
