"""From a table of one's own to a served model, for each task: `beamline init --data --label`,
`run`, `serve`, predict/classify/regress (REST and TF Serving's gRPC client) and `monitor` on the
logged requests. The tables ship with scikit-learn: breast cancer (binary, CSV), wine with some
labels missing (multiclass, CSV) and diabetes (regression, Parquet)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import CliRun, beamline
from tests.serving.support import running_server

# Breast cancer's first ten measurements are enough to learn it and keep Transform short.
BREAST_CANCER_COLUMNS = 10
WINE_LABEL_GAP_EVERY = 15  # rows 0, 15, 30, ... lose their label: 12 of 178


@dataclass
class Project:
    name: str
    directory: Path
    table: Path
    init: CliRun
    run: CliRun | None = None
    sample: dict = field(default_factory=dict)


@dataclass
class Tabular:
    root: Path
    logs: Path
    projects: dict[str, Project]
    answers: dict[str, requests.Response]
    grpc_regress: list[float]
    monitor: CliRun
    monitor_report: dict


def _tables(base: Path) -> dict[str, tuple[Path, str]]:
    from sklearn import datasets

    def frame(loader):
        data = loader(as_frame=True).frame
        data.columns = [re.sub(r"[^A-Za-z0-9_]+", "_", c).strip("_") for c in data.columns]
        return data

    cancer = frame(datasets.load_breast_cancer)
    cancer = cancer[[*cancer.columns[:BREAST_CANCER_COLUMNS], "target"]]
    cancer.to_csv(base / "breast_cancer.csv", index=False)
    wine = frame(datasets.load_wine)
    wine["target"] = wine["target"].astype("Int64")
    wine.loc[:: WINE_LABEL_GAP_EVERY, "target"] = None
    wine.to_csv(base / "wine.csv", index=False)
    frame(datasets.load_diabetes).to_parquet(base / "diabetes.parquet", index=False)
    return {
        "breast_cancer": (base / "breast_cancer.csv", "binary"),
        "wine": (base / "wine.csv", "multiclass"),
        "diabetes": (base / "diabetes.parquet", "regression"),
    }


def _sample_instance(project: Project) -> dict:
    text = (project.directory / "pipelines" / f"{project.name}.py").read_text()
    namespace: dict = {}
    exec(text.split("\ndef default_data_root")[0], namespace)  # noqa: S102 - generated, ours
    return namespace["SAMPLE_INSTANCE"]


@pytest.fixture(scope="module")
def tabular(tmp_path_factory) -> Tabular:
    base = tmp_path_factory.mktemp("tabular")
    root, logs = base / "root", base / "requests"
    projects = {}
    for name, (table, _) in _tables(base).items():
        directory = base / f"{name}-project"
        init = beamline("init", str(directory), "--data", str(table), "--label", "target")
        assert init.returncode == 0, init.stdout + init.stderr
        projects[name] = Project(name, directory, table, init)
    # The three runs at once: most of each is TensorFlow's start-up and Transform's tracing,
    # which overlap well on two cores. One run root, so one server serves all three.
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "beamline", "run", name, "--no-tune", "--root", str(root)],
            cwd=p.directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, p in projects.items()
    }
    for name, proc in running.items():
        out, err = proc.communicate(timeout=1800)
        projects[name].run = CliRun(["run", name], proc.returncode, out, err)
        projects[name].sample = _sample_instance(projects[name])
    answers, grpc_values = {}, []
    with running_server(
        ready_model="diabetes",
        args=[f"--root={root}", f"--request_log_dir={logs}", "--file_system_poll_wait_seconds=1"],
        log_dir=base,
    ) as server:
        def post(name: str, verb: str, body: dict) -> requests.Response:
            return requests.post(f"{server.rest_url}/v1/models/{name}:{verb}", json=body,
                                 timeout=60)

        cancer = projects["breast_cancer"].sample
        answers["binary predict"] = post("breast_cancer", "predict", {"instances": [cancer]})
        answers["binary classify"] = post(
            "breast_cancer", "classify", {"signature_name": "classification", "examples": [cancer]}
        )
        answers["wine predict"] = post("wine", "predict", {"instances": [projects["wine"].sample]})
        diabetes_rows = _diabetes_instances(projects["diabetes"])
        answers["regression predict"] = post("diabetes", "predict", {"instances": diabetes_rows})
        answers["regression regress"] = post(
            "diabetes", "regress", {"signature_name": "regression", "examples": diabetes_rows[:5]}
        )
        grpc_values = _grpc_regress(server.grpc_port, diabetes_rows[:5])
    monitor_json = base / "monitor.json"
    monitor = beamline("monitor", "diabetes", "--requests", str(logs), "--root", str(root),
                       "--json-out", str(monitor_json))
    report = json.loads(monitor_json.read_text()) if monitor_json.exists() else {}
    return Tabular(root, logs, projects, answers, grpc_values, monitor, report)


def _diabetes_instances(project: Project) -> list[dict]:
    import pandas as pd

    table = pd.read_parquet(project.table)
    features = list(project.sample)
    return [{k: float(v) for k, v in row.items()} for row in table[features].to_dict("records")]


def _grpc_regress(port: int, rows: list[dict]) -> list[float]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc, regression_pb2

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "diabetes"
    request.model_spec.signature_name = "regression"
    for row in rows:
        example = request.input.example_list.examples.add()
        for key, value in row.items():
            example.features.feature[key].float_list.value.append(value)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Regress(request, timeout=60)
    return [r.value for r in response.result.regressions]


def test_init_decides_each_task_from_the_label_and_says_why(tabular):
    said = {name: p.init.stdout for name, p in tabular.projects.items()}
    assert "task: binary, because 'target' has two values" in said["breast_cancer"]
    assert "task: multiclass, because 'target' holds 3 whole numbers" in said["wine"]
    assert "task: regression, because 'target' holds" in said["diabetes"]
    assert "rows without a 'target' value: 12" in said["wine"]
    for p in tabular.projects.values():
        transform = (p.directory / "components" / p.name / "transform" / "module.py").read_text()
        assert "NUMERIC_FEATURES" in transform and "preprocessing_fn" in transform


def test_each_run_blesses_and_pushes_a_model_and_counts_rows_without_a_label(tabular):
    for name, p in tabular.projects.items():
        assert p.run.returncode == 0, (name, p.run.stdout[-3000:], p.run.stderr[-3000:])
        assert "model blessed: yes" in p.run.stdout, name
        assert re.search(r"pushed: version \d+", p.run.stdout), name
    assert "rows without a label: 12 (left out" in tabular.projects["wine"].run.stdout
    assert "rows without a label" not in tabular.projects["diabetes"].run.stdout


def test_the_blessed_models_beat_the_naive_baselines_by_their_task_metric(tabular):
    for name, metric in (("breast_cancer", "auc"), ("wine", "sparse_categorical_accuracy"),
                         ("diabetes", "root_mean_squared_error")):
        shown = beamline("models", name, "--root", str(tabular.root), "--json")
        assert shown.returncode == 0, shown.stderr
        [version] = json.loads(shown.stdout)["versions"]
        assert version["metric"] == metric and version["blessed"] is True
        bounds = dict(_bless_bounds(tabular.projects[name]))
        if metric == "root_mean_squared_error":
            assert version["value"] <= bounds[metric]
        else:
            assert version["value"] >= bounds[metric]


def _bless_bounds(project: Project):
    text = (project.directory / "pipelines" / f"{project.name}.py").read_text()
    [bounds] = re.findall(r"^BLESS_BOUNDS = (.*)$", text, re.M)
    return eval(bounds)  # noqa: S307 - a literal tuple this test's own init wrote


def test_a_binary_model_answers_both_classes_scores_with_the_positive_second(tabular):
    predict = tabular.answers["binary predict"]
    assert predict.status_code == 200, predict.text
    [answer] = predict.json()["predictions"]
    assert answer["classes"] == ["1", "0"]  # majority '1' (benign) negative, '0' positive
    assert len(answer["scores"]) == 2 and abs(sum(answer["scores"]) - 1) < 1e-5
    classify = tabular.answers["binary classify"]
    assert classify.status_code == 200, classify.text
    [[first, second]] = classify.json()["results"]
    assert (first[0], second[0]) == ("1", "0")


def test_a_regression_model_answers_one_number_per_instance_on_rest_and_grpc(tabular):
    predict = tabular.answers["regression predict"]
    assert predict.status_code == 200, predict.text
    predictions = predict.json()["predictions"]
    assert all(isinstance(v, float) for v in predictions)
    regress = tabular.answers["regression regress"]
    assert regress.status_code == 200, regress.text
    assert regress.json()["results"] == pytest.approx(predictions[:5], rel=1e-4)
    assert tabular.grpc_regress == pytest.approx(predictions[:5], rel=1e-4)
    # It learned: closer to the truth than always answering the median (the naive MAE).
    import pandas as pd

    truth = pd.read_parquet(tabular.projects["diabetes"].table)["target"]
    errors = (pd.Series(predictions) - truth).abs()
    assert errors.mean() < (truth - truth.median()).abs().mean()


def test_a_multiclass_model_with_label_gaps_serves_its_classes(tabular):
    predict = tabular.answers["wine predict"]
    assert predict.status_code == 200, predict.text
    [answer] = predict.json()["predictions"]
    assert sorted(answer["classes"]) == ["0", "1", "2"]


def test_monitor_reads_the_regression_models_logged_requests(tabular):
    assert tabular.monitor.returncode in (0, 9), tabular.monitor.stdout + tabular.monitor.stderr
    [version] = tabular.monitor_report["versions"]
    assert version["requests"] == len(tabular.answers["regression predict"].json()[
        "predictions"]) + 5 + 5  # predict, REST regress, gRPC regress
