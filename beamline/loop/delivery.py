"""What serves after a loop run: the push policy's path.

- `live`: the Pusher's push *is* the delivery. A blessed model lands as a new version directory
  under the serving root and a server on the default `latest` version policy serves it once it
  has loaded it; an unblessed model pushes nothing, so nothing serves differently.
- `canary`: the run's push takes the `canary` label (the runner applies the policy), `stable`
  stays; each later step reads the canary's own traffic in its window and promotes it to
  `stable` once that is healthy (`review_canary`), recorded as a beamline.LabelChange.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from beamline.errors import ConfigError

if TYPE_CHECKING:
    from beamline.runner.outcome import RunOutcome

LIVE = "live"
CANARY = "canary"
PUSH_POLICIES = (LIVE, CANARY)


@dataclass(frozen=True)
class Delivery:
    serves_new_version: bool
    version: str | None
    message: str  # one line, recorded as the trigger's outcome


def deliver(policy: str, outcome: RunOutcome, store, pipeline: str) -> Delivery:
    """Delivers a finished run's model under `policy`."""
    if outcome.blessed is False or (outcome.blessed is None and not outcome.pushed):
        return Delivery(
            False,
            None,
            f"run {outcome.run_id}: the model was not blessed by the Evaluator; nothing was "
            "pushed and nothing serves differently",
        )
    if not outcome.pushed:
        return Delivery(
            False,
            None,
            f"run {outcome.run_id}: blessed, but the Pusher pushed no new version (its output "
            "came from the cache); nothing serves differently",
        )
    if policy == CANARY:
        return canary_then_promote(store, pipeline, outcome)
    return Delivery(
        True,
        outcome.pushed_version,
        f"run {outcome.run_id}: blessed and pushed as version {outcome.pushed_version} "
        f"({outcome.pushed_path}); push policy live: it serves as the newest version",
    )


def canary_then_promote(store, pipeline: str, outcome: RunOutcome) -> Delivery:
    """The canary policy's first half: the run's push took the `canary` label (the runner's
    push policy, recorded as a beamline.LabelChange) and `stable` stays where it was. A later
    step promotes it once its own traffic in a window is healthy (`review_canary`)."""
    from beamline.metadata import labels as history
    from beamline.metadata.records import CANARY_LABEL, STABLE_LABEL

    held = history.holders(history.history(store, pipeline))
    stable, canary = held.get(STABLE_LABEL), held.get(CANARY_LABEL)
    version = outcome.pushed_version
    if stable is not None and str(stable) == str(version):
        note = f"it took both {CANARY_LABEL} and {STABLE_LABEL} (no version held stable before)"
        return Delivery(True, version, f"run {outcome.run_id}: blessed and pushed as version "
                        f"{version}; push policy canary: {note}")
    return Delivery(
        False,
        version,
        f"run {outcome.run_id}: blessed and pushed as version {version}; push policy canary: "
        f"it holds {CANARY_LABEL} (held: {canary}), {STABLE_LABEL} stays on {stable} until a "
        f"step sees at least {MIN_CANARY_REQUESTS} healthy canary requests in a window "
        f"(or `beamline promote {pipeline} {version} --label {STABLE_LABEL}`)",
    )


# A canary is promoted on evidence, not on silence: this many of its own logged requests in one
# window, with no threshold crossed and no data-quality verdict.
MIN_CANARY_REQUESTS = 50


def review_canary(store, graph, layout, pipeline: str, versions, window: str) -> str | None:
    """Promotes the `canary` version to `stable` when its traffic in this window was healthy;
    returns what it did (one line), or None when there is no canary apart from stable.

    `versions` are the monitoring report's per-version results (beamline.monitor.monitor).
    """
    from beamline.metadata import labels as history
    from beamline.metadata.records import CANARY_LABEL, STABLE_LABEL
    from beamline.models.changes import promote

    held = history.holders(history.history(store, pipeline))
    canary, stable = held.get(CANARY_LABEL), held.get(STABLE_LABEL)
    if canary is None or canary == stable:
        return None
    seen = [v for v in versions if v.version == canary]
    if not seen or seen[0].requests < MIN_CANARY_REQUESTS:
        count = seen[0].requests if seen else 0
        return (
            f"canary version {canary}: {count} request(s) in this window, fewer than "
            f"{MIN_CANARY_REQUESTS}: {STABLE_LABEL} stays on {stable}"
        )
    report = seen[0]
    if report.crossed or report.data_quality:
        what = ", ".join(report.crossed) if report.crossed else "data quality"
        return (
            f"canary version {canary} is not healthy in this window ({what}): {STABLE_LABEL} "
            f"stays on {stable}; `beamline rollback {pipeline} --label {CANARY_LABEL}` "
            "withdraws it"
        )
    reason = (
        f"beamline loop: canary healthy in window {window} ({report.requests} requests, no "
        "threshold crossed)"
    )
    done = promote(store, graph, layout, pipeline, canary, STABLE_LABEL, reason=reason)
    return f"promoted canary version {canary} to {STABLE_LABEL}: {done.message} ({reason})"


def check_policy(policy: str) -> None:
    """Refuses, before any step, a push policy the loop does not know."""
    if policy not in PUSH_POLICIES:
        raise ConfigError(
            f"Push policy {policy!r} is not one of {', '.join(PUSH_POLICIES)}: `live` serves a "
            "blessed push at once, `canary` gives it the canary label and promotes it to stable "
            "once its own traffic is healthy."
        )
