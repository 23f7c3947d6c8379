"""A run id that no other run in the same MLMD store holds: claimed by creating its context.

Run ids are timestamps (readable, sortable), and two runs of one pipeline into different roots
may share one store (MySQL for a team). Two runners that start in the same microsecond would
otherwise share one `pipeline_run` context, and every node would resolve both runs' artifacts
("expected list length of one but got 2"). MLMD enforces unique (type, name) for contexts, so
creating the context *is* the claim: whoever loses picks the next microsecond.

The claimed context is stamped with the runner's identity and state `running` at once, so a
reader never sees an unowned run (see beamline.metadata.liveness).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping

from beamline.errors import ConfigError
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import now_ms, this_process

# Collisions need runners starting in the same microsecond; a handful of retries is plenty.
MAX_ATTEMPTS = 50


def claim_run_id(
    store,
    pipeline: str,
    requested: str | None = None,
    now: Callable[[], datetime.datetime] = datetime.datetime.now,
    trigger: str | None = None,
    trigger_execution_id: int | None = None,
    experiment: str | None = None,
    overrides: Mapping[str, object] | None = None,
    beam_profile: str | None = None,
) -> str:
    """Creates the run's `pipeline_run` context and returns its name (the run id).

    With `requested`, that exact id or a ConfigError; otherwise the current time, moved on by
    a microsecond while another run holds it. `trigger` (records.TriggerKind) and
    `trigger_execution_id` (the loop's beamline.Trigger execution) are stamped on it too, and
    so are the run's `experiment` and `overrides` (`beamline run --experiment/--set`) and the
    Beam profile its jobs run on.
    """
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.proto import metadata_store_pb2 as pb

    type_id = _context_type(store, rc.RUN_CONTEXT)
    parent = _pipeline_context(store, pipeline)
    stamp = now()
    for _ in range(MAX_ATTEMPTS):
        run_id = requested or stamp.isoformat()
        context = pb.Context(type_id=type_id, name=run_id)
        stamp_runner(context, pipeline)
        if trigger:
            context.custom_properties[rc.TRIGGER].string_value = trigger
        if trigger_execution_id is not None:
            context.custom_properties[rc.TRIGGER_EXECUTION_ID].int_value = trigger_execution_id
        if experiment:
            context.custom_properties[rc.EXPERIMENT].string_value = experiment
        if overrides:
            context.custom_properties[rc.OVERRIDES].string_value = json.dumps(
                dict(overrides), sort_keys=True
            )
        if beam_profile:
            context.custom_properties[rc.BEAM_PROFILE].string_value = beam_profile
        try:
            [context_id] = store.put_contexts([context])
            # TFX links a run to its pipeline only when it creates the run's context itself.
            store.put_parent_contexts([pb.ParentContext(child_id=context_id, parent_id=parent)])
            return run_id
        except mlmd_errors.AlreadyExistsError:
            if requested:
                raise ConfigError(
                    f"Run id {requested!r} is already taken in the metadata store: every run "
                    "needs its own id. Leave the run id unset to get a fresh one."
                ) from None
            stamp += datetime.timedelta(microseconds=1)
    raise ConfigError(
        f"Could not claim a run id for {pipeline!r}: {MAX_ATTEMPTS} consecutive ids from "
        f"{now().isoformat()} are taken in the metadata store. Check the machine's clock."
    )


def _context_type(store, name: str) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    return store.put_context_type(
        pb.ContextType(name=name), can_add_fields=True, can_omit_fields=True
    )


def _pipeline_context(store, pipeline: str) -> int:
    """The id of the pipeline's context (TFX's `pipeline` type), created if new."""
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.proto import metadata_store_pb2 as pb

    existing = store.get_context_by_type_and_name(rc.PIPELINE_CONTEXT, pipeline)
    if existing is not None:
        return existing.id
    try:
        [context_id] = store.put_contexts(
            [pb.Context(type_id=_context_type(store, rc.PIPELINE_CONTEXT), name=pipeline)]
        )
        return context_id
    except mlmd_errors.AlreadyExistsError:  # another runner created it just now
        return store.get_context_by_type_and_name(rc.PIPELINE_CONTEXT, pipeline).id


def stamp_runner(context, pipeline: str) -> None:
    """Marks `context` as run by this process, now."""
    me = this_process()
    context.custom_properties[rc.RUNNER_PID].int_value = me.pid
    context.custom_properties[rc.RUNNER_HOST].string_value = me.host
    context.custom_properties[rc.RUNNER_START].string_value = me.start
    context.custom_properties[rc.PIPELINE].string_value = pipeline
    context.custom_properties[rc.STATE].string_value = rc.RunState.RUNNING
    context.custom_properties[rc.HEARTBEAT_MS].string_value = str(now_ms())
