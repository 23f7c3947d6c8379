"""`beamline run --spec`: the ExecutorInput each task of a compiled penguin spec gets, parsed by
TFX's own Kubeflow V2 entrypoint code; the order tasks run in; what is refused before anything
runs; the Vertex spec's resolver tasks answered from earlier runs' task directories. The one
real run of a spec is in test_spec_run_slow.py."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as tfx_entry

from beamline import project
from beamline.cli import main
from beamline.deploy import spec_inputs, spec_resolver, spec_runner
from beamline.deploy.compile import IMAGE_PROJECT_ROOT
from beamline.errors import ConfigError, PipelineFailed

RUN_ID = "20261207T000000Z-abc123"


@pytest.fixture(scope="module")
def spec(penguin_kubeflow):
    return penguin_kubeflow.job["pipelineSpec"]


@pytest.fixture
def paths(penguin_kubeflow, tmp_path):
    return spec_inputs.path_map(
        penguin_kubeflow.job["runtimeConfig"], "penguin", tmp_path, project.current().root,
        IMAGE_PROJECT_ROOT,
    )


def _record_upstream_of(spec, task, tmp_path):
    """A record as if every task `task` reads from had run (URIs under tmp_path)."""
    record = spec_inputs.Record(artifacts={}, parameters={})
    for source in spec["root"]["dag"]["tasks"][task]["inputs"].get("artifacts", {}).values():
        producer = source["taskOutputArtifact"]["producerTask"]
        key = source["taskOutputArtifact"]["outputArtifactKey"]
        record.artifacts.setdefault(producer, {})[key] = {
            "name": f"{RUN_ID}/{producer}/{key}",
            "uri": f"{tmp_path}/{producer}/{key}",
            "metadata": {"span": 3.0, "split_names": '["train", "eval"]'},
        }
    return record


def _executor_input(spec, task, tmp_path, paths, record=None):
    place = spec_inputs.TaskPlace(f"{tmp_path}/pipelines/penguin", task, RUN_ID)
    record = record if record is not None else _record_upstream_of(spec, task, tmp_path)
    return spec_inputs.executor_input(spec, task, place, record, {}, paths)


def test_tfx_parses_the_trainer_input_as_its_artifacts_and_properties(spec, tmp_path, paths):
    payload = _executor_input(spec, "Trainer", tmp_path, paths)
    message = pipeline_spec_pb2.ExecutorInput()
    json_format.Parse(json.dumps(payload), message)  # what kubeflow_v2_run_executor does

    inputs = tfx_entry.parse_raw_artifact_dict(message.inputs.artifacts)
    outputs = tfx_entry.parse_raw_artifact_dict(message.outputs.artifacts)
    properties = tfx_entry.parse_execution_properties(
        message.inputs.parameter_values, message.inputs.parameters
    )
    assert {k: type(v[0]).__name__ for k, v in inputs.items()} == {
        "examples": "Examples", "schema": "Schema", "transform_graph": "TransformGraph",
        "hyperparameters": "HyperParameters",  # the fixture's spec has a Tuner
    }
    assert inputs["examples"][0].uri == f"{tmp_path}/Transform/transformed_examples"
    assert inputs["examples"][0].span == 3
    model = outputs["model"][0]
    assert type(model).__name__ == "Model"
    assert model.uri == f"{tmp_path}/pipelines/penguin/Trainer/{RUN_ID}/model"
    assert message.outputs.output_file == (
        f"{tmp_path}/pipelines/penguin/Trainer/{RUN_ID}/output_metadata.json"
    )
    # The image's project directory is this checkout, so the module file exists here.
    module_file = properties["module_file"]
    assert module_file == f"{project.current().root}/components/penguin/model/module.py"
    assert (project.current().root / "components/penguin/model/module.py").is_file()
    assert json.loads(properties["train_args"]) == json.loads(
        spec_inputs.constant(spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
                             ["train_args"]["runtimeValue"])
    )


def test_integer_parameters_reach_tfx_as_integers(spec, tmp_path, paths):
    payload = _executor_input(spec, "Transform", tmp_path, paths)
    message = json_format.Parse(json.dumps(payload), pipeline_spec_pb2.ExecutorInput())
    properties = tfx_entry.parse_execution_properties(
        message.inputs.parameter_values, message.inputs.parameters
    )
    assert properties["force_tf_compat_v1"] == 1


def test_storage_paths_map_to_the_local_root(spec, tmp_path, paths):
    pusher = _executor_input(spec, "Pusher", tmp_path, paths)
    destination = json.loads(pusher["inputs"]["parameterValues"]["push_destination"])
    assert destination["filesystem"]["base_directory"] == f"{tmp_path}/serving/penguin"
    baseline = _executor_input(spec, "baseline_from_serving", tmp_path, paths)
    assert baseline["inputs"]["parameterValues"]["serving_dir"] == f"{tmp_path}/serving/penguin"
    assert "gs://" not in json.dumps(pusher) + json.dumps(baseline)


def test_an_artifact_not_produced_upstream_is_an_error(spec, tmp_path, paths):
    with pytest.raises(ConfigError, match=r"Task 'Pusher' reads artifact '\w+' of task '\w+', "
                       "which has not produced it"):
        _executor_input(spec, "Pusher", tmp_path, paths,
                        record=spec_inputs.Record(artifacts={}, parameters={}))


def test_tasks_run_after_everything_they_read(spec):
    order = spec_inputs.task_order(spec)
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(order) == sorted(tasks)
    for position, name in enumerate(order):
        upstream = spec_inputs.upstream_tasks(tasks[name])
        assert upstream <= set(order[:position]), name
    assert order[-1] == "Pusher"
    assert order.index("baseline_from_serving") < order.index("Evaluator")


def test_the_executor_output_brings_metadata_and_keeps_unreported_outputs(
    spec, tmp_path, paths
):
    payload = _executor_input(spec, "baseline_from_serving", tmp_path, paths)
    out = tmp_path / "output_metadata.json"
    out.write_text("{}")  # an empty baseline: the executor reported nothing
    artifacts, _ = spec_runner.read_output(payload, str(out))
    assert artifacts["model"]["uri"].endswith(f"/baseline_from_serving/{RUN_ID}/model")
    out.write_text(json.dumps({"artifacts": {"model": {"artifacts": [
        {"uri": artifacts["model"]["uri"], "metadata": {"version": 7.0}}]}}}))
    artifacts, _ = spec_runner.read_output(payload, str(out))
    assert artifacts["model"]["metadata"] == {"version": 7.0}
    assert artifacts["model"]["type"]  # the type stays for the tasks that read it


def test_a_container_line_gets_the_input_and_this_python(spec):
    executor = spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    line = spec_inputs.command_line(executor, '{"inputs": {}}', "/venv/bin/python")
    # The fixture's spec declares a secret, so its steps start through Beamline's entrypoint.
    assert line[:3] == ["/venv/bin/python", "-m", "beamline.deploy.entrypoint"]
    assert '{"inputs": {}}' in line and "{{$}}" not in line
    other = {**executor, "args": ["{{$.inputs.parameters['x']}}"]}
    with pytest.raises(ConfigError, match="fills only"):
        spec_inputs.command_line(other, "{}", "python")


def test_refusals_name_the_task(spec, penguin_vertex_file):
    vertex = json.loads(penguin_vertex_file.read_text())["pipelineSpec"]
    with pytest.raises(ConfigError, match=r"cannot run as kubeflow: task 'CsvExampleGen': its "
                       "container has lifecycle hooks"):
        spec_runner.refusals(vertex, "kubeflow")
    spec_runner.refusals(vertex, "vertex")
    spec_runner.refusals(spec, "kubeflow")  # the kubeflow spec runs as kubeflow and as vertex
    spec_runner.refusals(spec, "vertex")
    broken = copy.deepcopy(spec)
    broken["root"]["dag"]["tasks"]["Trainer"]["dependentTasks"].append("Pusher")
    with pytest.raises(ConfigError, match="cycle"):
        spec_runner.refusals(broken, "kubeflow")


def test_a_spec_with_a_resolver_is_refused_as_kubeflow_naming_the_resolver_tasks(
    penguin_vertex_file, tmp_path, capsys
):
    """The Vertex spec run as kubeflow: refused before anything runs, and every task open-source
    KFP cannot run is named, the baseline's two resolver tasks among them; without the
    ExampleGen's faults (its driver hook, its cache) the resolver is what the refusal leads
    with."""
    job = json.loads(penguin_vertex_file.read_text())
    spec_file = tmp_path / "penguin.json"

    def refusal() -> str:
        spec_file.write_text(json.dumps(job))
        with pytest.raises(SystemExit) as exited:
            main(["run", "--spec", str(spec_file), "--as", "kubeflow", "--root",
                  str(tmp_path / "r")])
        assert exited.value.code == 2
        assert not (tmp_path / "r" / "pipelines").exists()
        return " ".join(capsys.readouterr().err.split())

    resolvers = ("baseline_resolver-model-blessing-resolver", "baseline_resolver-model-resolver")
    err = refusal()
    assert "cannot run as kubeflow: task 'CsvExampleGen'" in err, err
    assert f"Also refused: {', '.join(resolvers)}." in err, err
    job["pipelineSpec"]["deploymentSpec"]["executors"]["CsvExampleGen_executor"]["container"].pop(
        "lifecycle")
    job["pipelineSpec"]["root"]["dag"]["tasks"]["CsvExampleGen"]["cachingOptions"] = {}
    err = refusal()
    assert re.search(r"cannot run as kubeflow: task 'baseline_resolver-model(-blessing)?-"
                     r"resolver': its executor is a resolver, and kubeflow runs only container "
                     r"and importer executors", err), err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["penguin", "--spec", "{spec}", "--as", "kubeflow"], "drop 'penguin'"),
        (["--spec", "{spec}"], "go together"),
        (["--spec", "{spec}", "--as", "kubeflow", "--no-tune"], "--no-tune applies to a "
         "pipeline run only"),
        (["--spec", "{missing}", "--as", "kubeflow"], "no such file"),
        (["--spec", "{not_spec}", "--as", "kubeflow"], "is not a KFP v2 PipelineJob"),
        ([], "Name a PIPELINE"),
    ],
)
def test_cli_refuses_a_mixed_or_missing_spec(penguin_kubeflow, tmp_path, capsys, args, message):
    spec_file = tmp_path / "penguin.json"
    spec_file.write_text(json.dumps(penguin_kubeflow.job))
    (tmp_path / "other.json").write_text('{"a": 1}')
    names = {"spec": spec_file, "missing": tmp_path / "nope.json",
             "not_spec": tmp_path / "other.json"}
    args = [a.format(**names) for a in args]
    with pytest.raises(SystemExit) as exited:
        main(["run", "--root", str(tmp_path / "root"), *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err
    assert not (tmp_path / "root" / "pipelines").exists()


def _earlier_run(spec, root, run_id, blessed, paths):
    """Files a finished earlier run leaves for the Trainer and Evaluator tasks."""
    pipeline_root = f"{root}/pipelines/penguin"
    for task, reported in (
        ("Trainer", {}),
        ("Evaluator", {"blessing": {"blessed": float(blessed),
                                    "current_model_id": f"{run_id}/Trainer/model"}}),
    ):
        place = spec_inputs.TaskPlace(pipeline_root, task, run_id)
        payload = spec_inputs.executor_input(
            spec, task, place, _record_upstream_of(spec, task, root), {}, paths
        )
        Path(place.task_dir).mkdir(parents=True)
        Path(place.task_dir, "executor_input.json").write_text(json.dumps(payload))
        Path(place.output_file).write_text(json.dumps({"artifacts": {
            key: {"artifacts": [{**value["artifacts"][0], "metadata": reported.get(key, {})}]}
            for key, value in payload["outputs"]["artifacts"].items()
        }}))
    return pipeline_root


def _resolve_baseline(spec, pipeline_root):
    """Runs the two resolver tasks of the Vertex spec as run_spec does: the Evaluator's input."""
    record = spec_inputs.Record(artifacts={}, parameters={})
    executors = spec["deploymentSpec"]["executors"]
    found = spec_resolver.recorded(Path(pipeline_root), RUN_ID)
    for task in ("baseline_resolver-model-blessing-resolver", "baseline_resolver-model-resolver"):
        place = spec_inputs.TaskPlace(pipeline_root, task, RUN_ID)
        payload = spec_inputs.executor_input(spec, task, place, record, {}, spec_inputs.PathMap(()))
        queries = executors[f"{task}_executor"]["resolver"]["outputArtifactQueries"]
        record.artifacts[task] = spec_resolver.resolve(
            task, queries, payload["inputs"]["artifacts"], found)
        record.resolved.add(task)
    return record.artifacts["baseline_resolver-model-resolver"].get("model"), record


