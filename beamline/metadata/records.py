"""The MLMD records of model versions and of the continuous-training loop: one owner.

Written by `beamline promote|rollback` and the push (label changes), by `beamline loop` (trigger
decisions), and read by `models`, `labels`, `lineage`, `runs` and `beamline ui`. Names only: the
writers and readers live with their commands; this module fixes what they agree on.

Label changes
    One `beamline.LabelChange` execution per change of a label (a push under the canary policy,
    a promote, a rollback), associated with the pipeline's `beamline_models` context (named
    after the pipeline). Custom properties are the LABEL_* names below; versions are ints, -1
    for "none" (a label's first assignment has no from-version). An INPUT event (key
    `pushed_model`) points at the PushedModel artifact of the to-version when a run recorded
    one. A label's history is its changes ordered by LABEL_TIME_MS, then execution id.

Loop triggers
    One `beamline.Trigger` execution per loop step decision, associated with the pipeline's
    `beamline_loop` context (named after the pipeline) and, when it started a run, with that
    run's `pipeline_run` context. Custom properties are the TRIGGER_* names below. An INPUT
    event (key `monitoring_result`) points at the MonitoringResult artifact of the monitoring
    execution it decided from. The run it started carries run_context.TRIGGER (its kind) and
    run_context.TRIGGER_EXECUTION_ID (this execution's id) on its pipeline_run context.
"""

from __future__ import annotations

from beamline_serving.core import serving_root

# Label changes.
LABEL_CHANGE_EXECUTION = "beamline.LabelChange"
MODELS_CONTEXT = "beamline_models"
LABEL_PIPELINE = "pipeline"
LABEL_NAME = "label"
LABEL_FROM_VERSION = "from_version"  # int, NO_VERSION when the label held none
LABEL_TO_VERSION = "to_version"  # int
LABEL_ACTION = "action"  # one of LabelAction
LABEL_REASON = "reason"
LABEL_USER = "user"
LABEL_HOST = "host"
LABEL_TIME_MS = "time_ms"  # ms since epoch, as a string (MySQL int_value is 32-bit)
LABEL_INPUT_KEY = "pushed_model"
NO_VERSION = -1


class LabelAction:
    PUSH = "push"  # a blessed push under the canary policy took the canary label
    PROMOTE = "promote"
    ROLLBACK = "rollback"


# On a pipeline_run context: the push policy the run applied (settings.PushPolicy), so that
# recovery can finish a push's label step the run did not live to record.
RUN_PUSH_POLICY = "beamline_push_policy"


# Labels with a meaning of their own (any other name is a user's label). The model server gives
# them theirs (unversioned requests, the canary share), so its serving-root contract names them.
STABLE_LABEL = serving_root.STABLE
CANARY_LABEL = serving_root.CANARY


# Loop triggers.
TRIGGER_EXECUTION = "beamline.Trigger"
LOOP_CONTEXT = "beamline_loop"
TRIGGER_PIPELINE = "pipeline"
TRIGGER_KIND = "kind"  # one of TriggerKind
TRIGGER_DECISION = "decision"  # one of Decision
TRIGGER_REASON = "reason"  # one line, e.g. "body_mass_g JSD 0.41 > 0.10 (window ...)"
TRIGGER_WINDOW_FIRST_SECS = "window_first_secs"
TRIGGER_WINDOW_LAST_SECS = "window_last_secs"
TRIGGER_MONITOR_EXECUTION_ID = "monitor_execution_id"
TRIGGER_RUN_ID = "run_id"  # the run it started, "" when none
TRIGGER_SPAN = "span"  # the span the run trained on, -1 when none
TRIGGER_TIME_MS = "time_ms"  # string (MySQL's int_value is 32 bits), ms since epoch
TRIGGER_OUTCOME = "outcome"  # what the decided run led to: "pushed version N", "not blessed..."
# Under the canary push policy, what the step's review of the canary did: "promoted canary
# version N to stable: ..." or why stable stays; "" when there was nothing to review.
TRIGGER_CANARY_REVIEW = "canary_review"
TRIGGER_INPUT_KEY = "monitoring_result"


class TriggerKind:
    """What started a run (the TRIGGER column of `runs`)."""

    MANUAL = "manual"
    SCHEDULE = "schedule"
    DRIFT = "drift"
    NEW_DATA = "new data"
    REPRODUCE = "reproduce"  # `beamline reproduce`: an earlier run again, from its kept versions


class Decision:
    """What a loop step decided."""

    RETRAIN = "retrain"
    ALERT = "alert"  # drift with no new data: no run, an alert
    DATA_QUALITY = "data quality"  # schema violations in the requests: no run
    NOTHING = "nothing"
