"""What serves after a loop run: the push policy's path.

- `live`: the Pusher's push *is* the delivery. A blessed model lands as a new version directory
  under the serving root and a server on the default `latest` version policy serves it once it
  has loaded it; an unblessed model pushes nothing, so nothing serves differently.
- `canary`: the new version takes the `canary` label, a canary window is monitored, and a
  healthy canary is promoted to `stable` (beamline's model versions: promote/rollback, label
  changes in MLMD). That path is the seam `canary_then_promote` below; `deliver` calls it.
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


def canary_then_promote(store, pipeline: str, outcome: RunOutcome | None) -> Delivery:
    """SEAM for the canary push policy: label the pushed version `canary`, watch a canary
    window, promote it to `stable` when healthy (else roll back), recording each label change
    as a beamline.LabelChange (beamline.metadata.records). Wired when beamline's model versions
    (promote/rollback, labels) are in; until then the loop refuses the policy up front
    (`check_policy`), so this is never reached with a model pushed and left unlabelled."""
    raise ConfigError(
        f"Push policy {CANARY!r} for pipeline {pipeline!r} needs beamline's model versions "
        "(labels, promote, rollback), which this build does not have yet. Use --push-policy "
        "live."
    )


def check_policy(policy: str) -> None:
    """Refuses, before any step, a push policy this build cannot carry out."""
    if policy == CANARY:
        canary_then_promote(None, "<pipeline>", None)
