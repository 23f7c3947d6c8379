"""Submit: the request each target would send, what kfp's Client really sends to a (fake) KFP API
on loopback, and clear errors when nothing answers or no credentials exist. Also recurring runs
(--schedule): a KFP recurring run and a Vertex AI PipelineJobSchedule."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from beamline.cli import main
from beamline.deploy import compile as compiler
from beamline.deploy import submit as sub
from beamline.errors import ConfigError


@pytest.fixture(scope="module")
def kubeflow_file(penguin_kubeflow, tmp_path_factory):
    path = tmp_path_factory.mktemp("kfp") / "penguin.json"
    compiler.write_job(penguin_kubeflow.job, path)
    return path


class FakeKfp(BaseHTTPRequestHandler):
    """Just enough of the KFP v2beta1 API for kfp.Client.create_run_from_pipeline_package."""

    requests: list[tuple[str, str, dict | None]] = []

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self.requests.append(("GET", self.path, None))
        if self.path.startswith("/apis/v2beta1/healthz"):
            self._reply({"multi_user": False})
        else:  # experiments list: none yet
            self._reply({})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(("POST", self.path, body))
        if self.path == "/apis/v2beta1/experiments":
            self._reply({"experiment_id": "exp-1", "display_name": body["display_name"]})
        elif self.path == "/apis/v2beta1/recurringruns":
            self._reply({"recurring_run_id": "rr-1", "experiment_id": body["experiment_id"]})
        else:
            self._reply({"run_id": "run-1", "experiment_id": body["experiment_id"]})

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_kfp():
    FakeKfp.requests = []
    server = HTTPServer(("127.0.0.1", 0), FakeKfp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", FakeKfp.requests
    server.shutdown()
    server.server_close()


def test_kubeflow_dry_run_prints_the_run_body(kubeflow_file, capsys):
    main(
        [
            "submit",
            str(kubeflow_file),
            "--target=kubeflow",
            "--host=http://kfp.example:8080/",
            "--experiment=nightly",
            "--run-name=r1",
            "--no-cache",
            "--dry-run",
        ]
    )
    request = json.loads(capsys.readouterr().out)
    assert request["experiment"] == {"display_name": "nightly", "namespace": ""}
    assert request["url"] == "http://kfp.example:8080/apis/v2beta1/runs"
    body = request["body"]
    assert body["display_name"] == "r1"
    assert body["runtime_config"] == {"parameters": {}, "pipeline_root": "gs://bucket/root/penguin"}
    # With Kubernetes secrets kfp sends the platform spec alongside the pipeline spec.
    assert set(body["pipeline_spec"]) == {"pipeline_spec", "platform_spec"}
    tasks = body["pipeline_spec"]["pipeline_spec"]["root"]["dag"]["tasks"]
    assert {t["cachingOptions"].get("enableCache", False) for t in tasks.values()} == {False}


def test_kubeflow_submit_sends_exactly_the_dry_run_body(kubeflow_file, fake_kfp):
    host, requests = fake_kfp
    job = sub.load_job(kubeflow_file)
    target = sub.KubeflowTarget(host=host, experiment="nightly", run_name="r1")
    expected = sub.kubeflow_request(job, target, {"x": "1"})
    result = sub.submit_kubeflow(job, target, {"x": "1"})
    assert result == {"run_id": "run-1", "url": f"{host}/#/runs/details/run-1"}
    posts = [(path, body) for method, path, body in requests if method == "POST"]
    assert posts[0] == ("/apis/v2beta1/experiments", {"display_name": "nightly", "namespace": ""})
    path, body = posts[1]
    assert path == "/apis/v2beta1/runs"
    assert body.pop("experiment_id") == "exp-1"
    expected_body = dict(expected["body"])
    del expected_body["experiment_id"]
    assert body == expected_body


def test_kubeflow_unreachable_host_fails_fast_and_clearly(kubeflow_file, capsys, closed_port):
    port = closed_port
    with pytest.raises(SystemExit) as exit_info:
        main(["submit", str(kubeflow_file), "--target=kubeflow", f"--host=http://127.0.0.1:{port}"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"Cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}" in err
    assert "Connection refused" in err


def test_vertex_dry_run_builds_the_create_request(penguin_vertex_file, capsys):
    main(
        [
            "submit",
            str(penguin_vertex_file),
            "--target=vertex",
            "--project=my-proj",
            "--region=europe-west4",
            "--job-id=penguin-1",
            "--service-account=runner@my-proj.iam.gserviceaccount.com",
            "--dry-run",
        ]
    )
    request = json.loads(capsys.readouterr().out)
    assert request["parent"] == "projects/my-proj/locations/europe-west4"
    assert request["endpoint"] == "europe-west4-aiplatform.googleapis.com"
    assert request["pipeline_job_id"] == "penguin-1"
    job = request["pipeline_job"]
    assert job["serviceAccount"] == "runner@my-proj.iam.gserviceaccount.com"
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root/penguin"
    compiled = json.loads(penguin_vertex_file.read_text())
    assert job["pipelineSpec"]["root"] == compiled["pipelineSpec"]["root"]


def test_vertex_without_credentials_says_how_to_get_them(
    penguin_vertex_file, monkeypatch, tmp_path
):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    job = sub.load_job(penguin_vertex_file)
    target = sub.VertexTarget(project="p", region="us-central1")
    with pytest.raises(ConfigError, match="No Google credentials for Vertex AI"):
        sub.submit_vertex(penguin_vertex_file, job, target, {})


def test_vertex_without_network_fails_fast_before_sending(
    penguin_vertex_file, monkeypatch, tmp_path
):
    credentials = tmp_path / "adc.json"
    credentials.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "test.apps.googleusercontent.com",
                "client_secret": "not-a-secret",
                "refresh_token": "not-a-token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    job = sub.load_job(penguin_vertex_file)
    target = sub.VertexTarget(project="p", region="us-central1")
    with pytest.raises(sub.SubmitFailed, match="Cannot get a Google access token"):
        sub.submit_vertex(penguin_vertex_file, job, target, {})


def test_vertex_refuses_a_kubeflow_compile_with_kubernetes_secrets(kubeflow_file):
    job = sub.load_job(kubeflow_file)
    with pytest.raises(ConfigError, match="cannot do"):
        sub.vertex_request(kubeflow_file, job, sub.VertexTarget(project="p", region="r"), {})


def test_submit_checks_its_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"pipelineSpec": {"root": {"dag": {"tasks": {"t": {"nope": 1}}}}}}')
    with pytest.raises(ConfigError, match="not a valid KFP PipelineSpec"):
        sub.load_job(bad)
    with pytest.raises(ConfigError, match="Bad --param"):
        sub.parse_params(["novalue"])
    with pytest.raises(SystemExit) as exit_info:
        main(["submit", str(bad), "--target=vertex", "--region=r", "--dry-run"])
    assert exit_info.value.code == 2


# --- recurring runs (--schedule) -----------------------------------------------------------------


def test_kubeflow_schedule_dry_run_prints_the_recurring_run_body(kubeflow_file, capsys):
    main(
        [
            "submit",
            str(kubeflow_file),
            "--target=kubeflow",
            "--host=http://kfp.example:8080",
            "--experiment=nightly",
            "--schedule=0 3 * * *",
            "--dry-run",
        ]
    )
    request = json.loads(capsys.readouterr().out)
    assert request["url"] == "http://kfp.example:8080/apis/v2beta1/recurringruns"
    body = request["body"]
    # KFP's cron has seconds first; a 5-field cron runs at second 0.
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}
    assert body["no_catchup"] is True and int(body["max_concurrency"]) == 1
    assert body["mode"] == "ENABLE" and body["display_name"] == "penguin schedule"
    assert body["runtime_config"]["pipeline_root"] == "gs://bucket/root/penguin"
    assert set(body["pipeline_spec"]) == {"pipeline_spec", "platform_spec"}


def test_kubeflow_schedule_sends_exactly_the_dry_run_body(kubeflow_file, fake_kfp):
    from beamline.deploy import schedule as sched

    host, requests = fake_kfp
    job = sub.load_job(kubeflow_file)
    target = sub.KubeflowTarget(host=host, experiment="nightly")
    recurring = sched.Schedule(cron="*/30 0 3 * * 1-5", max_concurrency=2, catchup=True)
    expected = sched.kubeflow_recurring_request(job, target, {}, recurring)
    result = sched.create_kubeflow_recurring_run(job, target, {}, recurring)
    assert result == {
        "recurring_run_id": "rr-1",
        "url": f"{host}/#/recurringruns/details/rr-1",
    }
    posts = [(path, body) for method, path, body in requests if method == "POST"]
    assert [path for path, _ in posts] == [
        "/apis/v2beta1/experiments",
        "/apis/v2beta1/recurringruns",
    ]
    body = posts[1][1]
    assert body.pop("experiment_id") == "exp-1"
    expected_body = dict(expected["body"])
    del expected_body["experiment_id"]
    assert body == expected_body
    assert body["trigger"]["cron_schedule"]["cron"] == "*/30 0 3 * * 1-5"
    assert body["no_catchup"] is False and int(body["max_concurrency"]) == 2


def test_vertex_schedule_dry_run_builds_the_create_schedule_request(penguin_vertex_file, capsys):
    main(
        [
            "submit",
            str(penguin_vertex_file),
            "--target=vertex",
            "--project=my-proj",
            "--region=europe-west4",
            "--service-account=runner@my-proj.iam.gserviceaccount.com",
            "--schedule=TZ=Europe/Berlin 0 3 * * *",
            "--run-name=penguin-nightly",
            "--dry-run",
        ]
    )
    request = json.loads(capsys.readouterr().out)
    assert request["rpc"] == "google.cloud.aiplatform.v1.ScheduleService.CreateSchedule"
    assert request["parent"] == "projects/my-proj/locations/europe-west4"
    schedule = request["schedule"]
    assert schedule["cron"] == "TZ=Europe/Berlin 0 3 * * *"
    assert schedule["displayName"] == "penguin-nightly"
    assert schedule["maxConcurrentRunCount"] == "1"
    job = schedule["createPipelineJobRequest"]["pipelineJob"]
    assert job["serviceAccount"] == "runner@my-proj.iam.gserviceaccount.com"
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root/penguin"
    compiled = json.loads(penguin_vertex_file.read_text())
    assert job["pipelineSpec"]["root"] == compiled["pipelineSpec"]["root"]


@pytest.mark.parametrize(
    ("target", "cron", "message"),
    [
        ("kubeflow", "0 3 * *", "6 fields, seconds first"),
        ("kubeflow", "61 0 3 * * *", "not a valid cron expression for Kubeflow"),
        ("kubeflow", "0 61 3 * * *", "not a valid cron expression for Kubeflow"),
        ("vertex", "0 0 3 * * *", "drop the seconds field"),
        ("vertex", "0 25 * * *", "not a valid cron expression for Vertex AI"),
        ("vertex", "@daily", "not a valid cron expression for Vertex AI"),
    ],
)
def test_bad_schedules_fail_before_sending(
    target, cron, message, kubeflow_file, penguin_vertex_file, capsys
):
    file = kubeflow_file if target == "kubeflow" else penguin_vertex_file
    flags = (
        ["--host=http://127.0.0.1:9"]
        if target == "kubeflow"
        else ["--project=p", "--region=us-central1"]
    )
    with pytest.raises(SystemExit) as info:
        main(["submit", str(file), f"--target={target}", f"--schedule={cron}", *flags])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Nothing was sent" in err and "Traceback" not in err


def test_max_concurrency_is_bounded(kubeflow_file, capsys):
    with pytest.raises(SystemExit) as info:
        main(
            [
                "submit",
                str(kubeflow_file),
                "--target=kubeflow",
                "--host=http://127.0.0.1:9",
                "--schedule=0 3 * * *",
                "--max-concurrency=11",
            ]
        )
    assert info.value.code == 2
    assert "between 1 and 10" in capsys.readouterr().err
