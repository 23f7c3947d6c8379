"""Secret references: parsing, wiring into compiled jobs, leak scanning, run-time resolution."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from beamline.deploy import secrets
from beamline.errors import ConfigError


def _job():
    return {
        "pipelineSpec": {
            "deploymentSpec": {
                "executors": {
                    "Gen_executor": {
                        "container": {
                            "image": "img",
                            "command": ["python", "-m", "tfx.some.executor"],
                            "args": ["--x", "${secret:DB_PASSWORD}"],
                            "lifecycle": {
                                "preCacheCheck": {"command": ["python", "-m", "tfx.driver"]}
                            },
                        }
                    },
                    "Resolver_executor": {"resolver": {}},
                }
            }
        }
    }


def test_parse_secret_sources():
    assert secrets.parse_secret("DB_PASSWORD=k8s:mlmd-db/password").k8s_secret_and_key == (
        "mlmd-db",
        "password",
    )
    ref = secrets.parse_secret("TOKEN=gcp:projects/p/secrets/tok/versions/latest")
    assert (ref.kind, ref.source) == ("gcp", "gcp:projects/p/secrets/tok/versions/latest")
    assert secrets.parse_secret("TOKEN=env").source == "env"
    for bad in ["nope", "1X=env", "X=k8s:NoCaps/key", "X=k8s:db", "X=gcp:secrets/x", "X=vault:a"]:
        with pytest.raises(ConfigError, match="Bad --secret"):
            secrets.parse_secret(bad)


def test_undeclared_placeholder_is_an_error():
    with pytest.raises(ConfigError, match=r"\$\{secret:TOKEN\}.*--secret TOKEN=SOURCE"):
        secrets.check_references(["--a=${secret:TOKEN}"], ())
    secrets.check_references(["--a=${secret:TOKEN}"], (secrets.parse_secret("TOKEN=env"),))


def test_kubeflow_job_gets_secret_as_env_and_wrapped_commands():
    job = _job()
    refs = (
        secrets.parse_secret("DB_PASSWORD=k8s:mlmd-db/password"),
        secrets.parse_secret("API_TOKEN=gcp:projects/p/secrets/t/versions/1"),
    )
    secrets.apply_to_job(job, refs, "kubeflow")
    container = job["pipelineSpec"]["deploymentSpec"]["executors"]["Gen_executor"]["container"]
    assert container["command"] == ["python", "-m", secrets.ENTRYPOINT_MODULE, "tfx.some.executor"]
    assert container["lifecycle"]["preCacheCheck"]["command"][2:] == [
        secrets.ENTRYPOINT_MODULE,
        "tfx.driver",
    ]
    (env,) = container["env"]
    assert env["name"] == secrets.SOURCES_ENV
    assert json.loads(env["value"]) == {
        "API_TOKEN": "gcp:projects/p/secrets/t/versions/1",
        "DB_PASSWORD": "k8s:mlmd-db/password",
    }
    executors = job["platformSpec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors == {
        "Gen_executor": {
            "secretAsEnv": [
                {
                    "secretName": "mlmd-db",
                    "keyToEnv": [{"secretKey": "password", "envVar": "DB_PASSWORD"}],
                }
            ]
        }
    }
    # The platform spec is what kfp's client and backend read.
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    json_format.ParseDict(job["platformSpec"], pipeline_spec_pb2.PlatformSpec())


def test_vertex_refuses_kubernetes_secrets():
    with pytest.raises(ConfigError, match="Vertex AI Pipelines cannot mount Kubernetes Secrets"):
        secrets.apply_to_job(_job(), (secrets.parse_secret("X=k8s:db/pw"),), "vertex")


def test_find_leaks_names_variables_not_values():
    refs = (secrets.parse_secret("DB_PASSWORD=env"),)
    environ = {
        "DB_PASSWORD": "hunter22",
        "GITHUB_TOKEN": "ghp_abcdefghijkl",
        "HOME": "/root",
        "SHORT_TOKEN": "abc",
    }
    text = json.dumps({"args": ["--p=hunter22", "--t=ghp_abcdefghijkl", "/root", "abc"]})
    assert secrets.find_leaks(text, refs, environ) == ["DB_PASSWORD", "GITHUB_TOKEN"]
    assert secrets.find_leaks("{}", refs, environ) == []


def test_resolve_environment_fetches_gcp_and_checks_the_rest():
    environ = {
        secrets.SOURCES_ENV: json.dumps(
            {"A": "k8s:db/a", "B": "gcp:projects/p/secrets/b/versions/1", "C": "env"}
        ),
        "A": "from-kubernetes",
        "C": "from-cluster",
    }
    fetched = []

    def fetch(resource):
        fetched.append(resource)
        return "from-secret-manager"

    assert secrets.resolve_environment(environ, fetch) == ["A", "B", "C"]
    assert environ["B"] == "from-secret-manager"
    assert fetched == ["projects/p/secrets/b/versions/1"]
    assert secrets.substitute(["--b=${secret:B}", "plain"], environ) == [
        "--b=from-secret-manager",
        "plain",
    ]
    del environ["A"]
    with pytest.raises(secrets.SecretMissing, match=r"A \(from k8s:db/a\)"):
        secrets.resolve_environment(environ, fetch)


def test_entrypoint_resolves_then_runs_the_module(tmp_path):
    (tmp_path / "fake_step.py").write_text(
        "import json, os, sys\n"
        "json.dump({'argv': sys.argv[1:], 'env': os.environ['PW']}, open(sys.argv[1], 'w'))\n"
    )
    out = tmp_path / "out.json"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(tmp_path),
        secrets.SOURCES_ENV: json.dumps({"PW": "env"}),
        "PW": "run-time-only",
    }
    cmd = [sys.executable, "-m", secrets.ENTRYPOINT_MODULE, "fake_step", str(out)]
    cmd.append("--pw=${secret:PW}")
    subprocess.run(cmd, env=env, check=True)
    assert json.loads(out.read_text()) == {
        "argv": [str(out), "--pw=run-time-only"],
        "env": "run-time-only",
    }
    del env["PW"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "PW (from env)" in result.stderr


BEAM_STEP = (
    "import sys\n"
    "from apache_beam.options.pipeline_options import PipelineOptions\n"
    "PipelineOptions(sys.argv[1:]).get_all_options()  # logs the flags Beam does not know\n"
)


def test_secret_in_a_flag_beam_does_not_know_stays_out_of_the_entrypoints_log(
    tmp_path, monkeypatch, caplog, record_factory_restored
):
    from beamline.deploy import entrypoint

    value = "db-tok-5e1f0a"
    (tmp_path / "beam_step.py").write_text(BEAM_STEP)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setenv(secrets.SOURCES_ENV, json.dumps({"DB_TOKEN": "env"}))
    monkeypatch.setenv("DB_TOKEN", value)
    caplog.set_level(logging.WARNING)
    entrypoint.main(["beam_step", "--some_flag=${secret:DB_TOKEN}", "--runner=DirectRunner"])
    assert sys.argv[1] == f"--some_flag={value}"  # the step got the value...
    assert "Discarding unparseable args: ['--some_flag=***']" in caplog.text  # ...Beam's log not
    assert value not in caplog.text
    assert all(value not in r.getMessage() for r in caplog.records)