def test_vertex_resolvers_find_the_latest_blessed_model_of_earlier_runs(
    penguin_vertex_file, tmp_path, paths
):
    vertex = json.loads(penguin_vertex_file.read_text())["pipelineSpec"]
    _earlier_run(vertex, tmp_path, "20261201T000000Z-aaaaaa", True, paths)
    pipeline_root = _earlier_run(vertex, tmp_path, "20261202T000000Z-bbbbbb", False, paths)
    model, record = _resolve_baseline(vertex, pipeline_root)
    # The newer run's model was not blessed: the baseline is the older, blessed one.
    assert model["name"] == "20261201T000000Z-aaaaaa/Trainer/model"
    assert model["uri"] == f"{pipeline_root}/Trainer/20261201T000000Z-aaaaaa/model"


def test_with_no_blessed_model_the_evaluator_gets_an_empty_baseline(
    penguin_vertex_file, tmp_path, paths
):
    vertex = json.loads(penguin_vertex_file.read_text())["pipelineSpec"]
    pipeline_root = _earlier_run(vertex, tmp_path, "20261202T000000Z-bbbbbb", False, paths)
    model, record = _resolve_baseline(vertex, pipeline_root)
    assert model is None
    for task in ("CsvExampleGen", "Trainer"):
        record.artifacts[task] = _record_upstream_of(vertex, "Evaluator", tmp_path).artifacts[task]
    place = spec_inputs.TaskPlace(pipeline_root, "Evaluator", RUN_ID)
    payload = spec_inputs.executor_input(vertex, "Evaluator", place, record, {}, paths)
    assert payload["inputs"]["artifacts"]["baseline_model"] == {"artifacts": []}
    assert payload["inputs"]["artifacts"]["model"]["artifacts"]


