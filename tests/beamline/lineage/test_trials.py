"""Tuner trials and Trainer learning curves read back from their JSON files (hand-written here in
the shapes KerasTuner 1.3.5, TFX 1.16's Tuner and the Keras plumbing write), without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

from beamline.lineage.epochs import (
    HISTORY_FILE,
    TRIAL_HISTORIES_FILE,
    history_of,
    read_history,
    read_trial_histories,
)
from beamline.lineage.model import Artifact, Execution, Graph
from beamline.lineage.trials import (
    KERAS_TUNER_DIR,
    SEARCH_FILE,
    TUNER_RESULTS_FILE,
    read_keras_tuner_dir,
    read_search,
    search_of,
)

SPACE = [
    {"class_name": "Choice", "config": {"name": "units", "default": 16, "values": [8, 16, 32],
                                        "ordered": True, "conditions": []}},
    {"class_name": "Choice", "config": {"name": "learning_rate", "default": 0.01,
                                        "values": [0.003, 0.01], "ordered": True,
                                        "conditions": []}},
]


def trial_state(trial_id, values, status="COMPLETED", score=None, val_acc=(), message=None):
    """KerasTuner's Trial.get_state(), as oracle._save_trial writes it to trial.json."""
    metrics = {}
    if val_acc:
        metrics["val_sparse_categorical_accuracy"] = {
            "direction": "max",
            "observations": [{"value": [v], "step": i} for i, v in enumerate(val_acc)],
        }
        metrics["loss"] = {
            "direction": "min",
            "observations": [{"value": [1.0 / (i + 1)], "step": i} for i in range(len(val_acc))],
        }
    return {
        "trial_id": trial_id,
        "hyperparameters": {"space": SPACE, "values": values},
        "metrics": {"metrics": metrics},
        "score": score,
        "best_step": max(len(val_acc) - 1, 0),
        "status": status,
        "message": message,
    }


def write_project(directory: Path, states, search=None) -> Path:
    for state in states:
        trial_dir = directory / f"trial_{state['trial_id']}"
        trial_dir.mkdir(parents=True)
        (trial_dir / "trial.json").write_text(json.dumps(state))
        # KerasTuner also leaves checkpoints and build configs there: not trials.
        (trial_dir / "build_config.json").write_text("{}")
    if search is not None:
        (directory / SEARCH_FILE).write_text(json.dumps(search))
    return directory


def trial_history(val_acc, steps_per_epoch=3, validation_steps=5) -> dict:
    """One trial's entry in histories.json, as Beamline's Tuner (components/tuner/executor.py)
    writes it: loss falls, accuracy and its validation rise to `val_acc`'s values."""
    epochs = len(val_acc)
    return {
        "epochs": epochs, "executions": 1, "steps_per_epoch": steps_per_epoch,
        "validation_steps": validation_steps,
        "metrics": {
            "loss": [round(1.0 / (e + 1), 4) for e in range(epochs)],
            "sparse_categorical_accuracy": [round(v - 0.02, 4) for v in val_acc],
            "val_loss": [round(1.1 / (e + 1), 4) for e in range(epochs)],
            "val_sparse_categorical_accuracy": list(val_acc),
        },
    }


