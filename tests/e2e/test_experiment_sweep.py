"""`beamline run --set` end to end: a 2x2 sweep (learning_rate x units) over the penguin run's
store, two variants at a time (`--jobs 2`), shares every upstream execution through TFX's cache,
`beamline experiments` lists it as one experiment, and `--push best` pushes the variant the
table ranks first among the blessed ones, and only that.

It runs on a copy of the session's penguin store (its pushes go to a fresh serving directory),
so the cached ExampleGen, StatisticsGen, validator and Transform are the fixture's: the sweep
itself trains and evaluates four times (`--no-tune`, 40 steps), then pushes once.
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
GRID = [{"learning_rate": lr, "units": units, "train_steps": 40}
        for lr in (0.003, 0.1) for units in (8, 16)]
METRIC = "sparse_categorical_accuracy"


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
                      "--set", "units=8,16", "--set", "train_steps=40", "--jobs", "2",
                      "--push", "best")
    assert result.returncode == 0, result.stdout + result.stderr
    return Swept(root, result, before)


def _executions(store, node: str, run_id: str | None = None) -> list:
    context = store.get_context_by_type_and_name("node", f"penguin.{node}")
    executions = store.get_executions_by_context(context.id)
    if run_id is not None:
        run = store.get_context_by_type_and_name("pipeline_run", run_id)
        in_run = {e.id for e in store.get_executions_by_context(run.id)}
        executions = [e for e in executions if e.id in in_run]
    return [e for e in executions if e.last_known_state == e.COMPLETE]


def _completed(store, node: str, run_id: str | None = None) -> int:
    return len(_executions(store, node, run_id))


def _inputs(store, execution) -> set[int]:
    return {e.artifact_id for e in store.get_events_by_execution_ids([execution.id])
            if e.type == e.INPUT}


def _experiments(root: Path, *args: str) -> list[dict]:
    listed = beamline("experiments", "penguin", "--root", str(root), "--experiment", EXPERIMENT,
                      "--json", *args)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _sweep_runs(root: Path) -> list[dict]:
    return _experiments(root, "--sort", "set.learning_rate")


def _variants(root: Path) -> list[dict]:
    return [r for r in _sweep_runs(root) if r["version"] is None]


def test_the_variants_share_every_upstream_execution(swept):
    store = open_store(swept.root)
    runs = [r["run"] for r in _variants(swept.root)]
    assert len(runs) == 4
    trainers = [e for run in runs for e in _executions(store, "Trainer", run)]
    assert len(trainers) == 4 and len(_executions(store, "Evaluator")) >= 4
    for node in SHARED:
        # One execution for the whole sweep: the store's own serves it (the fixture's, unless
        # this tree's code changed since it ran: then the first variant runs it, for all four).
        new = _completed(store, node) - swept.upstream_before[node]
        assert new <= 1, node
        assert sum(_completed(store, node, run) for run in runs) == new, node
    # ... and the four Trainers read the same artifacts: one transform graph, one set of examples.
    assert len({frozenset(_inputs(store, e)) for e in trainers}) == 1
    out = swept.result.stdout
    assert "experiment 'lr', run 4 of 4" in out
    assert "(in a child process)" in out  # --jobs 2: some variants ran beside another
    assert "beamline experiments penguin --experiment lr" in out


def _read_as(store, execution, key: str) -> set[int]:
    return {e.artifact_id for e in store.get_events_by_execution_ids([execution.id])
            if e.type == e.INPUT and e.path.steps and e.path.steps[0].key == key}


def test_every_variant_is_judged_against_the_model_from_before_the_sweep(swept):
    # Not against a sibling blessed earlier in the sweep: a variant's blessing must not depend
    # on the order the variants ran in.
    store = open_store(swept.root)
    runs = [r["run"] for r in _variants(swept.root)]
    evaluators = [e for run in runs for e in _executions(store, "Evaluator", run)]
    assert len(evaluators) == 4
    baselines = {frozenset(_read_as(store, e, "baseline_model")) for e in evaluators}
    assert len(baselines) == 1
    [baseline] = baselines
    variant_models = set().union(*(_read_as(store, e, "model") for e in evaluators))
    assert len(variant_models) == 4 and len(baseline) == 1 and not baseline & variant_models


def test_experiments_lists_the_sweep_with_its_settings_and_metrics(swept):
    rows = _variants(swept.root)
    assert sorted((r["overrides"] for r in rows),
                  key=lambda o: (o["learning_rate"], o["units"])) == GRID
    assert {r["experiment"] for r in rows} == {"lr"}
    for row in rows:
        assert row["state"] == "complete" and row["blessed"] is not None
        assert 0 < row[METRIC] <= 1
        assert row["epochs"] == 10  # 40 steps: 10 epochs of 4, each in its history
        history = row["history"]
        assert history["epochs"] == 10
        assert all(len(values) == 10 for values in history["metrics"].values())
        assert {"loss", "val_loss"} <= set(history["metrics"])
        assert row["trials"] == []  # --no-tune
        assert row["hyperparameters"] == {"learning_rate": row["set.learning_rate"],
                                          "units": row["set.units"]}


def test_where_and_sort_select_and_order_the_variants(swept):
    chosen = _experiments(swept.root, "--where", "set.units = 16 and version = none",
                          "--sort", "-set.learning_rate")
    assert [(r["set.learning_rate"], r["set.units"]) for r in chosen] == [(0.1, 16), (0.003, 16)]
    by_metric = _experiments(swept.root, "--where", "version = none", "--sort", f"-{METRIC}")
    assert len(by_metric) == 4
    assert [r[METRIC] for r in by_metric] == sorted((r[METRIC] for r in by_metric),
                                                    reverse=True)


def test_push_best_pushes_the_variant_the_table_ranks_first_and_nothing_else(swept):
    store = open_store(swept.root)
    rows = _sweep_runs(swept.root)
    [pushed] = [r for r in rows if r["version"]]
    ranked = _experiments(swept.root, "--where", "blessed and version = none",
                          "--sort", f"-{METRIC}")
    assert ranked, "no variant was blessed"
    assert pushed["overrides"] == ranked[0]["overrides"] and pushed["experiment"] == "lr"
    [line] = [x for x in swept.result.stdout.splitlines() if "--push best: run " in x]
    assert line.split("--push best: run ")[1].split()[0] == ranked[0]["run"]
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

    def refused(*sets: str) -> str:
        result = beamline("run", "penguin", "--root", str(root), "--no-tune", *sets)
        assert result.returncode == 2, result.stdout + result.stderr
        return result.stderr

    unknown = refused("--set", "learning_rat=0.1,0.3")
    assert "Did you mean 'learning_rate'?" in unknown
    assert "hyperparameters layers (an integer at least 1)" in unknown
    # A bad value in the grid's last variant stops the sweep before its first.
    bad = refused("--set", "learning_rate=0.1,0", "--set", "units=8,16")
    assert "learning_rate=0 is not valid; learning_rate is a hyperparameter and takes a " \
        "number above 0" in bad
    assert "gives units no value" in refused("--set", "units=")
    assert "--jobs 0: a sweep runs at least one variant" in refused(
        "--set", "units=8,16", "--jobs", "0")
    assert len(open_store(root).get_contexts_by_type("pipeline_run")) == runs
