"""The Chicago taxi pipeline end to end (15,002 trips shipped inside TFX), through the real CLI:
one run without the Tuner (the session's `taxi_run_started`, which the Flink tests compare with
too), its records, its push, and the pushed model served."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from beamline.settings import RootLayout
from beamline_pipelines.taxi import SAMPLE_INSTANCE
from tests.e2e.conftest import CliRun, beamline, run_output_uri
from tests.serving.support import running_server

NODES = {
    "CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform", "Trainer",
    "Evaluator", "Pusher",
}


@dataclass
class TaxiRun:
    root: Path
    run: CliRun

    @property
    def layout(self) -> RootLayout:
        return RootLayout(self.root)

    def record(self) -> dict:
        runs = beamline("runs", "--root", str(self.root), "--json")
        assert runs.returncode == 0, runs.stderr
        [record] = json.loads(runs.stdout)
        return record


@pytest.fixture(scope="module")
def taxi_run(taxi_run_started) -> TaxiRun:
    """The session's taxi run (tests/conftest.py), which the Flink tests compare with too."""
    return TaxiRun(taxi_run_started.root, taxi_run_started.result())


def test_the_taxi_run_completes_every_node_and_pushes_a_blessed_model(taxi_run):
    record = taxi_run.record()
    assert record["run_id"] == taxi_run.run.run_id
    assert (record["pipeline"], record["state"], record["failed"]) == ("taxi", "complete", 0)
    assert record["blessed"] is True, record  # accuracy above the pipeline's 0.6 bound
    [version] = [p.name for p in taxi_run.layout.serving_dir("taxi").iterdir()]
    assert record["pushed_version"] == version
    assert (taxi_run.layout.serving_dir("taxi") / version / "saved_model.pb").is_file()
    why = beamline("why", "Pusher", "--run", record["run_id"], "--root", str(taxi_run.root))
    assert why.returncode == 0, why.stderr


def test_every_expected_node_ran(taxi_run):
    ran = {
        line.split()[1]
        for line in taxi_run.run.stdout.splitlines()
        if len(line.split()) >= 3 and line.split()[2] == "executed"
    }
    assert NODES <= ran, ran
    assert "Tuner" not in ran  # --no-tune


def test_all_rows_are_split_into_train_and_eval(taxi_run):
    from beamline.lineage import payloads

    uri = run_output_uri(taxi_run.root, "taxi", taxi_run.run.run_id, "StatisticsGen", "statistics")
    counts = {
        split: payloads.feature_summaries(stats)[0]
        for split, stats in payloads.load_statistics(uri).items()
    }
    assert set(counts) == {"train", "eval"}
    assert sum(counts.values()) == 15_002 and counts["train"] > counts["eval"] > 0


def test_the_pushed_taxi_model_answers_raw_trips(taxi_run, tmp_path):
    with running_server(
        model_name="taxi",
        model_base_path=str(taxi_run.layout.serving_dir("taxi")),
        log_dir=tmp_path,
    ) as server:
        url = f"{server.rest_url}/v1/models/taxi:predict"
        answer = requests.post(url, json={"instances": [SAMPLE_INSTANCE]}, timeout=60)
        assert answer.status_code == 200, answer.text
        [prediction] = answer.json()["predictions"]
        scores = prediction["scores"] if isinstance(prediction, dict) else prediction
        assert all(0.0 <= s <= 1.0 for s in scores) and abs(sum(scores) - 1.0) < 1e-4
        missing = {k: v for k, v in SAMPLE_INSTANCE.items() if k != "fare"}
        refused = requests.post(url, json={"instances": [missing]}, timeout=60)
        assert refused.status_code == 400 and "fare" in refused.json()["error"]
