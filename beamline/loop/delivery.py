"""What serves after a loop run: the push policy's path.

- `live`: the Pusher's push *is* the delivery. A blessed model lands as a new version directory
  under the serving root and a server on the default `latest` version policy serves it once it
  has loaded it; an unblessed model pushes nothing, so nothing serves differently.
- `canary`: the run's push takes the `canary` label (the runner applies the policy), `stable`
  stays; each later step reads the canary's own traffic in its window and promotes it to
  `stable` once that is healthy and not worse than stable's (`review_canary`), recorded as a
  beamline.LabelChange.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from beamline.errors import ConfigError, DataError
from beamline.monitor.canary import CompareThresholds
from beamline.settings import PushPolicy

if TYPE_CHECKING:
    from beamline.runner.outcome import RunOutcome

LIVE = PushPolicy.LIVE
CANARY = PushPolicy.CANARY
PUSH_POLICIES = PushPolicy.ALL


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
        f"step sees at least {MIN_CANARY_REQUESTS} healthy canary requests in a window, no "
        f"worse than {STABLE_LABEL}'s (or `beamline promote {pipeline} {version} --label "
        f"{STABLE_LABEL}`)",
    )


# A canary is promoted on evidence, not on silence: this many of its own logged requests in one
# window, with no threshold crossed and no data-quality verdict.
MIN_CANARY_REQUESTS = 50


@dataclass(frozen=True)
class CanaryWindow:
    """The window a step reviews the canary in: its text for records and, for the comparison
    with stable, the request log directory (outcome files) and its bounds."""

    text: str
    requests_dir: Path | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def review_canary(
    store, graph, layout, pipeline: str, versions, window: CanaryWindow,
    limits: CompareThresholds | None = None,
) -> str | None:
    """Promotes the `canary` version to `stable` when its traffic in this window was healthy;
    returns what it did (one line), or None when there is no canary apart from stable.

    Healthy: enough of its own requests, no drift or data-quality verdict (`versions`, the
    monitoring report's per-version results, beamline.monitor.monitor), and, when the server
    wrote outcome files, not worse than stable on error rate, p99 latency or predictions
    (predicted classes, or a regression model's predicted numbers: the checks of
    `beamline monitor --compare stable canary`).
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
    withdraw = f"`beamline rollback {pipeline} --label {CANARY_LABEL}` withdraws it"
    if report.crossed or report.data_quality:
        what = ", ".join(report.crossed) if report.crossed else "data quality"
        return (
            f"canary version {canary} is not healthy in this window ({what}): {STABLE_LABEL} "
            f"stays on {stable}; {withdraw}"
        )
    served = _against_stable(graph, stable, canary, window, limits or CompareThresholds())
    if not served.healthy:
        return f"{served.text}: {STABLE_LABEL} stays on {stable}" + (
            f"; {withdraw}" if served.worse else ""
        )
    reason = (
        f"beamline loop: canary healthy in window {window.text} ({report.requests} requests, "
        f"no threshold crossed; {served.text})"
    )
    done = promote(store, graph, layout, pipeline, canary, STABLE_LABEL, reason=reason)
    return f"promoted canary version {canary} to {STABLE_LABEL}: {done.message} ({reason})"


@dataclass(frozen=True)
class _StableComparison:
    healthy: bool
    text: str
    worse: bool = False


def _against_stable(
    graph, stable: int | None, canary: int, window: CanaryWindow, limits: CompareThresholds
) -> _StableComparison:
    """The canary's served traffic against stable's in the window, from the outcome files.

    A server that writes none (TF Serving itself) leaves only the data checks: the canary is
    judged on those, and the record says the serving side was not compared."""
    from beamline.monitor.canary import compare_sides
    from beamline.monitor.compare_versions import stable_and_canary
    from beamline_serving.request_log.outcomes import outcome_files

    if stable is None or window.requests_dir is None or not outcome_files(window.requests_dir):
        return _StableComparison(True, "no outcome files: error rate and latency not compared")
    try:
        model_name, base, candidate = stable_and_canary(
            graph, window.requests_dir, stable, canary, window.since, window.until
        )
    except DataError:  # neither answered in the window (or no push record names the model)
        base = candidate = None
    if base is None or base.requests < limits.min_requests:
        count = base.requests if base is not None else 0
        return _StableComparison(
            False,
            f"canary version {canary} cannot be compared with stable version {stable}: stable "
            f"answered {count} request(s) in this window, fewer than the {limits.min_requests} "
            "a comparison needs (serve with --canary_percent below 100 so both answer)",
        )
    comparison = compare_sides("", model_name, base, candidate, limits)
    figures = ", ".join(
        f"{c.name} {c.value:.4g}" + (f" > {c.threshold:g}" if c.crossed else "")
        for c in comparison.checks
    )
    if comparison.crossed:
        return _StableComparison(
            False,
            f"canary version {canary} is worse than stable version {stable} in this window "
            f"({figures}; {candidate.requests} against {base.requests} requests)",
            worse=True,
        )
    return _StableComparison(
        True, f"against stable version {stable} ({base.requests} requests): {figures}"
    )


def check_policy(policy: str) -> None:
    """Refuses, before any step, a push policy the loop does not know."""
    if policy not in PUSH_POLICIES:
        raise ConfigError(
            f"Push policy {policy!r} is not one of {', '.join(PUSH_POLICIES)}: `live` serves a "
            "blessed push at once, `canary` gives it the canary label and promotes it to stable "
            "once its own traffic is healthy."
        )
