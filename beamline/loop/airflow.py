"""The loop on Apache Airflow (`beamline compile PIPELINE --target airflow --loop`).

The DAG TFX's AirflowDagRunner builds for the pipeline (beamline.deploy.airflow_dag, one task
per node) gets two more tasks and a templated span:

- `loop_decide`, a ShortCircuitOperator upstream of every other task: one loop step's
  monitoring and decision (beamline.loop.step.decide_step: the same window bookkeeping, policy
  and beamline.Trigger record as `beamline loop`) over the window ending at the DAG run's
  `data_interval_end`. Any decision but retrain returns False, and Airflow skips every other
  task (ignore_downstream_trigger_rules=True, Airflow's default: trigger rules downstream do not
  un-skip anything). A retrain first claims the run's MLMD context (TFX's legacy `run` context,
  `<pipeline>.<Airflow run id>`, which the TFX tasks then reuse) stamped with the trigger, and
  returns the decision as XCom.
- ExampleGen's `range_config` is a template over that XCom, so the run reads the decided span
  even if a newer one lands while it runs.
- `loop_conclude` (trigger rule all_done, downstream of every pipeline task) concludes the
  trigger as `beamline loop` does: a blessed push gets its push policy's labels (live:
  `stable`; canary: `canary`, promoted by a later DAG run's decision once its traffic is
  healthy), recorded in MLMD and written to models.config, as Beamline's runner does after a
  local push; anything else is recorded; a failed task ends the trigger FAILED and fails the
  DAG run.

Airflow is imported only inside the functions that run under it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from beamline.errors import ConfigError
from beamline.lineage.orchestrators import LEGACY_PIPELINE_NAME, LEGACY_RUN, LEGACY_RUN_ID
from beamline.loop import triggers as tr
from beamline.loop.delivery import LIVE, check_policy
from beamline.loop.policy import DEFAULT_POLICY, deprecation_warning, policy_named
from beamline.loop.step import LoopRequest
from beamline.metadata import run_context as rc
from beamline.metadata.records import Decision

DECIDE_TASK = "loop_decide"
CONCLUDE_TASK = "loop_conclude"
# ExampleGen reads the span the decision named ("" when the data has no spans: the latest).
RANGE_CONFIG_TEMPLATE = (
    "{{ ti.xcom_pull(task_ids='" + DECIDE_TASK + "')['range_config'] }}"
)


@dataclass(frozen=True)
class LoopDagSettings:
    """The loop flags the DAG file holds (plain values; rendered as Python)."""

    data: str
    requests: str
    policy: str = DEFAULT_POLICY
    push_policy: str = LIVE
    thresholds: dict[str, float] = field(default_factory=dict)
    max_invalid_fraction: float = 0.02
    beam_profile: str = "direct"


def loop_settings(
    *,
    data: Path | None,
    requests: Path | None,
    policy: str,
    thresholds: dict[str, float],
    push_policy: str = LIVE,
    max_invalid_fraction: float,
    beam_profile: str,
) -> dict[str, Any]:
    """Checks the loop flags of `compile --loop` (no store needed yet) and returns them."""
    missing = [f for f, v in (("--data", data), ("--requests", requests)) if v is None]
    if missing:
        raise ConfigError(
            f"--loop needs {' and '.join(missing)}: the data directory new spans land in "
            "(--data DIR, as `beamline loop --data`) and the server's request log directory "
            "(--requests DIR, `beamline serve --request_log_dir`), as the workers see them."
        )
    policy = policy_named(policy)
    check_policy(push_policy)
    data = data.expanduser().resolve()
    if not data.is_dir():
        raise ConfigError(
            f"--data {data} is not a directory. The loop DAG reads spans from it (span-1/, "
            "span-2/ ... or the pipeline's SPAN_PATTERN); point it at the directory new spans "
            "are added to, as the Airflow workers see it."
        )
    return asdict(
        LoopDagSettings(
            data=str(data),
            requests=str(requests.expanduser().resolve()),
            policy=policy,
            push_policy=push_policy,
            thresholds=dict(thresholds),
            max_invalid_fraction=max_invalid_fraction,
            beam_profile=beam_profile,
        )
    )


# --- the DAG ---------------------------------------------------------------------------------


def add_loop_tasks(dag, settings: Mapping[str, Any], loop: Mapping[str, Any]):
    """Gates the pipeline tasks of `dag` (built by beamline.deploy.airflow_dag.build_dag from
    `settings`) behind the loop's decision; returns `dag`."""
    from airflow.operators.python import PythonOperator, ShortCircuitOperator
    from airflow.utils.trigger_rule import TriggerRule

    settings, loop = dict(settings), dict(loop)
    pipeline_tasks = list(dag.tasks)
    roots = list(dag.roots)
    for task in pipeline_tasks:
        props = (getattr(task, "op_kwargs", None) or {}).get("exec_properties")
        if isinstance(props, dict) and "input_base" in props and "input_config" in props:
            props["range_config"] = RANGE_CONFIG_TEMPLATE  # an ExampleGen
    # pre_execute=None: the secrets hook of the TFX tasks fills their Beam args, which these
    # tasks do not have.
    decide_task = ShortCircuitOperator(
        task_id=DECIDE_TASK,
        python_callable=functools.partial(decide, settings, loop),
        ignore_downstream_trigger_rules=True,
        pre_execute=None,
        dag=dag,
        doc_md="The loop's monitoring and decision (`beamline loop`'s step): the pipeline "
        "tasks run only when it decides to retrain.",
    )
    conclude_task = PythonOperator(
        task_id=CONCLUDE_TASK,
        python_callable=functools.partial(conclude, settings, loop),
        trigger_rule=TriggerRule.ALL_DONE,
        retries=0,
        pre_execute=None,
        dag=dag,
        doc_md="Records what the decided run led to on its beamline.Trigger execution.",
    )
    decide_task >> roots
    pipeline_tasks >> conclude_task
    return dag


