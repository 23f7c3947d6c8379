"""`beamline run --set` end to end: a 2-variant sweep over the penguin run's store shares every
upstream execution through TFX's cache, `beamline experiments` lists it as one experiment, and
`--push best` pushes the best blessed variant only.

It runs on a copy of the session's penguin store (its pushes go to a fresh serving directory),
so the cached ExampleGen, StatisticsGen, validator and Transform are the fixture's: the sweep
itself trains and evaluates twice, then pushes once.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from beamline.settings import RootLayout
from tests.e2e.conftest import CliRun, beamline, open_store
from tests.e2e.test_docs_against_a_run import SWEEP_SAMPLES, assert_sample_on_root

SHARED = ("CsvExampleGen", "StatisticsGen", "ExampleValidator", "Transform")
EXPERIMENT = "lr"  # the sweep's name, as the experiments guide's samples name it


@dataclass
class Swept:
    root: Path
    result: CliRun
    upstream_before: dict[str, int]  # completed executions per shared node in the copied store


@pytest.fixture(scope="module")
def swept(penguin_run, tmp_path_factory) -> Swept:
    root = tmp_path_factory.mktemp("sweep_root")
    shutil.copy(penguin_run.layout.metadata_path, RootLayout(root).metadata_path)
    before = {node: _completed(open_store(root), node) for node in SHARED}
    result = beamline("run", "penguin", "--root", str(root), "--no-tune",
                      "--experiment", EXPERIMENT, "--set", "learning_rate=0.003,0.1",
                      "--set", "train_steps=40", "--push", "best")
    assert result.returncode == 0, result.stdout + result.stderr
    return Swept(root, result, before)


def _completed(store, node: str, run_id: str | None = None) -> int:
    context = store.get_context_by_type_and_name("node", f"penguin.{node}")
    executions = store.get_executions_by_context(context.id)
    if run_id is not None:
        run = store.get_context_by_type_and_name("pipeline_run", run_id)
        in_run = {e.id for e in store.get_executions_by_context(run.id)}
        executions = [e for e in executions if e.id in in_run]
    return sum(e.last_known_state == e.COMPLETE for e in executions)


def _sweep_runs(root: Path) -> list[dict]:
    listed = beamline("experiments", "penguin", "--root", str(root), "--experiment", EXPERIMENT,
                      "--json", "--sort", "set.learning_rate")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _variants(root: Path) -> list[dict]:
    return [r for r in _sweep_runs(root) if r["version"] is None]


def test_the_variants_share_every_upstream_execution(swept):
    store = open_store(swept.root)
    first, second = (r["run"] for r in _variants(swept.root))
    for node in SHARED:
        # The store's own executions serve the sweep (the fixture's, unless this tree's code
        # changed since it ran: then the first variant runs the node once, for both).
        assert _completed(store, node) - swept.upstream_before[node] <= 1, node
        assert _completed(store, node, second) == 0, node
    for node in ("Trainer", "Evaluator"):
        assert _completed(store, node, first) == _completed(store, node, second) == 1, node
    out = swept.result.stdout
    assert "experiment 'lr', run 2 of 2: learning_rate=0.1 train_steps=40" in out
    assert "beamline experiments penguin --experiment lr" in out


def test_experiments_lists_the_sweep_with_its_settings_and_metrics(swept):
    rows = _variants(swept.root)
    assert [r["overrides"] for r in rows] == [
        {"learning_rate": 0.003, "train_steps": 40}, {"learning_rate": 0.1, "train_steps": 40}]
    assert {r["experiment"] for r in rows} == {"lr"}
    for row in rows:
        assert row["state"] == "complete" and row["blessed"] is not None
        assert 0 < row["sparse_categorical_accuracy"] <= 1
        assert row["epochs"] == 10  # 40 steps: 10 epochs of 4, each in its history
        assert row["trials"] == []  # --no-tune
        assert row["hyperparameters"] == {"learning_rate": row["set.learning_rate"]}


def test_push_best_pushes_the_best_blessed_variant_and_nothing_else(swept):
    store = open_store(swept.root)
    rows = _sweep_runs(swept.root)
    [pushed] = [r for r in rows if r["version"]]
    [line] = [x for x in swept.result.stdout.splitlines() if "--push best: run " in x]
    best = next(r for r in rows if r["run"] == line.split("--push best: run ")[1].split()[0])
    blessed = [r for r in _variants(swept.root) if r["blessed"]]
    metric = "sparse_categorical_accuracy"
    assert best[metric] == max(r[metric] for r in blessed)
    assert pushed["overrides"] == best["overrides"] and pushed["experiment"] == "lr"
    for variant in _variants(swept.root):
        assert _completed(store, "Pusher", variant["run"]) == 0
    # The push run trained nothing: only its Pusher ran.
    assert _completed(store, "Pusher", pushed["run"]) == 1
    assert _completed(store, "Trainer", pushed["run"]) == 0
    assert _completed(store, "Evaluator", pushed["run"]) == 0
    versions = [p.name for p in RootLayout(swept.root).serving_dir("penguin").iterdir()
                if p.name.isdigit()]
    assert versions == [pushed["version"]]


@pytest.mark.parametrize("sample", SWEEP_SAMPLES, ids=lambda sample: str(sample.shown))
def test_a_documented_experiment_sample_starts_as_the_sweep_s_real_output(sample, swept):
    assert f"--experiment {EXPERIMENT}" in " ".join(sample.shown.args), (
        f"{sample.shown}: the docs list an experiment this test does not sweep")
    assert_sample_on_root(sample, swept.root)


def test_bad_sets_stop_before_any_run(swept):
    root = swept.root
    runs = len(open_store(root).get_contexts_by_type("pipeline_run"))
    unknown = beamline("run", "penguin", "--root", str(root), "--set", "learning_rat=0.1")
    assert unknown.returncode == 2
    assert "Did you mean 'learning_rate'?" in unknown.stderr
    assert "hyperparameters layers (an integer at least 1)" in unknown.stderr
    empty = beamline("run", "penguin", "--root", str(root), "--set", "units=")
    assert empty.returncode == 2 and "gives units no value" in empty.stderr
    assert len(open_store(root).get_contexts_by_type("pipeline_run")) == runs
