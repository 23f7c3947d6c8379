"""Compile: TFX's KubeflowV2DagRunner output parses as a PipelineSpec, every node is a task with
the Beam profile's args, module files are referenced inside the image, secrets only by name; each
target gets only what it runs (Kubeflow: container and importer tasks, no lifecycle hooks)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from beamline import project, registry
from beamline.deploy import compile as compiler
from beamline.deploy import spec_rules
from beamline.deploy.secrets import SOURCES_ENV, parse_secret
from beamline.errors import ConfigError
from beamline.settings import BASELINE_BEFORE_CANDIDATE

BEAM_STEPS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")


def _spec(job) -> pipeline_spec_pb2.PipelineSpec:
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    return spec


def _task_ids(node_ids, tasks):
    """Node id -> its task(s); a blessed-model resolver becomes `<id>-model(-blessing)-resolver`."""
    return {n: sorted(t for t in tasks if t == n or t.startswith(f"{n}-")) for n in node_ids}


@pytest.mark.parametrize("name", sorted(registry.discover()))
def test_every_pipeline_compiles_with_every_node_as_a_task(name, options_fn):
    module = registry.load_module(name)
    compiled = compiler.compile_pipeline(name, options_fn("kubeflow", name=name))
    spec = _spec(compiled.job)
    settings = compiler.pipeline_settings(
        name,
        options_fn("kubeflow", name=name),
        compiled.beam_args,
        default_data_root=module.default_data_root,
        schema_path=str(registry.get(name).schema_path),
    )
    node_ids = [node.id for node in module.create_pipeline(settings).components]
    for node, tasks in _task_ids(node_ids, spec.root.dag.tasks).items():
        assert tasks, f"{name}: node {node} has no task"
    assert compiled.tasks == sorted(spec.root.dag.tasks)
    assert str(project.current().root) not in json.dumps(compiled.job)  # no path of this machine
    # Only what open-source KFP runs: container and importer executors, no lifecycle hooks.
    assert spec_rules.check(compiled.job["pipelineSpec"], "kubeflow") == []
    executors = compiled.job["pipelineSpec"]["deploymentSpec"]["executors"].values()
    assert {kind for e in executors for kind in e} <= {"container", "importer"}
    assert not any("lifecycle" in e.get("container", {}) for e in executors)


def test_beam_steps_carry_the_profile_args_and_image(penguin_kubeflow):
    spec = _spec(penguin_kubeflow.job)
    assert "Tuner" in spec.root.dag.tasks and "Pusher" in spec.root.dag.tasks
    assert penguin_kubeflow.beam_args[:4] == [
        "--runner=DirectRunner",
        "--direct_running_mode=in_memory",
        "--pickle_library=cloudpickle",
        "--direct_num_workers=2",
    ]
    executors = penguin_kubeflow.job["pipelineSpec"]["deploymentSpec"]["executors"]
    for task in BEAM_STEPS:
        container = executors[f"{task}_executor"]["container"]
        assert container["image"] == "registry.example/beamline:test"
        assert container["args"][-len(penguin_kubeflow.beam_args) :] == penguin_kubeflow.beam_args


def test_module_and_schema_paths_point_into_the_image(penguin_kubeflow):
    text = json.dumps(penguin_kubeflow.job)
    assert "/pipeline/components/penguin/transform/module.py" in text
    assert "/pipeline/components/penguin/model/module.py" in text
    assert "/pipeline/schemas/penguin/schema.pbtxt" in text
    assert str(project.current().root) not in text
    assert "_wheels" not in text  # module files are not packaged and uploaded at compile time
    assert penguin_kubeflow.job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root/penguin"


def _executor_args(job, task):
    spec = job["pipelineSpec"]
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]][
        "executorLabel"
    ]
    return spec["deploymentSpec"]["executors"][label]


def test_on_kubeflow_a_container_task_finds_the_baseline_and_the_example_gen_its_span(
    penguin_kubeflow,
):
    tasks = penguin_kubeflow.job["pipelineSpec"]["root"]["dag"]["tasks"]
    baseline = tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"]
    assert baseline == {"producerTask": "baseline_from_serving", "outputArtifactKey": "model"}
    finder = tasks["baseline_from_serving"]
    # The candidate is an input, so KFP's cache ties the baseline to it.
    assert finder["inputs"]["artifacts"]["candidate"]["taskOutputArtifact"]["producerTask"] == (
        "Trainer"
    )
    assert finder["inputs"]["parameters"]["serving_dir"]["runtimeValue"]["constantValue"] == {
        "stringValue": "gs://bucket/root/serving/penguin"
    }
    assert "beamline_components.resolvers.serving_baseline.Executor" in _executor_args(
        penguin_kubeflow.job, "baseline_from_serving"
    )["container"]["args"]
    assert "OptionalBaselineEvaluatorExecutor" in " ".join(
        _executor_args(penguin_kubeflow.job, "Evaluator")["container"]["args"]
    )
    # No driver hook; the cache off, as KFP's cache key cannot see new files.
    assert "lifecycle" not in _executor_args(penguin_kubeflow.job, "CsvExampleGen")["container"]
    assert tasks["CsvExampleGen"]["cachingOptions"] == {"enableCache": False}
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}
    assert [n.split(":")[0] for n in penguin_kubeflow.notes] == [
        "baseline_from_serving", "CsvExampleGen"
    ]
    assert not penguin_kubeflow.warnings


def _penguin_settings(options, **changes):
    module = registry.load_module("penguin")
    settings = compiler.pipeline_settings(
        "penguin", options, [], default_data_root=module.default_data_root,
        schema_path=str(registry.get("penguin").schema_path),
    )
    return module.create_pipeline, dataclasses.replace(settings, **changes)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("kubeflow", r"Node 'baseline_resolver' is a Resolver \(LatestBlessedBeforeCandidate"
                     r"Strategy\), and Kubeflow Pipelines runs only container and importer tasks"),
        ("vertex", r"Node 'baseline_resolver' is a Resolver using LatestBlessedBeforeCandidate"
                   r"Strategy, which TFX cannot compile for Vertex AI Pipelines"),
    ],
)
def test_a_resolver_the_target_cannot_run_is_refused_naming_the_node(options_fn, target, message):
    """Refused, not silently compiled as another strategy."""
    options = options_fn(target)
    create, settings = _penguin_settings(options, baseline_source=BASELINE_BEFORE_CANDIDATE)
    with pytest.raises(ConfigError, match=message):
        compiler.compile_settings(create, settings, options, [])


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_a_node_with_a_driver_tfx_does_not_compile_is_refused(options_fn, target):
    from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
    from tfx.dsl.components.base import base_driver
    from tfx.orchestration.pipeline import Pipeline

    class SchemaWithDriver(ImportSchemaGen):
        DRIVER_CLASS = type("SchemaDriver", (base_driver.BaseDriver,), {})

    pipeline = Pipeline(
        pipeline_name="driven",
        pipeline_root="gs://bucket/root/driven",
        components=[SchemaWithDriver(schema_file="gs://bucket/schema.pbtxt").with_id("schema")],
    )
    with pytest.raises(ConfigError, match=r"Node 'schema' has a TFX driver \(SchemaDriver\)"):
        compiler.compile_tfx_pipeline(pipeline, options_fn(target))


def test_an_example_gen_that_needs_the_tfx_driver_is_refused_for_kubeflow(options_fn):
    options = options_fn("kubeflow")
    create, settings = _penguin_settings(options, data_format="parquet")
    with pytest.raises(ConfigError, match=r"Node 'ParquetExampleGen' is a file-based ExampleGen "
                       r"whose executor \(Executor\) needs TFX's driver"):
        compiler.compile_settings(create, settings, options, [])


def test_secret_from_the_environment_never_reaches_the_json(penguin_kubeflow, secret_in_env):
    name, value = secret_in_env
    text = json.dumps(penguin_kubeflow.job)
    assert value not in text
    assert f"--db_password=${{secret:{name}}}" in text
    executors = penguin_kubeflow.job["pipelineSpec"]["deploymentSpec"]["executors"]
    env = executors["Transform_executor"]["container"]["env"]
    assert env == [{"name": SOURCES_ENV, "value": json.dumps({name: "k8s:mlmd-db/password"})}]
    platform = penguin_kubeflow.job["platformSpec"]["platforms"]["kubernetes"]
    container_executors = {k for k, v in executors.items() if "container" in v}
    assert set(platform["deploymentSpec"]["executors"]) == container_executors


def test_a_secret_value_passed_literally_is_refused_and_nothing_written(
    options_fn, secret_in_env, tmp_path
):
    from beamline.cli import main

    name, value = secret_in_env
    out = tmp_path / "leak.json"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "compile",
                "penguin",
                "--target=kubeflow",
                "--image=img:1",
                f"--out={out}",
                "--pipeline-root=gs://bucket/root",
                "--data-root=gs://bucket/data",
                f"--beam-arg=--db_password={value}",
                f"--secret={name}=env",
            ]
        )
    assert info.value.code == 2
    assert not out.exists()


def test_vertex_compile_via_cli(penguin_vertex_file):
    job = json.loads(penguin_vertex_file.read_text())
    assert "Trainer" in _spec(job).root.dag.tasks
    assert "platformSpec" not in job
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root/penguin"


def test_vertex_keeps_tfx_resolvers_and_the_example_gen_driver(penguin_vertex_file):
    job = json.loads(penguin_vertex_file.read_text())
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    baseline = tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"]
    assert baseline["producerTask"] == "baseline_resolver-model-resolver"
    assert "resolver" in _executor_args(job, "baseline_resolver-model-resolver")
    assert "resolver" in _executor_args(job, "baseline_resolver-model-blessing-resolver")
    assert "preCacheCheck" in _executor_args(job, "CsvExampleGen")["container"]["lifecycle"]
    assert spec_rules.check(job["pipelineSpec"], "vertex") == []
    # The same spec is refused for Kubeflow, naming what it cannot run.
    refused = {(v.task, v.rule) for v in spec_rules.check(job["pipelineSpec"], "kubeflow")}
    assert refused == {
        ("baseline_resolver-model-resolver", "executor"),
        ("baseline_resolver-model-blessing-resolver", "executor"),
        ("CsvExampleGen", "lifecycle"),
        ("CsvExampleGen", "caching"),
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pipeline_root": "/tmp/root"}, "must be a storage URI"),
        ({"target": "vertex", "pipeline_root": "s3://b/r"}, "Vertex AI needs a gs://"),
        ({"image": ""}, "--image must name the pipeline image"),
        ({"beam": "dataflow"}, "profile .dataflow. needs values"),
        ({"beam_extra": ("--x=${secret:NOPE}",)}, "not declared"),
        ({"target": "airflow"}, "Unknown --target"),
        ({"secrets": (parse_secret("X=k8s:db/pw"),), "target": "vertex"}, "cannot mount"),
    ],
)
def test_bad_options_fail_before_tfx_is_needed(changes, message, options_fn):
    options = options_fn(**changes)
    with pytest.raises(ConfigError, match=message):
        compiler.check_options(options)


def test_write_job_only_writes_json(tmp_path):
    with pytest.raises(ConfigError, match="must end in .json"):
        compiler.write_job({}, tmp_path / "x.yaml")
    compiler.write_job({"a": 1}, tmp_path / "sub" / "x.json")
    assert json.loads((tmp_path / "sub" / "x.json").read_text()) == {"a": 1}


def test_a_local_span_directory_compiles_to_an_unpinned_span_pattern(tmp_path, options_fn):
    """Scheduled runs of the compiled pipeline take the latest span (TFX's default)."""
    for span in (1, 2):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "p.csv").write_text("species,island\nAdelie,Dream\n")
    compiled = compiler.compile_pipeline("penguin", options_fn("kubeflow", data_root=str(tmp_path)))
    params = compiled.job["pipelineSpec"]["root"]["dag"]["tasks"]["CsvExampleGen"]["inputs"][
        "parameters"
    ]
    config = json.loads(params["input_config"]["runtimeValue"]["constantValue"]["stringValue"])
    assert config["splits"][0]["pattern"] == "span-{SPAN}/*.csv"
    assert "range_config" not in params  # no span pinned at compile time