# --- inside Airflow --------------------------------------------------------------------------


def airflow_run_id(pipeline: str, dag_run_id: str) -> str:
    """The Beamline run id of an Airflow DAG run (TFX's legacy `run` context name)."""
    return f"{pipeline}.{dag_run_id}"


def _config(settings: Mapping[str, Any], loop: Mapping[str, Any], until=None) -> LoopRequest:
    if settings.get("project"):
        from beamline.project import PROJECT_ENV

        # The pipeline's module (SPAN_PATTERN, schema) from the DAG's project, whatever the
        # worker's working directory.
        os.environ[PROJECT_ENV] = str(settings["project"])
    return LoopRequest(
        pipeline=settings["pipeline"],
        data=Path(loop["data"]),
        requests=Path(loop["requests"]),
        root=Path(settings["root"]),
        metadata=settings.get("metadata"),
        policy=_policy(loop["policy"]),
        # A DAG compiled before --push-policy existed holds none: live, as it behaved then.
        push_policy=loop.get("push_policy", LIVE),
        thresholds=dict(loop.get("thresholds") or {}),
        max_invalid_fraction=float(loop["max_invalid_fraction"]),
        beam_profile=loop["beam_profile"],
        until=until,
    )


def _policy(name: str) -> str:
    """The DAG's policy by its current name: a DAG compiled earlier holds a deprecated one."""
    warning = deprecation_warning(name)
    if warning:
        print(f"{warning} Recompile the DAG to hold the new name.", file=sys.stderr)
    return policy_named(name)


def _store(config: LoopRequest):
    from beamline.metadata.connection import open_existing

    return open_existing(config.metadata, config.layout.metadata_path)


def _window_end(context: Mapping[str, Any]) -> dt.datetime | None:
    end = context.get("data_interval_end")
    if end is None:
        return None
    return dt.datetime.fromtimestamp(end.timestamp(), dt.timezone.utc)


