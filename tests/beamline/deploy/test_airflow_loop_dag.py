"""`beamline compile --target airflow --loop`: the written DAG's shape (the loop's decision first,
short-circuiting every pipeline task; the conclusion last, after all of them; ExampleGen reading
the decided span) and bad loop flags, refused in one paragraph with nothing written. (The DAG
runs under `airflow dags test` in tests/e2e/test_airflow_loop.py.)"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from beamline.cli import main
from beamline.loop.airflow import RANGE_CONFIG_TEMPLATE, range_config_json
from tests.e2e.conftest import penguin_rows, write_csv

PIPELINE_TASKS = {
    "CsvExampleGen", "ImportSchemaGen", "StatisticsGen", "Transform", "ExampleValidator",
    "Trainer", "baseline_resolver", "Evaluator", "Pusher",
}  # fmt: skip

# Importing Airflow configures logging process-wide, so the DAG file is loaded in a child.
SHAPE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("dag_file", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = module.dag
tasks = {}
for t in dag.tasks:
    props = (getattr(t, "op_kwargs", None) or {}).get("exec_properties") or {}
    tasks[t.task_id] = {
        "type": type(t).__name__,
        "upstream": sorted(t.upstream_task_ids),
        "downstream_all": sorted(t.get_flat_relative_ids(upstream=False)),
        "trigger_rule": str(t.trigger_rule),
        "range_config": props.get("range_config"),
        "ignore_downstream_trigger_rules": getattr(t, "ignore_downstream_trigger_rules", None),
    }
import types
from tensorflow.python.autograph.core import config
probe = types.ModuleType("tf_keras")
skipped = any(r.get_action(probe) == config.Action.DO_NOT_CONVERT for r in config.CONVERSION_RULES)
shape = {"dag_id": dag.dag_id, "roots": sorted(t.task_id for t in dag.roots),
         "leaves": sorted(t.task_id for t in dag.leaves), "tasks": tasks,
         "tf_keras_left_to_autograph": not skipped}
sys.__stdout__.write("SHAPE " + json.dumps(shape) + "\\n")
"""


