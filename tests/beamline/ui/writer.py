"""Records for the UI tests, written with the real MLMD API the way the runner
(beamline/metadata/run_claim.py + liveness), `promote`/`loop` (beamline/metadata/records.py) and
`monitor` (beamline/monitor/record.py) write them: live, killed and failed runs, label changes,
loop triggers and monitoring windows."""

from __future__ import annotations

import subprocess
import time

from beamline.metadata import records
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import now_ms
from beamline.metadata.run_claim import claim_run_id


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _exec_type(store, name: str) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    try:
        return store.get_execution_type(name).id
    except Exception:  # noqa: BLE001 - not registered yet
        return store.put_execution_type(pb.ExecutionType(name=name))


def _context(store, type_name: str, name: str):
    from ml_metadata.proto import metadata_store_pb2 as pb

    found = store.get_context_by_type_and_name(type_name, name)
    if found is not None:
        return found
    type_id = store.put_context_type(pb.ContextType(name=type_name))
    ctx = pb.Context(type_id=type_id, name=name)
    [ctx.id] = store.put_contexts([ctx])
    return ctx


def set_run_properties(store, run_id: str, **props: str | int) -> None:
    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    for key, value in props.items():
        if isinstance(value, int):
            ctx.custom_properties[key].int_value = value
        else:
            ctx.custom_properties[key].string_value = value
    store.put_contexts([ctx])


