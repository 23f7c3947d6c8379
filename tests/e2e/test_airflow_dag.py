"""The penguin pipeline on Apache Airflow: compiled by `beamline compile --target airflow`, run by
Airflow itself (`airflow dags test`, SQLite Airflow database in a temporary AIRFLOW_HOME), read
back with `beamline runs/lineage/why`, and its pushed model served by `beamline serve`.

One DAG session, two DAG runs (the second over unchanged data is cached); no tuning. A secret
declared `--secret NAME=env` and used in a Beam arg stays a reference in the DAG file and is
filled in by the worker (here the `airflow dags test` process) at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from beamline_pipelines.penguin import SAMPLE_INSTANCE
from tests.e2e.conftest import CliRun, beamline
from tests.serving.support import running_server

SECRET_NAME = "BEAMLINE_AIRFLOW_TEST_TOKEN"
SECRET_VALUE = "af-token-7c1e9b24d3"
START_DATE = "2026-01-01"
# Logical dates after the start date: Airflow runs no task for a date before it.
RUN_DATES = ("2026-01-02", "2026-01-03")


@dataclass
class AirflowSession:
    root: Path
    dag_file: Path
    compiled: CliRun
    dag_runs: list[subprocess.CompletedProcess]

    def runs(self) -> list[dict]:
        listed = beamline("runs", "--root", str(self.root), "--json")
        assert listed.returncode == 0, listed.stderr
        return list(reversed(json.loads(listed.stdout)))  # oldest first


def _airflow(env: dict[str, str], *args: str, timeout: int = 3600):
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run(
        [str(airflow), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def airflow_session(tmp_path_factory) -> AirflowSession:
    base = tmp_path_factory.mktemp("airflow")
    root, dags, home = base / "root", base / "dags", base / "airflow_home"
    dag_file = dags / "penguin.py"
    env = {
        **os.environ,
        SECRET_NAME: SECRET_VALUE,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Parsing the DAG imports TensorFlow and TFX: far more than Airflow's 30 s default.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "900",
    }
    os.environ[SECRET_NAME] = SECRET_VALUE  # the compile's leak check knows the value
    try:
        compiled = beamline(
            "compile", "penguin", "--target", "airflow", "--schedule", "@daily",
            "--start-date", START_DATE, "--no-tune", "--root", str(root),
            "--out", str(dag_file),
            "--secret", f"{SECRET_NAME}=env",
            "--beam-arg", f"--experiments=beamline_token_${{secret:{SECRET_NAME}}}",
        )  # fmt: skip
    finally:
        os.environ.pop(SECRET_NAME, None)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    migrated = _airflow(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    dag_runs = []
    for date in RUN_DATES:
        run = _airflow(env, "dags", "test", "penguin", date)
        assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
        dag_runs.append(run)
    return AirflowSession(root, dag_file, compiled, dag_runs)


def test_dag_file_has_one_task_per_node_and_no_secret_value(airflow_session):
    out = airflow_session.compiled.stdout
    assert "DAG 'penguin' with 9 tasks" in out, out
    for node in ("CsvExampleGen", "Transform", "Trainer", "baseline_resolver", "Pusher"):
        assert node in out
    text = airflow_session.dag_file.read_text()
    assert SECRET_VALUE not in text
    assert f"${{secret:{SECRET_NAME}}}" in text and f"'{SECRET_NAME}': 'env'" in text
    assert "AirflowDagRunner" in text and "'schedule': '@daily'" in text


def test_airflow_ran_every_task(airflow_session):
    log = airflow_session.dag_runs[0].stdout + airflow_session.dag_runs[0].stderr
    for node in ("CsvExampleGen", "Trainer", "Evaluator", "Pusher"):
        assert f"task_id={node}, run_id=manual__{RUN_DATES[0]}" in log
    assert "Marking task as FAILED" not in log


def test_runs_reads_both_dag_runs_first_pushed_second_cached(airflow_session):
    first, second = airflow_session.runs()
    assert first["pipeline"] == second["pipeline"] == "penguin"
    assert first["run_id"] == f"penguin.manual__{RUN_DATES[0]}T00:00:00+00:00"
    assert first["state"] == "complete" and first["failed"] == 0
    assert first["executed"] >= 8 and first["nodes"] == 9
    assert first["blessed"] is True and first["pushed_version"]
    # Unchanged data: every component comes from TFX's cache; nothing new is pushed.
    assert second["cached"] >= 7 and second["failed"] == 0
    assert second["pushed_version"] is None
    why = beamline(
        "why", "Trainer", "--run", second["run_id"], "--root", str(airflow_session.root), "--json"
    )
    assert why.returncode == 0, why.stderr
    assert json.loads(why.stdout)["state"] == "CACHED"


def test_lineage_traces_the_pushed_model_to_the_penguins_csv(airflow_session):
    first, _ = airflow_session.runs()
    traced = beamline(
        "lineage", str(first["pushed_version"]), "--root", str(airflow_session.root), "--json"
    )
    assert traced.returncode == 0, traced.stderr
    text = traced.stdout
    for node in ("Pusher", "Evaluator", "Trainer", "Transform", "CsvExampleGen"):
        assert node in text
    assert "penguins.csv" in text


def test_serve_the_model_airflow_pushed(airflow_session, tmp_path):
    first, _ = airflow_session.runs()
    serving_dir = airflow_session.root / "serving" / "penguin"
    assert [p.name for p in serving_dir.iterdir()] == [str(first["pushed_version"])]
    with running_server(
        model_name="penguin", model_base_path=str(serving_dir), log_dir=tmp_path
    ) as server:
        response = requests.post(
            f"{server.rest_url}/v1/models/penguin:predict",
            json={"instances": [SAMPLE_INSTANCE]},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    assert abs(sum(prediction["scores"]) - 1.0) < 1e-4


def test_diff_and_report_read_the_airflow_runs(airflow_session, tmp_path):
    first, second = airflow_session.runs()
    root = str(airflow_session.root)
    diff = beamline("diff", first["run_id"], second["run_id"], "--root", root, "--json")
    assert diff.returncode == 0, diff.stderr
    assert first["run_id"] in diff.stdout and second["run_id"] in diff.stdout
    out = tmp_path / "report.html"
    report = beamline("report", first["run_id"], "--root", root, "--out", str(out))
    assert report.returncode == 0, report.stderr
    html = out.read_text()
    assert "Pusher" in html and "CsvExampleGen" in html