# A task that writes its output artifact (a file and metadata) or, given an input, checks it.
TOY_TASK = """
import json, os, sys
given = json.loads(sys.argv[1])
inputs = given["inputs"]["artifacts"]
if inputs:
    artifact = inputs["data"]["artifacts"][0]
    text = open(os.path.join(artifact["uri"], "data.txt")).read()
    sys.exit(0 if text == "rows" and artifact["metadata"]["span"] == 4 else 3)
out = given["outputs"]["artifacts"]["data"]["artifacts"][0]
with open(os.path.join(out["uri"], "data.txt"), "w") as f:
    f.write(given["inputs"]["parameterValues"]["what"])
with open(given["outputs"]["outputFile"], "w") as f:
    json.dump({"artifacts": {"data": {"artifacts": [{**out, "metadata": {"span": 4}}]}}}, f)
"""
EXAMPLES = {"artifactType": {"instanceSchema": "title: tfx.Examples\ntype: object\n"}}


def _toy_spec(reader_exit: str = "") -> dict:
    def container(script):
        return {"container": {"image": "unused", "command": ["python", "-c", script],
                              "args": ["{{$}}"]}}

    return {"pipelineSpec": {
        "pipelineInfo": {"name": "toy"},
        "schemaVersion": "2.0.0",
        "components": {
            "make": {"executorLabel": "make_executor",
                     "inputDefinitions": {"parameters": {"what": {"type": "STRING"}}},
                     "outputDefinitions": {"artifacts": {"data": EXAMPLES}}},
            "use": {"executorLabel": "use_executor",
                    "inputDefinitions": {"artifacts": {"data": EXAMPLES}}},
        },
        "deploymentSpec": {"executors": {
            "make_executor": container(TOY_TASK),
            "use_executor": container(reader_exit or TOY_TASK),
        }},
        "root": {"dag": {"tasks": {
            "use": {"componentRef": {"name": "use"}, "taskInfo": {"name": "use"},
                    "dependentTasks": ["make"],
                    "inputs": {"artifacts": {"data": {"taskOutputArtifact": {
                        "producerTask": "make", "outputArtifactKey": "data"}}}}},
            "make": {"componentRef": {"name": "make"}, "taskInfo": {"name": "make"},
                     "inputs": {"parameters": {"what": {"runtimeValue": {
                         "constantValue": {"stringValue": "rows"}}}}}},
        }}},
    }, "runtimeConfig": {"gcsOutputDirectory": "gs://b/root/toy"}}


