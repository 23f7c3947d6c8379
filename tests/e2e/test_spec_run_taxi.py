"""Taxi compiled for Kubeflow and run here by `beamline run --spec --as kubeflow`, alongside the
session's `beamline run taxi --no-tune` (taxi_run_started): the spec passes Kubeflow's rules
with no resolver task, and its run pushes a blessed model that answers the held-out trips as
the model `beamline run` pushed from the same rows does."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from beamline.deploy import spec_rules
from tests.e2e.conftest import CliRun, beamline, run_output_uri, started
from tests.e2e.spec_support import SpecRun, assert_same_predictions, serialized_examples


@dataclass
class TaxiSpecRun:
    spec: dict
    run: SpecRun
    local: CliRun
    local_root: Path


@pytest.fixture(scope="module")
def taxi_spec_run(taxi_run_started, tmp_path_factory) -> TaxiSpecRun:
    base = tmp_path_factory.mktemp("taxi_spec")
    spec_file = base / "taxi.json"
    compiled = beamline("compile", "taxi", "--target", "kubeflow", "--image",
                        "registry.example/beamline:test", "--pipeline-root", "gs://bucket/root",
                        "--no-tune", "--out", str(spec_file))
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    # While the session's `beamline run taxi` (started when first asked for) runs too.
    with started(base / "root", "run", "--spec", str(spec_file), "--as", "kubeflow") as spec_run:
        run = SpecRun(spec_run.root, "taxi", spec_run.result())
    local = taxi_run_started.result()
    return TaxiSpecRun(json.loads(spec_file.read_text()), run, local, taxi_run_started.root)


def test_the_taxi_spec_passes_kubeflows_rules_without_a_resolver(taxi_spec_run):
    spec = taxi_spec_run.spec["pipelineSpec"]
    assert spec_rules.check(spec, "kubeflow") == []
    executors = spec["deploymentSpec"]["executors"].values()
    assert all("resolver" not in e for e in executors)
    assert "baseline_from_serving" in spec["root"]["dag"]["tasks"]


def test_the_spec_run_pushes_a_blessed_model_that_answers_like_beamline_runs(taxi_spec_run):
    run, local = taxi_spec_run.run, taxi_spec_run.local
    assert run.output("Evaluator", "blessing")["metadata"]["blessed"] == 1
    pushed = run.pushed_version()
    assert (pushed / "saved_model.pb").is_file()
    version = re.search(r"pushed: version (\d+)", local.stdout)
    assert version, local.stdout
    reference = taxi_spec_run.local_root / "serving" / "taxi" / version.group(1)
    examples = run.task_dir("CsvExampleGen") / "examples"
    local_examples = Path(run_output_uri(taxi_spec_run.local_root, "taxi", local.run_id,
                                         "CsvExampleGen", "examples"))
    # The same trips, split the same way; the models then differ only as two runs of one
    # pipeline do (spec_support's tolerances say why).
    assert serialized_examples(examples, "eval") == serialized_examples(local_examples, "eval")
    assert_same_predictions(pushed, reference, serialized_examples(examples, "eval"))