def decide(settings: Mapping[str, Any], loop: Mapping[str, Any], **context) -> Any:
    """`loop_decide`: False (skip the pipeline) or the retrain decision (XCom)."""
    from beamline.loop.retry import with_retries
    from beamline.loop.step import check_config, decide_step

    config = _config(settings, loop, _window_end(context))
    check_config(config)
    run_id = airflow_run_id(config.pipeline, context["dag_run"].run_id)
    out = sys.stdout  # the task's log
    result = with_retries(
        lambda: decide_step(
            config, out, run_id, lambda store, t: settle(config, store, t, out)
        ),
        "step",
        out,
    )
    if result.decision != Decision.RETRAIN:
        out.write(f"beamline loop: {result.decision}: the pipeline tasks are skipped\n")
        return False
    store = _store(config)
    trigger = tr.trigger_by_id(store, result.trigger_id)
    claim_run(store, config.pipeline, context["dag_run"].run_id, trigger)
    span = trigger.span
    return {
        "trigger_execution_id": trigger.execution_id,
        "run_id": run_id,
        "kind": trigger.kind,
        "span": span,
        "range_config": range_config_json(span),
        "reason": trigger.reason,
    }


def range_config_json(span: int) -> str:
    """ExampleGen's range_config pinning `span` (TFX's RangeConfig as JSON), "" for none."""
    if span < 0:
        return ""
    return json.dumps({"static_range": {"start_span_number": span, "end_span_number": span}})