def _runs(capsys, root):
    capsys.readouterr()
    main(["runs", "--root", str(root), "--json"])
    return json.loads(capsys.readouterr().out)


def test_a_spec_runs_task_by_task_and_is_recorded_like_a_kubeflow_run(tmp_path, capsys):
    spec_file = tmp_path / "toy.json"
    spec_file.write_text(json.dumps(_toy_spec()))
    root = tmp_path / "root"
    run = spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    assert list(run.seconds) == ["make", "use"]  # `use` read what `make` wrote (else exit 3)
    made = run.record.artifacts["make"]["data"]
    assert made["uri"] == f"{root}/pipelines/toy/make/{run.run_id}/data"
    assert made["metadata"] == {"span": 4}
    [listed] = _runs(capsys, root)
    assert (listed["run_id"], listed["pipeline"], listed["state"], listed["executed"]) == (
        run.run_id, "toy", "complete", 2)


def test_a_failed_task_stops_the_run_names_its_log_and_is_recorded(tmp_path, capsys):
    spec_file = tmp_path / "toy.json"
    spec_file.write_text(json.dumps(_toy_spec("import sys; print('no rows'); sys.exit(5)")))
    root = tmp_path / "root"
    with pytest.raises(PipelineFailed, match=r"(?s)Task use failed \(exit code 5\).*no rows"):
        spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    [listed] = _runs(capsys, root)
    assert (listed["state"], listed["executed"], listed["failed"]) == ("failed", 1, 1)


