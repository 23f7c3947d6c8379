"""Compile: TFX's KubeflowV2DagRunner output parses as a PipelineSpec, with the Beam profile's
args on every Beam step, module files referenced inside the image, and secrets only by name."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from beamline.deploy import compile as compiler
from beamline.deploy.secrets import SOURCES_ENV, parse_secret
from beamline.errors import ConfigError

BEAM_STEPS = ("CsvExampleGen", "StatisticsGen", "Transform")


def _spec(job) -> pipeline_spec_pb2.PipelineSpec:
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(job["pipelineSpec"], spec)
    return spec


def test_every_node_is_a_task_with_the_image_and_beam_args(tiny_kubeflow):
    spec = _spec(tiny_kubeflow.job)
    assert sorted(spec.root.dag.tasks) == sorted(
        ["CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "Transform"]
    )
    assert tiny_kubeflow.beam_args[:3] == [
        "--runner=DirectRunner",
        "--direct_running_mode=in_memory",
        "--direct_num_workers=2",
    ]
    executors = spec.deployment_spec.fields["executors"]
    for task in BEAM_STEPS:
        container = executors.struct_value.fields[f"{task}_executor"].struct_value["container"]
        args = list(container["args"])
        assert container["image"] == "registry.example/beamline:test"
        assert args[-len(tiny_kubeflow.beam_args) :] == tiny_kubeflow.beam_args, task


def test_module_and_schema_paths_point_into_the_image(tiny_kubeflow):
    text = json.dumps(tiny_kubeflow.job)
    assert "/pipeline/components/tiny/transform.py" in text
    assert "/pipeline/schemas/tiny/schema.pbtxt" in text
    assert "/srv/fake-project" not in text
    assert "_wheels" not in text  # module files are not packaged and uploaded at compile time
    assert tiny_kubeflow.job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root/tiny"


def test_secret_from_the_environment_never_reaches_the_json(tiny_kubeflow, secret_in_env):
    name, value = secret_in_env
    text = json.dumps(tiny_kubeflow.job)
    assert value not in text
    assert f"--db_password=${{secret:{name}}}" in text
    assert json.loads(
        tiny_kubeflow.job["pipelineSpec"]["deploymentSpec"]["executors"]["Transform_executor"][
            "container"
        ]["env"][0]["value"]
    ) == {name: "k8s:mlmd-db/password"}
    platform = tiny_kubeflow.job["platformSpec"]["platforms"]["kubernetes"]
    assert set(platform["deploymentSpec"]["executors"]) == {
        "CsvExampleGen_executor",
        "StatisticsGen_executor",
        "ImportSchemaGen_executor",
        "Transform_executor",
    }
    assert SOURCES_ENV in text


def test_a_secret_value_passed_literally_is_refused_and_nothing_written(
    compile_tiny_fn, secret_in_env, tmp_path
):
    name, value = secret_in_env
    with pytest.raises(ConfigError, match=rf"value of \${name}.*nothing was written") as info:
        compile_tiny_fn(
            "kubeflow",
            beam_extra=(f"--db_password={value}",),
            secrets=(parse_secret(f"{name}=env"),),
        )
    assert value not in str(info.value)


def test_vertex_compile_parses_and_rejects_non_gcs_roots(tiny_vertex_file, compile_tiny_fn):
    job = json.loads(tiny_vertex_file.read_text())
    assert len(_spec(job).root.dag.tasks) == 4
    assert "platformSpec" not in job
    with pytest.raises(ConfigError, match="Vertex AI needs a gs://"):
        compile_tiny_fn("vertex", pipeline_root="s3://bucket/root")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pipeline_root": "/tmp/root"}, "must be a storage URI"),
        ({"image": ""}, "--image must name the pipeline image"),
        ({"beam": "dataflow"}, "profile .dataflow. needs values"),
        ({"beam_extra": ("--x=${secret:NOPE}",)}, "not declared"),
        ({"target": "airflow"}, "Unknown --target"),
    ],
)
def test_bad_options_fail_before_tfx_is_needed(changes, message):
    options = compiler.CompileOptions(
        **{"target": "kubeflow", "image": "img", "pipeline_root": "gs://b/r", **changes}
    )
    with pytest.raises(ConfigError, match=message):
        compiler.check_options(options)


def test_write_job_only_writes_json(tmp_path):
    with pytest.raises(ConfigError, match="must end in .json"):
        compiler.write_job({}, tmp_path / "x.yaml")
    compiler.write_job({"a": 1}, tmp_path / "sub" / "x.json")
    assert json.loads((tmp_path / "sub" / "x.json").read_text()) == {"a": 1}
