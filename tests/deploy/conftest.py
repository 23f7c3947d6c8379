"""Shared fixtures for the deploy tests: TFX is imported once per session, compiles are shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from beamline.settings import TF_ENVIRONMENT

for _key, _value in TF_ENVIRONMENT.items():
    os.environ.setdefault(_key, _value)

# A value that must never reach a compiled pipeline (set before any compile in this session).
SECRET_NAME = "BEAMLINE_TEST_DB_PASSWORD"
SECRET_VALUE = "s3cr3t-value-4f9a7c"
FAKE_PROJECT = Path("/srv/fake-project")


def tiny_create_pipeline(settings):
    """CsvExampleGen -> StatisticsGen, ImportSchemaGen -> Transform: the shapes compile sees."""
    from tfx import v1 as tfx

    example_gen = tfx.components.CsvExampleGen(input_base=settings.data_root)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=settings.schema_path)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file=str(FAKE_PROJECT / "components" / "tiny" / "transform.py"),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=settings.pipeline_name,
        pipeline_root=settings.pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, transform],
        beam_pipeline_args=list(settings.beam_pipeline_args),
        metadata_connection_config=settings.metadata_connection_config,
    )


def compile_tiny(target: str = "kubeflow", **overrides):
    from beamline.deploy import compile as compiler

    options = compiler.CompileOptions(
        target=target,
        image=overrides.pop("image", "registry.example/beamline:test"),
        pipeline_root=overrides.pop("pipeline_root", "gs://bucket/root"),
        data_root=overrides.pop("data_root", "gs://bucket/data/tiny"),
        **overrides,
    )
    args = compiler.check_options(options)
    settings = compiler.pipeline_settings(
        "tiny",
        options,
        args,
        default_data_root=lambda: "unused",
        schema_path=str(FAKE_PROJECT / "schemas" / "tiny" / "schema.pbtxt"),
    )
    return compiler.compile_settings(
        tiny_create_pipeline, settings, options, args, project_root=FAKE_PROJECT
    )


@pytest.fixture(scope="session")
def secret_in_env():
    old = os.environ.get(SECRET_NAME)
    os.environ[SECRET_NAME] = SECRET_VALUE
    yield SECRET_NAME, SECRET_VALUE
    if old is None:
        os.environ.pop(SECRET_NAME, None)
    else:
        os.environ[SECRET_NAME] = old


@pytest.fixture(scope="session")
def tiny_kubeflow(secret_in_env):
    """The tiny pipeline compiled for Kubeflow with a k8s secret used in a Beam arg."""
    from beamline.deploy.secrets import parse_secret

    return compile_tiny(
        "kubeflow",
        beam="direct",
        beam_extra=("--direct_num_workers=2", f"--db_password=${{secret:{SECRET_NAME}}}"),
        secrets=(parse_secret(f"{SECRET_NAME}=k8s:mlmd-db/password"),),
    )


@pytest.fixture(scope="session")
def tiny_vertex_file(tmp_path_factory):
    from beamline.deploy import compile as compiler

    compiled = compile_tiny("vertex", beam="direct")
    path = tmp_path_factory.mktemp("vertex") / "tiny.json"
    compiler.write_job(compiled.job, path)
    return path


@pytest.fixture(scope="session")
def compile_tiny_fn():
    return compile_tiny