def put_node_execution(
    store, pipeline: str, run_id: str, node: str, type_name: str, state: str, outputs=None,
    props: dict[str, str] | None = None, inputs: list[int] | None = None,
):
    """An execution of `node` in run `run_id` (MLMD sets its times: now); `outputs`: key ->
    (artifact type, uri) of new output artifacts; `props`: its string properties (e.g. an
    ExampleGen's input_base); `inputs`: ids of artifacts it read (key `input`)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    ex = pb.Execution(
        type_id=_exec_type(store, type_name), last_known_state=getattr(pb.Execution, state)
    )
    for key, value in (props or {}).items():
        ex.custom_properties[key].string_value = value
    contexts = [
        store.get_context_by_type_and_name(rc.PIPELINE_CONTEXT, pipeline),
        store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id),
        _context(store, rc.NODE_CONTEXT, f"{pipeline}.{node}"),
    ]
    pairs = []
    for key, (type_name_, uri) in (outputs or {}).items():
        art = pb.Artifact(
            type_id=_artifact_type(store, type_name_), uri=uri, state=pb.Artifact.LIVE
        )
        if type_name_ == "ExampleStatistics":
            art.properties["split_names"].string_value = '["train", "eval"]'
        event = pb.Event(type=pb.Event.OUTPUT)
        event.path.steps.add().key = key
        event.path.steps.add().index = 0
        pairs.append((art, event))
    for index, artifact_id in enumerate(inputs or []):
        [art] = store.get_artifacts_by_id([artifact_id])
        event = pb.Event(type=pb.Event.INPUT)
        event.path.steps.add().key = "input"
        event.path.steps.add().index = index
        pairs.append((art, event))
    ex_id, _, _ = store.put_execution(ex, pairs, contexts)
    return ex_id


def set_execution_state(store, execution_id: int, state: str) -> None:
    from ml_metadata.proto import metadata_store_pb2 as pb

    [ex] = store.get_executions_by_id([execution_id])
    ex.last_known_state = getattr(pb.Execution, state)
    store.put_executions([ex])


TRAINER = "tfx.components.trainer.component.Trainer"
STATISTICS_GEN = "tfx.components.statistics_gen.component.StatisticsGen"
EXAMPLE_GEN = "tfx.components.example_gen.csv_example_gen.component.CsvExampleGen"


def live_run(store, pipeline: str) -> tuple[str, int]:
    """A run claimed by this (living) process, its Trainer running: (run id, execution id)."""
    run_id = claim_run_id(store, pipeline)
    set_run_properties(store, run_id, **{rc.CURRENT_NODES: "Trainer", rc.NODES_TOTAL: "6"})
    return run_id, put_node_execution(store, pipeline, run_id, "Trainer", TRAINER, "RUNNING")


def finish_run(store, run_id: str, execution_id: int) -> None:
    """What the runner records when the live run ends well."""
    set_execution_state(store, execution_id, "COMPLETE")
    set_run_properties(
        store,
        run_id,
        **{rc.STATE: rc.RunState.COMPLETE, rc.END_MS: str(now_ms()), rc.STATUS: rc.SUCCEEDED},
    )


def killed_run(store, pipeline: str) -> str:
    """A run whose runner died (kill -9) while its Trainer ran: state still `running`."""
    run_id = claim_run_id(store, pipeline)
    set_run_properties(store, run_id, **{rc.RUNNER_PID: dead_pid(), rc.RUNNER_START: "1"})
    put_node_execution(store, pipeline, run_id, "CsvExampleGen", EXAMPLE_GEN, "COMPLETE")
    put_node_execution(store, pipeline, run_id, "Trainer", TRAINER, "RUNNING")
    return run_id


def failed_run(store, pipeline: str, statistics_uri: str | None = None) -> str:
    """A run whose Trainer failed; with `statistics_uri`, its StatisticsGen first recorded an
    ExampleStatistics artifact there (so `diff` has statistics to compare)."""
    run_id = claim_run_id(store, pipeline)
    if statistics_uri:
        put_node_execution(
            store,
            pipeline,
            run_id,
            "StatisticsGen",
            STATISTICS_GEN,
            "COMPLETE",
            outputs={"statistics": ("ExampleStatistics", statistics_uri)},
        )
    put_node_execution(store, pipeline, run_id, "Trainer", TRAINER, "FAILED")
    set_run_properties(
        store,
        run_id,
        **{
            rc.STATE: rc.RunState.FAILED,
            rc.END_MS: str(now_ms()),
            rc.REASON: "Trainer failed: ValueError: no examples",
        },
    )
    return run_id


def label_change(
    store,
    pipeline: str,
    label: str,
    before: int,
    after: int,
    action: str,
    pushed_model_id: int | None = None,
    at_ms: int | None = None,
) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    ex = pb.Execution(
        type_id=_exec_type(store, records.LABEL_CHANGE_EXECUTION),
        last_known_state=pb.Execution.COMPLETE,
    )
    p = ex.custom_properties
    p[records.LABEL_PIPELINE].string_value = pipeline
    p[records.LABEL_NAME].string_value = label
    p[records.LABEL_FROM_VERSION].int_value = before
    p[records.LABEL_TO_VERSION].int_value = after
    p[records.LABEL_ACTION].string_value = action
    p[records.LABEL_REASON].string_value = f"test {action}"
    p[records.LABEL_USER].string_value = "tester"
    p[records.LABEL_HOST].string_value = "localhost"
    p[records.LABEL_TIME_MS].int_value = at_ms or now_ms()
    pairs = []
    if pushed_model_id is not None:
        [art] = store.get_artifacts_by_id([pushed_model_id])
        event = pb.Event(type=pb.Event.INPUT)
        event.path.steps.add().key = records.LABEL_INPUT_KEY
        pairs.append((art, event))
    ex_id, _, _ = store.put_execution(
        ex, pairs, [_context(store, records.MODELS_CONTEXT, pipeline)]
    )
    return ex_id


def monitoring_window(
    store, pipeline: str, version: int, pushed_model_id: int, last_secs: int, drift: float, tmp_dir
) -> int:
    """A monitoring window whose `x` drift is `drift` (threshold 0.1), via monitor.record."""
    from beamline.monitor.record import record_monitoring

    crossed = ["x"] if drift > 0.1 else []
    features = [
        {
            "feature": "x",
            "skew": {"measure": "jensen_shannon_divergence", "value": drift / 2, "threshold": 0.1},
            "drift": {"measure": "jensen_shannon_divergence", "value": drift, "threshold": 0.1},
            "schema": [],
            "crossed": bool(crossed),
            "histograms": {"training": [["0-1", 1.0]], "window": [["0-1", 0.7], ["5-6", 0.3]]},
        },
        {
            "feature": "color",
            "skew": {"measure": "infinity_norm", "value": 0.02, "threshold": 0.2},
            "schema": [],
            "crossed": False,
        },
    ]
    return record_monitoring(
        store,
        pipeline,
        {"pushed_model": pushed_model_id},
        str(tmp_dir / f"stats-{last_secs}"),
        str(tmp_dir / f"result-{last_secs}"),
        {
            "model_name": pipeline,
            "version": version,
            "first_secs": last_secs - 600,
            "last_secs": last_secs,
            "requests": 500,
            "verdict": "crossed" if crossed else "ok",
            "crossed": crossed,
            "result": {"features": features},
        },
    )


def trigger(
    store, pipeline: str, monitor_execution_id: int, run_id: str, kind: str, decision: str,
    canary_review: str = "",
) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    ex = pb.Execution(
        type_id=_exec_type(store, records.TRIGGER_EXECUTION),
        last_known_state=pb.Execution.COMPLETE,
    )
    p = ex.custom_properties
    p[records.TRIGGER_PIPELINE].string_value = pipeline
    p[records.TRIGGER_KIND].string_value = kind
    p[records.TRIGGER_DECISION].string_value = decision
    p[records.TRIGGER_REASON].string_value = "x JSD 0.300 > 0.10"
    p[records.TRIGGER_MONITOR_EXECUTION_ID].int_value = monitor_execution_id
    p[records.TRIGGER_RUN_ID].string_value = run_id
    p[records.TRIGGER_SPAN].int_value = -1
    p[records.TRIGGER_CANARY_REVIEW].string_value = canary_review
    p[records.TRIGGER_TIME_MS].int_value = now_ms()
    contexts = [_context(store, records.LOOP_CONTEXT, pipeline)]
    if run_id:
        contexts.append(store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id))
    ex_id, _, _ = store.put_execution(ex, [], contexts)
    if run_id:
        set_run_properties(store, run_id, **{rc.TRIGGER: kind, rc.TRIGGER_EXECUTION_ID: str(ex_id)})
    return ex_id


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    """Polls `condition` until it returns something truthy (bounded): never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


