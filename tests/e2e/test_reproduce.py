"""`beamline reproduce` of the shared penguin run's pushed version: its kept data and code run
again in a new root with the recorded settings (the Tuner's choice fixed) and deterministic
ops; the diff shows no input, code or setting change and the metrics equal, or within the
tolerance the command reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from beamline.metadata import run_context as rc
from tests.e2e.conftest import CliRun, beamline, open_store


@pytest.fixture(scope="module")
def reproduced(penguin_run, tmp_path_factory) -> tuple[CliRun, dict]:
    version = re.search(r"pushed: version (\d+)", penguin_run.first.stdout).group(1)
    target = tmp_path_factory.mktemp("reproduce") / "again"
    result = beamline("reproduce", version, "--root", str(penguin_run.root), "--to",
                      str(target), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads(result.stdout)


def test_the_reproduction_reads_the_same_data_code_and_settings(penguin_run, reproduced):
    result, data = reproduced
    assert data["original_run"] == penguin_run.first.run_id
    assert data["data_version"]["same"] and data["code_version"]["same"], data
    assert data["code_version"]["files"] == []
    assert data["settings"] and all(s["same"] for s in data["settings"].values()), data
    assert "--trigger reproduce" in result.stderr and "TF_DETERMINISTIC_OPS=1" in result.stderr
    # On the Beam profile the original recorded (auto chose in-process for the small table).
    assert data["settings"]["beam"] == {"original": "direct", "reproduced": "direct",
                                        "same": True}, data["settings"]
    assert "--beam direct" in result.stderr
    # The Tuner's choice is fixed, not searched again: the reproduction has no Tuner.
    assert "hp.learning_rate" in data["settings"]
    store = open_store(Path(data["root"]))
    types = {t.id: t.name for t in store.get_execution_types()}
    ran = {types[e.type_id].rsplit(".", 1)[-1] for e in store.get_executions()}
    assert "Trainer" in ran and "Tuner" not in ran, ran


def test_the_metrics_come_back_equal_or_within_the_reported_tolerance(reproduced):
    _, data = reproduced
    metrics = data["metrics"]
    assert {m["metric"] for m in metrics} >= {"sparse_categorical_accuracy", "loss"}
    assert all(m["original"] is not None and m["reproduced"] is not None for m in metrics)
    tolerance = data["tolerance"]
    for m in metrics:
        difference = abs(m["reproduced"] - m["original"])
        assert difference <= tolerance * max(1.0, abs(m["original"])), m
    assert data["within_tolerance"]
    assert data["verdict"].startswith("reproduced exactly" if data["exact"] else
                                      "reproduced within tolerance")


def test_the_reproduction_is_a_run_of_its_own_root_with_trigger_reproduce(reproduced):
    _, data = reproduced
    store = open_store(Path(data["root"]))
    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, data["reproduced_run"])
    assert ctx is not None
    assert rc.properties_of(ctx)[rc.TRIGGER] == "reproduce"
    runs = beamline("runs", "--root", data["root"])
    assert runs.returncode == 0 and "reproduce" in runs.stdout