def write_trial_histories(directory: Path, histories: dict) -> Path:
    """histories.json in a Tuner's record directory: trial id -> trial_history(...)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / TRIAL_HISTORIES_FILE).write_text(json.dumps({"trials": histories}))
    return directory


def best_hyperparameters(directory: Path, values) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "best_hyperparameters.txt").write_text(
        json.dumps({"space": SPACE, "values": values})
    )
    return directory


def test_every_trial_of_a_keras_tuner_directory_with_status_score_and_epochs(tmp_path):
    results = tmp_path / "tuner_results" / "7"
    write_project(results / KERAS_TUNER_DIR, [
        trial_state("00", {"units": 16, "learning_rate": 0.01}, score=0.91,
                    val_acc=(0.7, 0.85, 0.91)),
        trial_state("01", {"units": 32, "learning_rate": 0.003}, score=0.95,
                    val_acc=(0.8, 0.95, 0.93)),
        trial_state("02", {"units": 8, "learning_rate": 0.01}, status="FAILED",
                    message="Traceback: ResourceExhaustedError"),
    ], search={"objective": "val_sparse_categorical_accuracy", "direction": "max"})
    write_trial_histories(results / KERAS_TUNER_DIR, {
        "00": trial_history((0.7, 0.85, 0.91)), "01": trial_history((0.8, 0.95, 0.93)),
    })
    best = best_hyperparameters(tmp_path / "best_hyperparameters" / "7",
                                {"units": 32, "learning_rate": 0.003})

    search = read_search(str(results), str(best))

    assert [t.trial_id for t in search.trials] == ["00", "01", "02"]
    assert [t.status for t in search.trials] == ["COMPLETED", "COMPLETED", "FAILED"]
    assert [t.best for t in search.trials] == [False, True, False]
    first = search.trials[0]
    assert first.hyperparameters == {"units": 16, "learning_rate": 0.01}
    assert first.score == 0.91 and first.best_step == 2
    assert first.metrics["val_sparse_categorical_accuracy"] == [0.7, 0.85, 0.91]
    assert first.final("loss") == 1.0 / 3
    assert search.trials[2].score is None and "ResourceExhausted" in search.trials[2].message
    # Every epoch, where trial.json keeps only the best one's metrics.
    assert first.history.epochs == 3 and first.history.steps_per_epoch == 3
    assert first.history.metrics["val_sparse_categorical_accuracy"] == [0.7, 0.85, 0.91]
    assert search.trials[1].history.final("val_sparse_categorical_accuracy") == 0.93
    assert first.history.source == str(results / KERAS_TUNER_DIR / TRIAL_HISTORIES_FILE)
    assert search.trials[2].history is None  # failed before an epoch ended
    assert first.history.brief() == {
        "epochs": 3, "file": first.history.source,
        "final": {"loss": 0.3333, "sparse_categorical_accuracy": 0.89, "val_loss": 0.3667,
                  "val_sparse_categorical_accuracy": 0.91},
    }
    assert (search.objective, search.direction) == ("val_sparse_categorical_accuracy", "max")
    assert search.best_hyperparameters == {"units": 32, "learning_rate": 0.003}
    json.dumps(search.to_json())  # plain JSON all the way down


def test_tfx_s_own_tuner_results_give_the_completed_trials(tmp_path):
    """A stock TFX Tuner: no KerasTuner records survive, only tuner_results.json (best first)."""
    results = tmp_path / "tuner_results"
    results.mkdir()
    (results / TUNER_RESULTS_FILE).write_text(json.dumps([
        {"trial_id": "2", "score": 0.97, "units": 32, "learning_rate": 0.01},
        {"trial_id": "0", "score": 0.9, "units": 8, "learning_rate": 0.003},
    ]))
    best = best_hyperparameters(tmp_path / "best", {"units": 32, "learning_rate": 0.01})

    search = read_search(str(results), str(best))

    assert [(t.trial_id, t.score, t.status) for t in search.trials] == [
        ("0", 0.9, "COMPLETED"), ("2", 0.97, "COMPLETED")
    ]
    assert search.trials[1].hyperparameters == {"units": 32, "learning_rate": 0.01}
    assert [t.best for t in search.trials] == [False, True]
    assert search.objective is None and search.trials[0].metrics == {}


def test_damaged_or_foreign_files_are_left_out_not_fatal(tmp_path):
    project = tmp_path / "project"
    write_project(project, [trial_state("00", {"units": 8}, score=0.5)])
    (project / "trial_01").mkdir()
    (project / "trial_01" / "trial.json").write_text("{not json")
    (project / "trial_02").mkdir()
    (project / "trial_02" / "trial.json").write_text(json.dumps(["a", "list"]))
    (project / SEARCH_FILE).write_text(json.dumps({"objective": "x", "direction": "sideways"}))
    weird = trial_state("03", {"units": 8}, score="high", val_acc=(0.5,))
    weird["metrics"]["metrics"]["loss"]["observations"].append({"value": "NaN?", "step": "z"})
    write_project(project, [weird])

    search = read_keras_tuner_dir(str(project))

    assert [t.trial_id for t in search.trials] == ["00", "03"]
    assert search.trials[1].score is None
    assert search.trials[1].metrics["loss"] == [1.0, None]
    assert search.direction is None
    assert read_keras_tuner_dir(str(tmp_path / "missing")) is None
    assert read_search(str(tmp_path / "missing")) is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / TUNER_RESULTS_FILE).write_text(json.dumps({"trial_id": "0"}))
    assert read_search(str(tmp_path / "bad")) is None


def _execution(eid, node, outputs, component=None):
    return Execution(
        id=eid, type=f"tfx.components.{(component or node).lower()}.component.{component or node}",
        node_id=node, pipeline="p", run_id="r", state="COMPLETE", start_ms=0, end_ms=1,
        outputs=outputs,
    )


def test_a_tuner_execution_s_trials_and_a_trainer_s_curve_found_from_the_graph(tmp_path):
    results = tmp_path / "Tuner" / "tuner_results" / "5"
    write_project(results / KERAS_TUNER_DIR, [trial_state("0", {"units": 8}, score=0.5)])
    best = best_hyperparameters(tmp_path / "Tuner" / "best_hyperparameters" / "5", {"units": 8})
    model_run = tmp_path / "Trainer" / "model_run" / "6"
    model_run.mkdir(parents=True)
    (model_run / HISTORY_FILE).write_text(json.dumps({
        "epochs": 2, "steps_per_epoch": 10, "validation_steps": 5,
        "metrics": {"loss": [0.9, 0.4], "val_loss": [1.0, None]},
    }))
    graph = Graph()
    graph.artifacts = {
        1: Artifact(1, "TunerResults", str(results)),
        2: Artifact(2, "HyperParameters", str(best)),
        3: Artifact(3, "ModelRun", str(model_run)),
    }
    tuner = _execution(5, "Tuner", {"tuner_results": [1], "best_hyperparameters": [2]})
    trainer = _execution(6, "Trainer", {"model_run": [3]})

    search = search_of(graph, tuner)
    assert [t.best for t in search.trials] == [True]
    history = history_of(graph, trainer)
    assert history.epochs == 2 and history.steps_per_epoch == 10
    assert history.metrics == {"loss": [0.9, 0.4], "val_loss": [1.0, None]}
    assert history.final("val_loss") is None and history.final("missing") is None
    assert history_of(graph, _execution(7, "Trainer", {})) is None


def test_a_history_that_is_not_one_reads_as_none(tmp_path):
    assert read_history(str(tmp_path)) is None
    (tmp_path / HISTORY_FILE).write_text("[1, 2]")
    assert read_history(str(tmp_path)) is None
    (tmp_path / HISTORY_FILE).write_text(json.dumps({"metrics": {"loss": [1, True, "x"]}}))
    found = read_history(str(tmp_path))
    assert found.metrics == {"loss": [1.0, None, None]} and found.epochs == 3


def test_trial_histories_that_are_not_ones_are_left_out_not_fatal(tmp_path):
    project = tmp_path / "project"
    write_project(project, [trial_state("00", {"units": 8}, score=0.5),
                            trial_state("01", {"units": 16}, score=0.6)])
    assert read_trial_histories(str(project)) == {}  # a search recorded before them
    (project / TRIAL_HISTORIES_FILE).write_text("{not json")
    assert [t.history for t in read_keras_tuner_dir(str(project)).trials] == [None, None]
    (project / TRIAL_HISTORIES_FILE).write_text(json.dumps({"trials": [1, 2]}))
    assert read_trial_histories(str(project)) == {}
    write_trial_histories(project, {"00": "not a history", "01": trial_history((0.5, 0.6))})
    search = read_keras_tuner_dir(str(project))
    assert search.trials[0].history is None
    assert search.trials[1].history.metrics["val_sparse_categorical_accuracy"] == [0.5, 0.6]