def claim_run(store, pipeline: str, dag_run_id: str, trigger: tr.TriggerRecord) -> None:
    """Creates (or stamps) the DAG run's `run` context as TFX's legacy launcher would, with the
    trigger on it, before any TFX task runs; TFX reuses a context that exists."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    type_id = store.put_context_type(
        pb.ContextType(
            name=LEGACY_RUN,
            properties={LEGACY_PIPELINE_NAME: pb.STRING, LEGACY_RUN_ID: pb.STRING},
        ),
        can_add_fields=True,
        can_omit_fields=True,
    )
    name = airflow_run_id(pipeline, dag_run_id)
    context = store.get_context_by_type_and_name(LEGACY_RUN, name)
    if context is None:
        context = pb.Context(type_id=type_id, name=name)
        context.properties[LEGACY_PIPELINE_NAME].string_value = pipeline
        context.properties[LEGACY_RUN_ID].string_value = dag_run_id
    context.custom_properties[rc.TRIGGER].string_value = trigger.kind
    context.custom_properties[rc.TRIGGER_EXECUTION_ID].int_value = trigger.execution_id
    store.put_contexts([context])
    tr.link_run(store, trigger.execution_id, name, LEGACY_RUN)


def _stamp(store, run_id: str, state: str, reason: str) -> None:
    from beamline.metadata.liveness import now_ms

    context = store.get_context_by_type_and_name(LEGACY_RUN, run_id)
    if context is None:
        return
    context.custom_properties[rc.STATE].string_value = state
    context.custom_properties[rc.REASON].string_value = reason[:1000]
    context.custom_properties[rc.END_MS].string_value = str(now_ms())
    store.put_contexts([context])


def finish_run(
    config: LoopRequest, store, trigger: tr.TriggerRecord, failed_tasks: list[str] | None,
    out: TextIO,
):
    """Concludes `trigger` from its run's MLMD record. `failed_tasks`: the Airflow tasks that
    failed (None: unknown, the DAG run is over and the record decides)."""
    from beamline.lineage.load import load_graph
    from beamline.lineage.runs import summarize
    from beamline.loop.step import record_delivery, record_failure
    from beamline.runner.outcome import RunOutcome

    graph = load_graph(store, config.pipeline)
    run = graph.runs.get(trigger.run_id)
    summary = summarize(graph, run) if run is not None else None
    if failed_tasks:
        why = f"Airflow task(s) {', '.join(failed_tasks)} failed"
    elif summary is None or not run.execution_ids:
        why = "no pipeline task recorded anything"
    elif failed_tasks is None and summary.state != rc.RunState.COMPLETE:
        why = f"its DAG run ended before {CONCLUDE_TASK} ran, with the run {summary.state}"
    else:
        why = ""
    if why:
        _stamp(store, trigger.run_id, rc.RunState.FAILED, why)
        return record_failure(config, store, trigger, f"run {trigger.run_id} failed: {why}", out)
    _stamp(store, trigger.run_id, rc.RunState.COMPLETE, "")
    if summary.pushed_version is not None:
        for line in label_push(config, store, trigger.run_id, str(summary.pushed_version)):
            out.write(f"beamline loop: {line}\n")
    outcome = RunOutcome(
        config.pipeline,
        trigger.run_id,
        blessed=summary.blessed,
        pushed=summary.pushed_version is not None,
        pushed_version=summary.pushed_version,
        pushed_path=summary.pushed_destination,
    )
    return record_delivery(config, store, trigger, outcome, out)


def label_push(config: LoopRequest, store, run_id: str, version: str) -> list[str]:
    """The push policy's label changes for the version the DAG run's Pusher pushed (TFX's
    Pusher under Airflow copies it into place itself; Beamline's runner would label it right
    after): recorded in MLMD, then models.config rewritten. Once per push: a second conclusion
    of the same push (a retried task) changes nothing. Returns what it did, one line each."""
    from dataclasses import replace

    from beamline.runner.push import apply_policy, labelled_pushes, recorded_pushes

    serving = config.layout.serving_dir(config.pipeline)
    pushes = [p for p in recorded_pushes(store, serving) if p.version == version]
    if not pushes:
        return [
            f"version {version} was not pushed under {serving}, the serving directory of the "
            "run root, so no label was changed (a DAG compiled with --serving-dir elsewhere "
            "serves by its own version policy)"
        ]
    push = replace(pushes[-1], run_id=run_id)
    if push.artifact_id in labelled_pushes(store, config.pipeline):
        return []
    changes = apply_policy(store, config.layout, config.pipeline, push, config.push_policy)
    return [f"applied the push policy {config.push_policy}: {c}" for c in changes]


def settle(config: LoopRequest, store, trigger: tr.TriggerRecord, out: TextIO) -> None:
    """A decision of an earlier DAG run that never reached `loop_conclude` (its DAG run was
    marked failed or its worker died): concluded from what its run recorded."""
    out.write(
        f"beamline loop: trigger #{trigger.execution_id} (run {trigger.run_id}) was never "
        "concluded: concluding it from its record\n"
    )
    finish_run(config, store, trigger, None, out)


def conclude(settings: Mapping[str, Any], loop: Mapping[str, Any], **context) -> None:
    """`loop_conclude`: records the decided run's outcome on its trigger."""
    from airflow.exceptions import AirflowFailException
    from airflow.utils.state import TaskInstanceState

    decided = context["ti"].xcom_pull(task_ids=DECIDE_TASK)
    bad = (TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED)
    failed = sorted(
        ti.task_id
        for ti in context["dag_run"].get_task_instances()
        if ti.task_id not in (DECIDE_TASK, CONCLUDE_TASK) and ti.state in bad
    )
    if not decided:
        raise AirflowFailException(
            f"{DECIDE_TASK} failed before deciding (its log says why): no pipeline task ran "
            "and no decision was recorded for this window; the next DAG run decides it."
        )
    config = _config(settings, loop)
    store = _store(config)
    trigger = tr.trigger_by_id(store, int(decided["trigger_execution_id"]))
    out = sys.stdout
    if trigger is None or not trigger.pending:
        out.write(f"beamline loop: trigger #{decided['trigger_execution_id']} is concluded "
                  f"already: {trigger.outcome if trigger else 'not found'}\n")
        return
    result = finish_run(config, store, trigger, failed, out)
    if result.exit_code:
        raise AirflowFailException(result.message)