def test_the_vertex_driver_hook_reads_the_input_and_writes_span_and_fingerprint(
    penguin_vertex_file, tmp_path, paths
):
    """TFX's ExampleGen driver, run as `--as vertex` runs the preCacheCheck hook, over the local
    penguin CSV (the fixture's spec reads gs://, which this test cannot)."""
    import os
    import subprocess
    import sys

    from beamline.settings import apply_tf_environment
    from beamline_pipelines.penguin import default_data_root

    vertex = json.loads(penguin_vertex_file.read_text())["pipelineSpec"]
    place = spec_inputs.TaskPlace(f"{tmp_path}/pipelines/penguin", "CsvExampleGen", RUN_ID)
    payload = spec_inputs.executor_input(
        vertex, "CsvExampleGen", place, spec_inputs.Record({}, {}), {}, paths
    )
    data = str(Path(default_data_root()).parent)
    payload["inputs"]["parameterValues"]["input_base"] = data
    payload["inputs"]["parameters"]["input_base"] = {"stringValue": data}
    hook = vertex["deploymentSpec"]["executors"]["CsvExampleGen_executor"]["container"][
        "lifecycle"]["preCacheCheck"]
    Path(place.task_dir).mkdir(parents=True)
    line = spec_inputs.command_line(hook, json.dumps(payload), sys.executable)
    done = subprocess.run(line, env=apply_tf_environment(dict(os.environ)), capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads(Path(place.output_file).read_text())
    assert written["parameterValues"]["span"] == 0
    assert written["parameterValues"]["input_fingerprint"].startswith("split:single_split")


def _cached_toy(make_comment: str = "") -> dict:
    job = _toy_spec()
    spec = job["pipelineSpec"]
    for task in spec["root"]["dag"]["tasks"].values():
        task["cachingOptions"] = {"enableCache": True}
    command = spec["deploymentSpec"]["executors"]["make_executor"]["container"]["command"]
    command[-1] += make_comment
    return job


def _executions(root):
    from beamline.deploy import spec_record
    from beamline.metadata.connection import open_store, sqlite_config
    from beamline.settings import RootLayout

    store = open_store(sqlite_config(RootLayout(root).metadata_path))
    types = {t.id: t.name for t in store.get_execution_types()}
    found = [e for e in store.get_executions() if types[e.type_id] == spec_record.CONTAINER]
    outputs = {e.execution_id: e.artifact_id for e in store.get_events_by_execution_ids(
        [e.id for e in found]) if e.type == e.OUTPUT}
    return [(e.custom_properties["task_name"].string_value, e, outputs.get(e.id))
            for e in found]


def test_a_second_identical_run_is_served_from_the_cache_and_recorded_cached(tmp_path, capsys):
    from ml_metadata.proto import metadata_store_pb2 as pb

    spec_file, root = tmp_path / "toy.json", tmp_path / "root"
    spec_file.write_text(json.dumps(_cached_toy()))
    first = spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    second = spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    assert first.cached == {}
    assert second.cached == {"make": first.run_id, "use": first.run_id}
    assert "2 tasks, 2 from the cache" in second.summary()
    # `use` read the reused artifact: its input is the first run's, not a new URI.
    assert second.record.artifacts["make"]["data"]["uri"] == (
        f"{root}/pipelines/toy/make/{first.run_id}/data")
    assert not Path(f"{root}/pipelines/toy/make/{second.run_id}/data").exists()

    executions = _executions(root)
    by_state = {(t, e.last_known_state): (e, out) for t, e, out in executions}
    made, made_out = by_state[("make", pb.Execution.COMPLETE)]
    reused, reused_out = by_state[("make", pb.Execution.CACHED)]
    fingerprint = made.custom_properties["cache_fingerprint"].string_value
    assert len(fingerprint) == 64
    assert reused.custom_properties["cache_fingerprint"].string_value == fingerprint
    assert reused.custom_properties["cached_execution_id"].string_value == str(made.id)
    assert reused_out == made_out  # the same artifact, as KFP publishes a cache hit
    listed = {r["run_id"]: r for r in _runs(capsys, root)}
    assert (listed[second.run_id]["cached"], listed[second.run_id]["executed"]) == (2, 0)


def test_changed_code_misses_the_cache_and_so_does_every_task_reading_its_output(tmp_path):
    spec_file, root = tmp_path / "toy.json", tmp_path / "root"
    spec_file.write_text(json.dumps(_cached_toy()))
    spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    spec_file.write_text(json.dumps(_cached_toy("\n# changed")))
    changed = spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    assert changed.cached == {}  # `use` reads a new artifact: its key changed too
    again = spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    assert again.cached == {"make": changed.run_id, "use": changed.run_id}
    # Outputs removed from the root are not handed on: the task runs again.
    import shutil

    shutil.rmtree(f"{root}/pipelines/toy/make/{changed.run_id}/data")
    last = spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    assert last.cached == {}


# Two tasks that each wait for the other to have started: they pass only when run at once.
RENDEZVOUS = """
import json, os, sys, time
given = json.loads(sys.argv[1])
me, other = given["inputs"]["parameterValues"]["me"], given["inputs"]["parameterValues"]["other"]
folder = os.path.dirname(os.path.dirname(os.path.dirname(given["outputs"]["outputFile"])))
open(os.path.join(folder, me + ".started"), "w").close()
for _ in range(600):
    if os.path.exists(os.path.join(folder, other + ".started")):
        sys.exit(0)
    time.sleep(0.1)
sys.exit(4)
"""


def test_independent_tasks_run_at_once_up_to_max_parallel(tmp_path, capsys):
    def task(me, other):
        return {"componentRef": {"name": "meet"}, "taskInfo": {"name": me}, "inputs": {
            "parameters": {k: {"runtimeValue": {"constant": v}}
                           for k, v in (("me", me), ("other", other))}}}

    spec = {"pipelineSpec": {
        "pipelineInfo": {"name": "meet"}, "schemaVersion": "2.1.0",
        "components": {"meet": {"executorLabel": "meet_executor", "inputDefinitions": {
            "parameters": {"me": {"parameterType": "STRING"},
                           "other": {"parameterType": "STRING"}}}}},
        "deploymentSpec": {"executors": {"meet_executor": {"container": {
            "image": "unused", "command": ["python", "-c", RENDEZVOUS], "args": ["{{$}}"]}}}},
        "root": {"dag": {"tasks": {"left": task("left", "right"),
                                   "right": task("right", "left")}}},
    }}
    spec_file = tmp_path / "meet.json"
    spec_file.write_text(json.dumps(spec))
    root = tmp_path / "root"
    capsys.readouterr()
    main(["run", "--spec", str(spec_file), "--as", "kubeflow", "--root", str(root),
          "--max-parallel", "2"])
    assert "2 tasks, 0 from the cache" in capsys.readouterr().out


def test_a_task_reading_one_artifact_twice_gets_one_input_event(tmp_path):
    """As an Evaluator whose candidate is its own baseline (a cached Trainer, a resolver that
    finds its blessed model): MLMD keeps one INPUT event per artifact and execution."""
    job = _toy_spec()
    spec = job["pipelineSpec"]
    spec["components"]["use"]["inputDefinitions"]["artifacts"]["again"] = EXAMPLES
    use = spec["root"]["dag"]["tasks"]["use"]
    use["inputs"]["artifacts"]["again"] = use["inputs"]["artifacts"]["data"]
    spec_file, root = tmp_path / "toy.json", tmp_path / "root"
    spec_file.write_text(json.dumps(job))
    spec_runner.run_spec(spec_file, "kubeflow", root, echo=lambda _: None)
    from beamline.metadata.connection import open_store, sqlite_config
    from beamline.settings import RootLayout

    store = open_store(sqlite_config(RootLayout(root).metadata_path))
    [(_, used, _)] = [row for row in _executions(root) if row[0] == "use"]
    events = store.get_events_by_execution_ids([used.id])
    assert [e.type for e in events] == [e.INPUT for e in events] and len(events) == 1