EVALUATOR = "tfx.components.evaluator.component.Evaluator"


def write_tfma_metrics(directory, metrics: dict[str, dict[str, float]]) -> None:
    """A TFMA `metrics` TFRecord file of MetricsForSlice messages (slice "Overall" or
    "column=value"), as the Evaluator writes it (framed with CRCs: the reader checks them)."""
    from beamline.lineage.tfma import tfma_messages
    from beamline_serving.request_log.tfrecord import frame

    message_class = tfma_messages()["MetricsForSlice"]
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "metrics-00000-of-00001.tfrecord", "wb") as handle:
        for slice_name, values in metrics.items():
            msg = message_class()
            if slice_name != "Overall":
                column, value = slice_name.split("=", 1)
                key = msg.slice_key.single_slice_keys.add()
                key.column = column
                key.bytes_value = value.encode()
            for name, number in values.items():
                item = msg.metric_keys_and_values.add()
                item.key.name = name
                item.value.double_value.value = number
            data = msg.SerializeToString()
            handle.write(frame(data))


def evaluated_run(store, pipeline: str, directory, accuracy: float, blessed: bool) -> str:
    """A finished run whose Evaluator recorded TFMA metrics (overall and per color) and a
    blessing."""
    write_tfma_metrics(
        directory,
        {
            "Overall": {"accuracy": accuracy, "auc": accuracy - 0.05},
            "color=red": {"accuracy": accuracy - 0.1, "auc": accuracy - 0.12},
            "color=blue": {"accuracy": accuracy + 0.05, "auc": accuracy},
        },
    )
    run_id = claim_run_id(store, pipeline)
    ex_id = put_node_execution(
        store,
        pipeline,
        run_id,
        "Evaluator",
        EVALUATOR,
        "COMPLETE",
        outputs={"evaluation": ("ModelEvaluation", str(directory))},
    )
    from ml_metadata.proto import metadata_store_pb2 as pb

    blessing = pb.Artifact(
        type_id=_artifact_type(store, rc.BLESSING_TYPE),
        uri=str(directory / "blessing"),
        state=pb.Artifact.LIVE,
    )
    blessing.custom_properties["blessed"].int_value = 1 if blessed else 0
    event = pb.Event(type=pb.Event.OUTPUT)
    event.path.steps.add().key = "blessing"
    event.path.steps.add().index = 0
    [ex] = store.get_executions_by_id([ex_id])
    store.put_execution(ex, [(blessing, event)], [])
    set_run_properties(store, run_id, **{rc.STATE: rc.RunState.COMPLETE, rc.END_MS: str(now_ms())})
    return run_id


def _artifact_type(store, name: str) -> int:
    from ml_metadata.proto import metadata_store_pb2 as pb

    try:
        return store.get_artifact_type(name).id
    except Exception:  # noqa: BLE001 - not registered yet
        artifact_type = pb.ArtifactType(name=name)
        if name == "ExampleStatistics":  # as TFX registers it (put_node_execution sets it)
            artifact_type.properties["split_names"] = pb.STRING
        return store.put_artifact_type(artifact_type)
