"""The loop on Apache Airflow: `beamline compile --target airflow --loop`, run by
`airflow dags test` (SQLite Airflow database in a temporary AIRFLOW_HOME), against a real served
penguin model, real request logs and a real MLMD store; read back with `beamline runs/lineage`.

One module fixture, two pipeline runs (no tuning), both Airflow DAG runs:
- the plain DAG (no --loop) trains on span 1 and pushes; a server logs held-out traffic;
- the DAG recompiled with --loop, for a window ending after that traffic: no drift, no new data,
  so loop_decide short-circuits and every pipeline task is skipped;
- span 2 lands (shifted) and shifted traffic is sent: loop_decide decides to retrain, the
  pipeline tasks run on span 2 and loop_conclude records the push on the trigger;
- the same DAG run (same logical date, same window) again: decided already, all skipped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import CliRun, beamline, penguin_rows, write_csv
from tests.e2e.test_airflow_dag import _airflow
from tests.e2e.test_loop import (
    _send,
    _shifted,
    _shifted_csv_row,
    logging_server,
    recorded_triggers,
)
from tests.e2e.test_monitor import _held_out_rows, _iso, _next_second

START_DATE = "2026-01-01"
PIPELINE_TASKS = (
    "CsvExampleGen", "ImportSchemaGen", "StatisticsGen", "Transform", "ExampleValidator",
    "Trainer", "baseline_resolver", "Evaluator", "Pusher",
)  # fmt: skip


@dataclass
class DagRun:
    run_id: str  # Airflow's
    proc: subprocess.CompletedProcess
    states: dict[str, str]  # task id -> state, read from Airflow's database after the run

    @property
    def log(self) -> str:
        return self.proc.stdout + self.proc.stderr


@dataclass
class AirflowLoop:
    root: Path
    dag_file: Path
    compiled: CliRun
    dag_runs: dict[str, DagRun] = field(default_factory=dict)
    triggers_after: dict[str, list[dict]] = field(default_factory=dict)
    run_ids_after: dict[str, list[str]] = field(default_factory=dict)

    def runs(self) -> list[dict]:
        listed = beamline("runs", "--root", str(self.root), "--json")
        assert listed.returncode == 0, listed.stderr
        return json.loads(listed.stdout)

    def triggers(self) -> list[dict]:
        return recorded_triggers(self.root)

    def first_output_uri(self, node: str, key: str) -> str:
        """The plain DAG's first run's output, read before any other run wrote one (TFX's legacy
        Airflow launcher records runs as `run` contexts, which run_output_uri does not read)."""
        assert list(self.dag_runs) == ["train"], "read the first run's outputs before the next"
        [uri] = (self.root / "pipelines" / "penguin" / node / key).iterdir()
        return str(uri)


def _task_states(home: Path, run_id: str) -> dict[str, str]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "select task_id, state from task_instance where dag_id = 'penguin' and run_id = ?",
            (run_id,),
        ).fetchall()
    return {task: str(state) for task, state in rows}


@pytest.fixture(scope="module")
def airflow_loop(tmp_path_factory) -> AirflowLoop:
    base = tmp_path_factory.mktemp("airflow_loop")
    root, data, logs = base / "root", base / "data", base / "requests"
    dags, home = base / "dags", base / "airflow_home"
    dag_file = dags / "penguin.py"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # Parsing the DAG imports TensorFlow and TFX: far more than Airflow's 30 s default.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "900",
    }
    header, rows = penguin_rows()
    write_csv(data / "span-1" / "penguins.csv", header, rows)
    common = ["--start-date", START_DATE, "--no-tune", "--root", str(root), "--out", str(dag_file)]
    plain = beamline(
        "compile", "penguin", "--target", "airflow", "--data-root", str(data), *common
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    migrated = _airflow(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]

    def dag_test(step: str, until: int) -> DagRun:
        date = _iso(until)
        proc = _airflow(env, "dags", "test", "penguin", date)
        run_id = f"manual__{date.replace('Z', '+00:00')}"
        run = DagRun(run_id, proc, _task_states(home, run_id))
        errors = [line for line in run.log.splitlines() if " ERROR - " in line or "Error:" in line]
        assert proc.returncode == 0, "\n".join(errors[-40:]) + "\n...\n" + run.log[-4000:]
        return run

    first = dag_test("train", _next_second())
    serving = root / "serving" / "penguin"
    s = AirflowLoop(root, dag_file, plain, {"train": first})
    s.compiled = beamline(
        "compile", "penguin", "--target", "airflow", "--loop", "--data", str(data),
        "--requests", str(logs), "--retrain-on", "new-span", *common,
    )  # fmt: skip
    assert s.compiled.returncode == 0, s.compiled.stdout + s.compiled.stderr
    held_out = _held_out_rows(s)
    with logging_server(serving, logs, base) as server:
        url = f"{server.rest_url}/v1/models/penguin"
        _send(url, held_out)
        s.dag_runs["normal"] = dag_test("normal", _next_second())
        s.triggers_after["normal"] = s.triggers()
        s.run_ids_after["normal"] = [r["run_id"] for r in s.runs()]
        write_csv(data / "span-2" / "penguins.csv", header, [_shifted_csv_row(r) for r in rows])
        _send(url, _shifted(held_out))
        drift_until = _next_second()
    s.dag_runs["drift"] = dag_test("drift", drift_until)
    s.triggers_after["drift"] = s.triggers()
    s.dag_runs["again"] = dag_test("again", drift_until)
    s.triggers_after["again"] = s.triggers()
    return s


def test_the_loop_dag_starts_with_the_decision_and_ends_with_the_conclusion(airflow_loop):
    out = airflow_loop.compiled.stdout
    assert "DAG 'penguin' with 11 tasks" in out, out
    assert "loop_decide" in out and "loop_conclude" in out and "gated by the loop" in out
    text = airflow_loop.dag_file.read_text()
    assert "add_loop_tasks(build_dag(SETTINGS), SETTINGS, LOOP)" in text
    assert "'policy': 'new-span'" in text


def test_no_retrain_decision_skips_every_pipeline_task(airflow_loop):
    run = airflow_loop.dag_runs["normal"]
    assert run.states["loop_decide"] == "success", run.states
    for task in (*PIPELINE_TASKS, "loop_conclude"):
        assert run.states[task] == "skipped", (task, run.states)
    [trigger] = airflow_loop.triggers_after["normal"]
    assert trigger["decision"] == "nothing" and trigger["run_id"] == ""
    assert trigger["reason"] == "no drift; no new data since span 1"
    assert trigger["state"] == 3  # COMPLETE at once
    # No Airflow run of the pipeline was recorded for it: only the training DAG run.
    assert airflow_loop.run_ids_after["normal"] == [
        f"penguin.{airflow_loop.dag_runs['train'].run_id}"
    ]


def test_retrain_decision_runs_the_pipeline_on_the_new_span_and_records_the_trigger(
    airflow_loop,
):
    run = airflow_loop.dag_runs["drift"]
    for task in ("loop_decide", *PIPELINE_TASKS, "loop_conclude"):
        assert run.states[task] == "success", (task, run.states)
    [_, trigger] = airflow_loop.triggers_after["drift"]
    assert trigger["decision"] == "retrain" and trigger["kind"] == "drift"
    assert trigger["run_id"] == f"penguin.{run.run_id}" and trigger["span"] == "2"
    assert trigger["state"] == 3, trigger  # COMPLETE: concluded by loop_conclude
    assert "blessed and pushed as version" in trigger["outcome"], trigger
    [loop_run] = [r for r in airflow_loop.runs() if r["run_id"] == trigger["run_id"]]
    assert loop_run["trigger"] == "drift" and loop_run["trigger_execution_id"] == trigger["id"]
    assert loop_run["span"] == "2" and loop_run["state"] == "complete"
    assert loop_run["pushed_version"] and loop_run["pushed_version"] in trigger["outcome"]
    # loop_conclude applied the push policy (live) as Beamline's runner does after a push.
    version = int(loop_run["pushed_version"])
    assert f"applied the push policy live: stable -> {version}" in run.log, run.log[-3000:]
    labels = beamline("labels", "penguin", "--root", str(airflow_loop.root), "--json")
    assert json.loads(labels.stdout)["labels"] == {"stable": version}, labels.stdout
    models_config = (airflow_loop.root / "serving" / "models.config").read_text()
    assert 'key: "stable"' in models_config and f"value: {version}" in models_config
    # ExampleGen read the decided span through the range_config templated from loop_decide.
    with sqlite3.connect(airflow_loop.root / "metadata.sqlite") as db:
        [(range_config,)] = db.execute(
            "select p.string_value from Execution e join Type t on e.type_id = t.id "
            "join ExecutionProperty p on p.execution_id = e.id "
            "join Association a on a.execution_id = e.id join Context c on c.id = a.context_id "
            "where t.name like '%ExampleGen' and p.name = 'range_config' and c.name = ?",
            (trigger["run_id"],),
        ).fetchall()
    assert json.loads(range_config)["static_range"] == {
        "start_span_number": 2, "end_span_number": 2
    }
    table = beamline("runs", "--root", str(airflow_loop.root))
    assert table.stdout.splitlines()[0].split().count("TRIGGER") == 1, table.stdout
    assert any(trigger["run_id"] in line and "drift" in line for line in table.stdout.splitlines())


def test_lineage_of_the_retrained_version_names_the_trigger(airflow_loop):
    [trigger] = [t for t in airflow_loop.triggers_after["drift"] if t["decision"] == "retrain"]
    [loop_run] = [r for r in airflow_loop.runs() if r["run_id"] == trigger["run_id"]]
    lineage = beamline(
        "lineage", str(loop_run["pushed_version"]), "--root", str(airflow_loop.root),
        "--no-payloads",
    )  # fmt: skip
    assert lineage.returncode == 0, lineage.stderr
    [line] = [x for x in lineage.stdout.splitlines() if x.startswith("Triggered by")]
    assert line.startswith(f"Triggered by monitoring #{trigger['monitor_execution_id']}: ")
    assert "body_mass_g JSD" in line and "span 2 is newer than span 1" in line
    assert f"loop trigger #{trigger['id']}" in line


def test_the_same_window_again_skips_everything_and_records_nothing(airflow_loop):
    run = airflow_loop.dag_runs["again"]
    assert run.states["loop_decide"] == "success", run.states
    for task in (*PIPELINE_TASKS, "loop_conclude"):
        assert run.states[task] == "skipped", (task, run.states)
    assert airflow_loop.triggers_after["again"] == airflow_loop.triggers_after["drift"]
    assert "was decided already by trigger" in run.log
