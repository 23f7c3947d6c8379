"""`beamline experiments` over a real SQLite MLMD store written with MLMD's API as TFX records
runs (contexts, executions, INPUT/OUTPUT events), with the files runs leave beside it: TFMA
metrics, a Tuner's trial records, best_hyperparameters.txt, the Trainer's history.json.

Run "a": an experiment with an override; its Tuner searched (two trials, one failed), its model
was evaluated (overall and per island), blessed and pushed, and holds `stable`. Run "b": the
Trainer imported a's hyperparameters (no search), evaluated lower, not blessed, nothing pushed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from beamline.cli import main
from beamline.errors import ConfigError
from beamline.experiments import table
from beamline.experiments.text import render
from beamline.experiments.where import WhereError
from beamline.lineage.access import open_graph_and_store
from beamline.metadata import labels as label_history
from beamline.metadata import run_context as rc
from tests.beamline.lineage.test_trials import (
    best_hyperparameters,
    trial_history,
    trial_state,
    write_project,
    write_trial_histories,
)
from tests.beamline.ui import writer

PIPELINE = "penguin"
FINGERPRINT = "split:single_split,num_files:1,total_bytes:13240,xor_checksum:17,sum_checksum:17"
TYPES = {
    "ExampleGen": "tfx.components.example_gen.csv_example_gen.component.CsvExampleGen",
    "Tuner": "tfx.components.tuner.component.Tuner",
    "Importer": "tfx.dsl.components.common.importer.Importer",
    "Trainer": "tfx.components.trainer.component.Trainer",
    "Evaluator": "tfx.components.evaluator.component.Evaluator",
    "Pusher": "tfx.components.pusher.component.Pusher",
}


class Writer:
    def __init__(self, store, root: Path):
        from ml_metadata.proto import metadata_store_pb2 as pb

        self.pb, self.store, self.root = pb, store, root
        self.pipeline = self._context(rc.PIPELINE_CONTEXT, PIPELINE)

    def _type(self, put, message, name):
        return put(message(name=name), can_add_fields=True, can_omit_fields=True)

    def _context(self, type_name: str, name: str, **custom):
        found = self.store.get_context_by_type_and_name(type_name, name)
        if found is not None:
            return found
        ctx = self.pb.Context(
            type_id=self._type(self.store.put_context_type, self.pb.ContextType, type_name),
            name=name,
        )
        for key, value in custom.items():
            ctx.custom_properties[key].string_value = value
        [ctx.id] = self.store.put_contexts([ctx])
        return ctx

    def run(self, run_id: str, **custom):
        run = self._context(rc.RUN_CONTEXT, run_id, **{
            rc.STATE: rc.RunState.COMPLETE, **custom,
        })
        self.store.put_parent_contexts(
            [self.pb.ParentContext(child_id=run.id, parent_id=self.pipeline.id)]
        )
        return run

    def artifact(self, type_name: str, uri: Path | str, **custom):
        pb = self.pb
        art = pb.Artifact(
            type_id=self._type(self.store.put_artifact_type, pb.ArtifactType, type_name),
            uri=str(uri), state=pb.Artifact.LIVE,
        )
        for key, value in custom.items():
            if isinstance(value, int):
                art.custom_properties[key].int_value = value
            else:
                art.custom_properties[key].string_value = value
        [art.id] = self.store.put_artifacts([art])
        return art

    def execution(self, run, node: str, inputs=None, outputs=None, **props):
        pb = self.pb
        ex = pb.Execution(
            type_id=self._type(self.store.put_execution_type, pb.ExecutionType, TYPES[node]),
            last_known_state=pb.Execution.COMPLETE,
        )
        for key, value in props.items():
            ex.custom_properties[key].string_value = value
        pairs = []
        for kind, given in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
            for key, art in (given or {}).items():
                event = pb.Event(type=kind)
                event.path.steps.add().key = key
                event.path.steps.add().index = 0
                pairs.append((art, event))
        node_ctx = self._context(rc.NODE_CONTEXT, f"{PIPELINE}.{node}")
        self.store.put_execution(ex, pairs, [self.pipeline, run, node_ctx])


@pytest.fixture
def root(tmp_path) -> Path:
    from beamline.metadata.connection import open_store, sqlite_config

    root = tmp_path / "root"
    files = tmp_path / "files"
    store = open_store(sqlite_config(root / "metadata.sqlite"))
    w = Writer(store, root)

    # Run a: searched, blessed, pushed, labelled.
    run = w.run("a", **{rc.EXPERIMENT: "lr-sweep",
                        rc.OVERRIDES: json.dumps({"learning_rate": 0.03})})
    examples = w.artifact("Examples", files / "examples", span=3, input_fingerprint=FINGERPRINT)
    w.execution(run, "ExampleGen", outputs={"examples": examples}, input_base=str(files))
    results = files / "tuner_results"
    write_project(results / "keras_tuner", [
        trial_state("0", {"units": 32, "learning_rate": 0.03}, score=0.97, val_acc=(0.97,)),
        trial_state("1", {"units": 8, "learning_rate": 0.01}, status="FAILED", message="boom"),
    ], search={"objective": "val_auc", "direction": "max"})
    write_trial_histories(results / "keras_tuner", {"0": trial_history((0.9, 0.97))})
    best = best_hyperparameters(files / "best", {"units": 32, "learning_rate": 0.03})
    best_art = w.artifact("HyperParameters", best)
    w.execution(run, "Tuner", outputs={
        "best_hyperparameters": best_art,
        "tuner_results": w.artifact("TunerResults", results),
    })
    model_run = files / "model_run"
    model_run.mkdir(parents=True)
    (model_run / "history.json").write_text(json.dumps({
        "epochs": 3, "steps_per_epoch": 10, "validation_steps": 5,
        "metrics": {"loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.6, 0.4]},
    }))
    w.execution(run, "Trainer", inputs={"hyperparameters": best_art},
                outputs={"model_run": w.artifact("ModelRun", model_run)})
    writer.write_tfma_metrics(files / "evaluation_a", {
        "Overall": {"auc": 0.97, "root_mean_squared_error": 0.2, "example_count": 100.0},
        "island=Biscoe": {"auc": 0.95, "root_mean_squared_error": 0.25, "example_count": 40.0},
    })
    w.execution(run, "Evaluator", outputs={
        "evaluation": w.artifact("ModelEvaluation", files / "evaluation_a"),
        "blessing": w.artifact("ModelBlessing", files / "blessing_a", blessed=1),
    })
    pushed = w.artifact("PushedModel", files / "pushed", pushed=1, pushed_version="1764000000",
                        pushed_destination=str(root / "serving" / PIPELINE / "1764000000"))
    w.execution(run, "Pusher", outputs={"pushed_model": pushed})
    writer.label_change(store, PIPELINE, "stable", -1, 1764000000, "promote", pushed.id)

    # Run b: hyperparameters imported from a's search; not blessed, not pushed.
    run = w.run("b")
    examples = w.artifact("Examples", files / "examples_b", span=4, input_fingerprint="other")
    w.execution(run, "ExampleGen", outputs={"examples": examples}, input_base=str(files))
    imported = w.artifact("HyperParameters", best)
    w.execution(run, "Importer", outputs={"result": imported})
    w.execution(run, "Trainer", inputs={"hyperparameters": imported})
    writer.write_tfma_metrics(files / "evaluation_b", {
        "Overall": {"auc": 0.90, "root_mean_squared_error": 0.3},
    })
    w.execution(run, "Evaluator", outputs={
        "evaluation": w.artifact("ModelEvaluation", files / "evaluation_b"),
        "blessing": w.artifact("ModelBlessing", files / "blessing_b", blessed=0),
    })
    return root


def _rows(root: Path, slices: bool = False) -> list[table.Row]:
    graph, store = open_graph_and_store(root, None, PIPELINE)
    held = label_history.holders(label_history.history(store, PIPELINE))
    return table.build(graph, PIPELINE, label_history.labels_by_version(held), slices)


def test_a_row_per_run_with_what_it_ran_with_and_what_came_of_it(root):
    a, b = _rows(root)
    assert a.get("run") == "a" and a.get("experiment") == "lr-sweep"
    assert a.get("overrides") == {"learning_rate": 0.03} and a.get("set.learning_rate") == 0.03
    assert a.get("hyperparameters") == {"units": 32, "learning_rate": 0.03}
    assert a.get("units") == 32 == a.get("hp.units") and a.get("tuned_in") == "a"
    assert a.get("auc") == 0.97 and a.get("example_count") == 100.0
    assert a.get("blessed") is True and a.get("version") == "1764000000"
    assert a.get("labels") == ["stable"]
    assert a.get("span") == "3" and a.get("fingerprint") == table.fingerprint_digest(FINGERPRINT)
    assert re.fullmatch(r"[0-9a-f]{12}", a.get("fingerprint"))
    assert a.get("trigger") == "manual" and a.get("state") == "complete"
    assert a.get("epochs") == 3 and a.get("train.val_loss") == 0.4 and a.get("trial_count") == 2
    assert a.history.metrics["loss"] == [0.9, 0.5, 0.3]

    best, failed = a.children
    assert (best.kind, best.get("trial"), best.get("best"), best.get("score")) == (
        table.TRIAL, "0", True, 0.97
    )
    assert best.get("units") == 32 and best.get("train.val_sparse_categorical_accuracy") == 0.97
    assert (failed.get("state"), failed.get("score"), failed.get("best")) == ("FAILED", None, False)
    assert best.get("epochs") == 2 and best.history.metrics["val_sparse_categorical_accuracy"] == [
        0.9, 0.97]
    assert failed.get("epochs") is None and failed.history is None

    # b searched nothing: its hyperparameters are a's, and it says so; no push, no labels.
    assert b.get("experiment") is None and b.get("overrides") == {}
    assert b.get("hyperparameters") == a.get("hyperparameters") and b.get("tuned_in") == "a"
    assert b.get("trial_count") is None and b.children == [] and b.get("epochs") is None
    assert b.get("blessed") is False and b.get("version") is None and b.get("labels") == []
    assert b.get("fingerprint") != a.get("fingerprint")


def test_where_sort_experiment_and_columns(root):
    rows = _rows(root)
    assert [r.get("run") for r in table.select(rows, "auc > 0.95 and blessed")] == ["a"]
    assert [r.get("run") for r in table.select(rows, "not blessed or labels = stable")] == [
        "a", "b"
    ]
    assert [r.get("run") for r in table.select(rows, "tuned_in = a and units >= 32")] == [
        "a", "b"
    ]
    assert [r.get("run") for r in table.select(rows, experiment="lr-sweep")] == ["a"]
    assert table.select(rows, experiment="nothing") == []
    assert [r.get("run") for r in table.order(rows, "-auc")] == ["a", "b"]
    assert [r.get("run") for r in table.order(rows, "auc")] == ["b", "a"]
    assert [r.get("run") for r in table.order(rows, "version")] == ["a", "b"]  # b has none: last
    assert [r.get("run") for r in table.order(rows, "-version")] == ["a", "b"]
    with pytest.raises(WhereError, match="Did you mean 'auc'"):
        table.select(rows, "aucc > 1")
    with pytest.raises(ConfigError, match="--sort names 'acu'"):
        table.order(rows, "-acu")
    with pytest.raises(ConfigError, match="--columns names 'nope'"):
        table.choose_columns(rows, "run,nope")
    assert table.choose_columns(rows, "run, auc,score") == ["run", "auc", "score"]
    # The default: the headline metric first, the example count left out; trials bring a score.
    columns = table.default_columns(rows)
    at = columns.index("hyperparameters")
    assert columns[at + 1 : at + 4] == ["auc", "root_mean_squared_error", "score"]
    assert "example_count" not in columns


def test_the_text_table_and_its_notes(root):
    rows = table.order(_rows(root, slices=True), None)  # newest first: b, then a
    text = render(rows, table.default_columns(rows))
    lines = text.splitlines()
    assert lines[0].split()[:6] == [
        "run", "experiment", "overrides", "state", "hyperparameters", "auc"
    ]
    assert lines[1].startswith("b ") and " NO " in lines[1]
    assert lines[2].startswith("a ") and "lr-sweep" in lines[2] and "learning_rate=0.03" in lines[2]
    assert " stable " in lines[2] and "1764000000" in lines[2]
    assert lines[3].startswith("  trial 0 (best)") and lines[4].startswith("  trial 1 ")
    assert "FAILED" in lines[4]
    assert lines[5].startswith("  slice island=Biscoe") and "0.95" in lines[5]
    assert "(lower is better: root_mean_squared_error)" in lines
    assert "(a trial's score: its best epoch's val_auc (higher is better))" in lines


def _cli(capsys, *args) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = done.code
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_reads_the_store_and_never_creates_one(root, tmp_path, capsys):
    code, out, _ = _cli(capsys, "experiments", PIPELINE, "--root", str(root), "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["run"] for r in data] == ["b", "a"]
    assert data[1]["history"]["metrics"]["val_loss"] == [1.0, 0.6, 0.4]
    assert [t["trial"] for t in data[1]["trials"]] == ["0", "1"]
    # A trial's curve in brief (its length, last values, its file), the failed one's none.
    brief = data[1]["trials"][0]["history"]
    assert data[1]["trials"][0]["epochs"] == brief["epochs"] == 2
    assert brief["final"]["val_sparse_categorical_accuracy"] == 0.97
    assert brief["file"].endswith("keras_tuner/histories.json")
    assert data[1]["trials"][1]["history"] is None
    assert data[1]["slices"] == {
        "island=Biscoe": {"auc": 0.95, "root_mean_squared_error": 0.25, "example_count": 40.0}
    }

    code, out, _ = _cli(capsys, "experiments", PIPELINE, "--root", str(root), "--where",
                        "auc > 0.99", "--columns", "run,auc")
    assert code == 0 and out.strip() == "No runs of 'penguin' for which 'auc > 0.99' holds."
    code, out, _ = _cli(capsys, "experiments", PIPELINE, "--root", str(root), "--sort", "-auc",
                        "--columns", "run,auc,blessed")
    assert [line.split() for line in out.splitlines()[:3]] == [
        ["run", "auc", "blessed"], ["a", "0.97", "yes"], ["trial", "0", "(best)"]
    ]

    code, _, err = _cli(capsys, "experiments", PIPELINE, "--root", str(root), "--where",
                        "__import__('os')")
    assert code == 2 and err.startswith("error: --where names '__import__'")

    empty = tmp_path / "empty"
    code, _, err = _cli(capsys, "experiments", PIPELINE, "--root", str(empty))
    assert code != 0 and "error:" in err
    assert not (empty / "metadata.sqlite").exists()


def test_hyperparameters_a_run_fixed_reach_its_trainer_over_the_tuned_ones(root):
    from beamline.metadata.connection import open_store, sqlite_config

    w = Writer(open_store(sqlite_config(root / "metadata.sqlite")), root)
    run = w.run("c", **{rc.OVERRIDES: json.dumps({"units": 8})})
    imported = w.artifact("HyperParameters", root.parent / "files" / "best")
    w.execution(run, "Importer", outputs={"result": imported})
    w.execution(run, "Trainer", inputs={"hyperparameters": imported}, custom_config=json.dumps(
        {rc.FIXED_HYPERPARAMETERS_KEY: {"units": 8}, rc.MODULE_SHA256_KEY: "0" * 64}))
    c = next(r for r in _rows(root) if r.get("run") == "c")
    assert c.get("hyperparameters") == {"units": 8, "learning_rate": 0.03}
    assert c.get("units") == 8 and c.get("set.units") == 8 and c.get("tuned_in") == "a"