@pytest.fixture(scope="module")
def loop_dag(tmp_path_factory):
    base = tmp_path_factory.mktemp("loop_dag")
    header, rows = penguin_rows()
    write_csv(base / "data" / "span-1" / "penguins.csv", header, rows[:40])
    write_csv(base / "data" / "span-2" / "penguins.csv", header, rows[40:80])
    out = base / "dags" / "penguin.py"
    compiled = subprocess.run(
        [
            sys.executable, "-m", "beamline", "compile", "penguin", "--target", "airflow",
            "--loop", "--data", str(base / "data"), "--requests", str(base / "requests"),
            "--retrain-on", "new-span-if-drift", "--push-policy", "canary",
            "--threshold", "body_mass_g=0.2",
            "--max-invalid-fraction", "0.05", "--no-tune", "--root", str(base / "root"),
            "--out", str(out),
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    # Only `warning: ` lines on stderr, as the exit-code page promises: Airflow's import warns
    # about its own deprecated config key, which beamline.quiet filters.
    noise = [line for line in compiled.stderr.splitlines() if not line.startswith("warning: ")]
    assert noise == [], compiled.stderr
    loaded = subprocess.run(
        [sys.executable, "-c", SHAPE, str(out)], capture_output=True, text=True, timeout=900
    )
    [line] = [x for x in loaded.stdout.splitlines() if x.startswith("SHAPE ")]
    return base, out, compiled.stdout, json.loads(line[len("SHAPE ") :])


def test_the_decision_is_the_only_root_and_gates_every_pipeline_task(loop_dag):
    _, _, stdout, shape = loop_dag
    assert shape["dag_id"] == "penguin" and shape["roots"] == ["loop_decide"]
    decide = shape["tasks"]["loop_decide"]
    assert decide["type"] == "ShortCircuitOperator"
    assert decide["ignore_downstream_trigger_rules"] is True
    assert set(decide["downstream_all"]) == PIPELINE_TASKS | {"loop_conclude"}
    assert set(shape["tasks"]) == PIPELINE_TASKS | {"loop_decide", "loop_conclude"}
    assert "DAG 'penguin' with 11 tasks" in stdout and "gated by the loop" in stdout


def test_the_conclusion_waits_for_every_pipeline_task_whatever_its_outcome(loop_dag):
    _, _, _, shape = loop_dag
    conclude = shape["tasks"]["loop_conclude"]
    assert shape["leaves"] == ["loop_conclude"]
    assert set(conclude["upstream"]) == PIPELINE_TASKS
    assert conclude["trigger_rule"] == "all_done"


def test_a_process_that_parsed_the_dag_does_not_transpile_tf_keras(loop_dag):
    """Every Airflow task process parses the DAG file first: it then leaves tf_keras's code to
    TensorFlow unconverted, as a local run does (beamline/runner/local.py), so a Trainer task's
    first model does not pay AutoGraph's transpiling of the library."""
    _, _, _, shape = loop_dag
    assert shape["tf_keras_left_to_autograph"] is False


def test_example_gen_reads_the_decided_span_and_no_other_task_is_templated(loop_dag):
    _, _, _, shape = loop_dag
    templated = {t for t, v in shape["tasks"].items() if v["range_config"] == RANGE_CONFIG_TEMPLATE}
    assert templated == {"CsvExampleGen"}


def test_the_dag_file_holds_the_loop_flags_as_plain_values(loop_dag):
    base, out, _, _ = loop_dag
    text = out.read_text()
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(text).body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
    }
    loop = assigned["LOOP"]
    assert loop["data"] == str((base / "data").resolve())
    assert loop["requests"] == str((base / "requests").resolve())
    assert loop["policy"] == "new-span-if-drift" and loop["thresholds"] == {"body_mass_g": 0.2}
    assert loop["max_invalid_fraction"] == 0.05 and loop["push_policy"] == "canary"
    assert assigned["SETTINGS"]["data_root"] == loop["data"]
    assert "dag = add_loop_tasks(build_dag(SETTINGS), SETTINGS, LOOP)" in text


def test_range_config_pins_one_span_as_tfx_reads_it():
    from tfx.proto import range_config_pb2
    from tfx.utils import proto_utils

    parsed = proto_utils.json_to_proto(range_config_json(2), range_config_pb2.RangeConfig())
    assert parsed.static_range.start_span_number == parsed.static_range.end_span_number == 2
    assert range_config_json(-1) == ""  # no spans: ExampleGen reads its latest input


def _compile(tmp_path, *flags: str) -> int:
    out = tmp_path / "dags" / "penguin.py"
    with pytest.raises(SystemExit) as info:
        main(["compile", "penguin", f"--out={out}", f"--root={tmp_path}/r", *flags])
    return info.value.code


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--target=vertex", "--loop"), "--loop is for --target airflow only"),
        (("--target=kubeflow", "--requests=logs"), "--requests is for --target airflow only"),
        (("--target=airflow", "--data=DATA"), "--data is a --loop flag: add --loop"),
        (("--target=airflow", "--push-policy=canary"),
         "--push-policy canary is a --loop flag: add --loop"),
        (("--target=vertex", "--push-policy=canary"),
         "--push-policy canary is for --target airflow only"),
        (("--target=airflow", "--loop", "--data=DATA"), "--loop needs --requests"),
        (("--target=airflow", "--loop", "--requests=logs"), "--loop needs --data"),
        (
            ("--target=airflow", "--loop", "--data=DATA/missing", "--requests=logs"),
            "is not a directory",
        ),
        (
            ("--target=airflow", "--loop", "--data=DATA", "--data-root=DATA/span-1",
             "--requests=logs"),
            "--data-root DATA/span-1 and --data DATA differ",
        ),
        (
            ("--target=airflow", "--loop", "--data=DATA", "--requests=logs", "--threshold=x"),
            "--threshold 'x' is not FEATURE=VALUE",
        ),
    ],
)
def test_bad_loop_flags_are_one_paragraph_and_write_nothing(flags, message, tmp_path, capsys,
                                                            monkeypatch):
    (tmp_path / "DATA" / "span-1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    code = _compile(tmp_path, *flags)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "dags").exists()
