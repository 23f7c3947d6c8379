"""`beamline compile --target airflow`: bad input fails in one paragraph with nothing written, and
the worker-side secret hook fills ${secret:NAME} only at run time. (The DAG itself is compiled
and run under `airflow dags test` in tests/e2e/test_airflow_dag.py.)"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from beamline.cli import main
from beamline.deploy import airflow_dag
from beamline.deploy.secrets import SOURCES_ENV, parse_secret
from beamline.errors import ConfigError


def _compile(tmp_path, *extra: str) -> tuple[int, object]:
    out = tmp_path / "dags" / "penguin.py"
    args = ["compile", "penguin", "--target=airflow", f"--out={out}", f"--root={tmp_path}/r"]
    with pytest.raises(SystemExit) as info:
        main([*args, *extra])
    return info.value.code, out


@pytest.mark.parametrize(
    "schedule",
    ["61 * * * *", "0 3 * *", "0 0 3 * * *", "@fortnightly", "every day", "*/0 * * * *"],
)
def test_invalid_schedule_is_refused_before_any_work(schedule, tmp_path, capsys):
    code, out = _compile(tmp_path, f"--schedule={schedule}")
    assert code == 2
    err = capsys.readouterr().err
    assert f"--schedule {schedule!r}" in err and "cron" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.parent.exists()


@pytest.mark.parametrize("schedule", ["@daily", "0 3 * * 1-5", "*/15 * * * *", "none"])
def test_valid_schedules(schedule):
    expected = None if schedule == "none" else schedule
    assert airflow_dag.check_schedule(schedule) == expected


def test_airflow_not_installed_is_one_paragraph_exit_2(tmp_path, capsys, monkeypatch):
    # An entry of None in sys.modules makes `airflow` unimportable, as when it is not installed.
    monkeypatch.setitem(sys.modules, "airflow", None)
    code, out = _compile(tmp_path, "--schedule=@daily")
    assert code == 2
    err = capsys.readouterr().err
    assert "Apache Airflow, which is not installed" in err
    assert "beamline-tfx[airflow]" in err and "nothing was written" in err
    assert not out.parent.exists()


def test_other_bad_flags(tmp_path, capsys):
    cases = [
        (("--out-suffix",), "must end in .py"),
        (("--start-date=2026-13-01",), "--start-date '2026-13-01' is not a date"),
        (("--retries=-1",), "--retries -1 must be 0 or more"),
        (("--secret=DB_PASSWORD=k8s:mlmd-db/password",), "cannot mount a Kubernetes Secret"),
        (("--beam-arg=--x=${secret:UNDECLARED}",), "${secret:UNDECLARED} used in --beam-arg"),
        ((f"--data-root={tmp_path}/missing",), "does not exist"),
    ]
    for flags, message in cases:
        if flags == ("--out-suffix",):
            with pytest.raises(SystemExit) as info:
                main(["compile", "penguin", "--target=airflow", f"--out={tmp_path}/d/p.json"])
            code = info.value.code
        else:
            code, _ = _compile(tmp_path, *flags)
        err = capsys.readouterr().err
        assert code in (2, 3), (flags, err)
        assert message in err, (flags, err)
    assert not (tmp_path / "dags").exists() and not (tmp_path / "d").exists()


def test_kubeflow_still_needs_image_and_pipeline_root(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BEAMLINE_PIPELINE_ROOT", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["compile", "penguin", "--target=kubeflow", f"--out={tmp_path}/p.json"])
    assert info.value.code == 2
    assert "--target kubeflow needs --image and --pipeline-root" in capsys.readouterr().err


def test_rendered_file_holds_references_only_and_write_refuses_values(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAMLINE_TEST_TOKEN", "tok-1234567890")
    refs = (parse_secret("BEAMLINE_TEST_TOKEN=env"),)
    settings = airflow_dag.DagSettings(
        pipeline="penguin",
        root=str(tmp_path),
        data_root=str(tmp_path),
        beam_args=["--runner=DirectRunner", "--token=${secret:BEAMLINE_TEST_TOKEN}"],
        secrets={"BEAMLINE_TEST_TOKEN": "env"},
    )
    text = airflow_dag.render(settings, "beamline compile penguin --target airflow")
    out = tmp_path / "dags" / "penguin.py"
    airflow_dag.write(text, out, refs)
    written = out.read_text()
    assert "tok-1234567890" not in written and "${secret:BEAMLINE_TEST_TOKEN}" in written
    assignment = next(n for n in ast.parse(written).body if isinstance(n, ast.Assign))
    assert ast.literal_eval(assignment.value) == airflow_dag.asdict(settings)

    leaked = text.replace("${secret:BEAMLINE_TEST_TOKEN}", "tok-1234567890")
    with pytest.raises(ConfigError, match=r"value of \$BEAMLINE_TEST_TOKEN"):
        airflow_dag.write(leaked, tmp_path / "dags" / "leak.py", refs)
    assert not (tmp_path / "dags" / "leak.py").exists()


# Importing Airflow configures logging process-wide (INFO to stdout), so the hook runs against
# real Airflow objects in a child process, not in the test session.
HOOK_CHECK = """
import functools, json, os, sys
from airflow.models import DAG
from airflow.operators.python import PythonOperator
from beamline.deploy import airflow_dag
from beamline.errors import BeamlineError

def launcher(**kwargs):  # stands in for TFX's _airflow_component_launcher
    return kwargs

args = ["--runner=DirectRunner", "--token=${secret:BEAMLINE_TEST_TOKEN}"]
with DAG("hook_test", schedule=None):
    task = PythonOperator(
        task_id="t", python_callable=functools.partial(launcher, beam_pipeline_args=args)
    )
airflow_dag.resolve_secrets_hook({"BEAMLINE_TEST_TOKEN": "env"}, {"task": task})
filled = list(args)
from apache_beam.options.pipeline_options import PipelineOptions
PipelineOptions(args).get_all_options()  # logs the flags Beam does not know (--token), values too
del os.environ["BEAMLINE_TEST_TOKEN"]
try:
    airflow_dag.resolve_secrets_hook({"BEAMLINE_TEST_TOKEN": "env"}, {"task": task})
    missing = ""
except BeamlineError as exc:
    missing = str(exc)
sys.__stdout__.write("RESULT " + json.dumps({"filled": filled, "missing": missing}) + "\\n")
"""


def test_secret_hook_fills_beam_args_in_the_worker_only_and_masks_them_in_its_log(tmp_path):
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),  # importing Airflow writes airflow.cfg there
        "BEAMLINE_TEST_TOKEN": "tok-abc",
    }
    env.pop(SOURCES_ENV, None)
    proc = subprocess.run(
        [sys.executable, "-c", HOOK_CHECK], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line[len("RESULT ") :])
    assert result["filled"] == ["--runner=DirectRunner", "--token=tok-abc"]
    assert "BEAMLINE_TEST_TOKEN" in result["missing"]
    logged = proc.stdout.replace(line, "") + proc.stderr
    assert "Discarding unparseable args: ['--token=***']" in logged, logged[-3000:]
    assert "tok-abc" not in logged
