"""Shared fixtures for the deploy tests: TFX is imported once per session, compiles are shared.

The compiled pipelines are the project's real ones (pipelines/<name>.py), with gs:// roots that
nothing reads at compile time (module files are not packaged: they live in the image).
"""

from __future__ import annotations

import os

import pytest

# A value that must never reach a compiled pipeline (set before any compile in this session).
SECRET_NAME = "BEAMLINE_TEST_DB_PASSWORD"
SECRET_VALUE = "s3cr3t-value-4f9a7c"
IMAGE = "registry.example/beamline:test"


def compile_options(target: str = "kubeflow", name: str = "penguin", **overrides):
    from beamline.deploy import compile as compiler

    values = {
        "target": target,
        "image": IMAGE,
        "pipeline_root": "gs://bucket/root",
        "data_root": f"gs://bucket/data/{name}",
        **overrides,
    }
    return compiler.CompileRequest(**values)


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
def options_fn():
    return compile_options


@pytest.fixture(scope="session")
def penguin_kubeflow(secret_in_env):
    """Penguin compiled for Kubeflow with a Kubernetes secret used in a Beam arg."""
    from beamline.deploy import compile as compiler
    from beamline.deploy.secrets import parse_secret

    name, _ = secret_in_env
    options = compile_options(
        "kubeflow",
        beam_extra=("--direct_num_workers=2", f"--db_password=${{secret:{name}}}"),
        secrets=(parse_secret(f"{name}=k8s:mlmd-db/password"),),
    )
    return compiler.compile_pipeline("penguin", options)


@pytest.fixture(scope="session")
def penguin_vertex_file(tmp_path_factory):
    """Penguin compiled for Vertex through the CLI."""
    from beamline.cli import main

    out = tmp_path_factory.mktemp("vertex") / "penguin.json"
    main(
        [
            "compile",
            "penguin",
            "--target=vertex",
            f"--image={IMAGE}",
            f"--out={out}",
            "--pipeline-root=gs://bucket/root",
            "--data-root=gs://bucket/data/penguin",
        ]
    )
    return out
