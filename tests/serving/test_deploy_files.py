"""The production files in deploy/ (real TF Serving) stay valid and drop-in for `beamline serve`."""

from __future__ import annotations

import shlex

import yaml

from beamline.commands.serve import serve
from beamline_serving.core.config import (
    parse_batching_parameters,
    parse_model_config_text,
    read_monitoring_config,
)
from tests.serving.support import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def _accepted_by_beamline_serve(args: list[str]) -> dict:
    context = serve.make_context("serve", list(args))
    return context.params


def test_kubernetes_manifest_is_valid_and_its_flags_work_with_beamline_serve(tmp_path):
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "tf-serving.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {"ConfigMap", "Deployment", "ServiceAccount", "Service"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "tensorflow/serving:2.16.1"
    params = _accepted_by_beamline_serve(container["args"])
    assert params["enable_batching"] is True
    assert params["port"] == 8500 and params["rest_api_port"] == 8501

    data = kinds["ConfigMap"]["data"]
    (spec,) = parse_model_config_text(data["models.config"], "models.config")
    assert spec.name == "penguin" and spec.base_path.startswith("gs://")
    assert parse_batching_parameters(data["batching.config"]).max_batch_size == 32
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(data["monitoring.config"])
    assert read_monitoring_config(monitoring) == "/monitoring/prometheus/metrics"
    probe = container["readinessProbe"]["httpGet"]["path"]
    assert probe == f"/v1/models/{spec.name}"


def test_docker_command_flags_work_with_beamline_serve():
    script = (DEPLOY / "tf-serving" / "docker-run.sh").read_text()
    command = script[script.index("exec docker run") :].replace("\\\n", " ")
    words = shlex.split(command.split("\n")[0])
    image = words.index("tensorflow/serving:2.16.1")
    flags = [w.replace("/config/", f"{DEPLOY / 'tf-serving'}/") for w in words[image + 1 :]]
    params = _accepted_by_beamline_serve(flags)
    assert params["enable_batching"] is True
    assert read_monitoring_config(DEPLOY / "tf-serving" / "monitoring.config")
    batching = parse_batching_parameters((DEPLOY / "tf-serving" / "batching.config").read_text())
    assert batching.batch_timeout_micros == 1000
