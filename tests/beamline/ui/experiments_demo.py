"""A store for the UI's experiments page, written with MLMD's API the way TFX and the runner
record runs (tests/beamline/experiments/test_table.py's Writer), and the files runs leave beside
it (TFMA metrics, a Tuner's trials, best_hyperparameters.txt, the Trainer's history.json). No
TFX run: the fast tier.

Pipeline "penguin": experiment "lr-sweep", a 2x2 grid over learning_rate and units (four runs,
their overrides reaching the Trainer as fixed hyperparameters), each with a three-epoch history
and an evaluation (auc); the best pushed and holding `stable`. Then a run outside the
experiment whose Tuner searched (three trials, one failed; the completed ones with their epochs
in histories.json), with its history and evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from beamline.metadata import run_context as rc
from tests.beamline.experiments.test_table import PIPELINE, Writer
from tests.beamline.lineage.test_trials import (
    best_hyperparameters,
    trial_state,
    write_project,
    write_trial_histories,
)
from tests.beamline.ui import writer

EXPERIMENT = "lr-sweep"
# run id -> (learning_rate, units, auc): the grid's runs, oldest first.
GRID = {
    "sweep-1": (0.01, 8, 0.91),
    "sweep-2": (0.01, 16, 0.95),
    "sweep-3": (0.03, 8, 0.88),
    "sweep-4": (0.03, 16, 0.97),
}
TUNED = "tuned-1"
TUNED_AUC = 0.93
PUSHED = "sweep-4"
PUSHED_VERSION = "1764000000"
# trial id -> (hyperparameters, status, score)
TRIALS = {
    "0": ({"learning_rate": 0.02, "units": 16}, "COMPLETED", 0.94),
    "1": ({"learning_rate": 0.05, "units": 8}, "COMPLETED", 0.90),
    "2": ({"learning_rate": 0.1, "units": 4}, "FAILED", None),
}


@dataclass
class ExperimentsDemo:
    root: Path
    runs: list[str] = field(default_factory=list)  # oldest first

    def auc(self, run_id: str) -> float:
        return TUNED_AUC if run_id == TUNED else GRID[run_id][2]


def history(auc: float, epochs: int = 3) -> dict:
    """A history.json as the Keras plumbing writes it: loss falls, auc rises to `auc`."""
    return {
        "epochs": epochs, "steps_per_epoch": 10, "validation_steps": 5,
        "metrics": {
            "loss": [round(1.0 / (e + 1) + (1 - auc), 4) for e in range(epochs)],
            "val_loss": [round(1.1 / (e + 1) + (1 - auc), 4) for e in range(epochs)],
            "auc": [round(auc - 0.1 * (epochs - 1 - e), 4) for e in range(epochs)],
            "val_auc": [round(auc - 0.12 * (epochs - 1 - e), 4) for e in range(epochs)],
        },
    }


def _trained(w: Writer, run, files: Path, run_id: str, auc: float, trainer_inputs=None,
             **trainer_props) -> None:
    examples = w.artifact("Examples", files / run_id / "examples", span=1,
                          input_fingerprint="split:single_split,num_files:1")
    w.execution(run, "ExampleGen", outputs={"examples": examples}, input_base=str(files))
    model_run = files / run_id / "model_run"
    model_run.mkdir(parents=True)
    (model_run / "history.json").write_text(json.dumps(history(auc)))
    w.execution(run, "Trainer", inputs=trainer_inputs,
                outputs={"model_run": w.artifact("ModelRun", model_run)}, **trainer_props)
    evaluation = files / run_id / "evaluation"
    writer.write_tfma_metrics(evaluation, {
        "Overall": {"auc": auc, "example_count": 100.0},
        "island=Biscoe": {"auc": auc - 0.02, "example_count": 40.0},
    })
    w.execution(run, "Evaluator", outputs={
        "evaluation": w.artifact("ModelEvaluation", evaluation),
        "blessing": w.artifact("ModelBlessing", files / run_id / "blessing",
                               blessed=int(auc >= 0.9)),
    })


def build(base: Path) -> ExperimentsDemo:
    from beamline.metadata.connection import open_store, sqlite_config

    root, files = base / "root", base / "files"
    store = open_store(sqlite_config(root / "metadata.sqlite"))
    w = Writer(store, root)
    demo = ExperimentsDemo(root)
    for run_id, (learning_rate, units, auc) in GRID.items():
        overrides = {"learning_rate": learning_rate, "units": units}
        _next_millisecond()
        run = w.run(run_id, **{rc.EXPERIMENT: EXPERIMENT, rc.OVERRIDES: json.dumps(overrides)})
        config = json.dumps({rc.FIXED_HYPERPARAMETERS_KEY: overrides})
        _trained(w, run, files, run_id, auc, custom_config=config)
        if run_id == PUSHED:
            pushed = w.artifact(
                "PushedModel", files / run_id / "pushed", pushed=1,
                pushed_version=PUSHED_VERSION,
                pushed_destination=str(root / "serving" / PIPELINE / PUSHED_VERSION),
            )
            w.execution(run, "Pusher", outputs={"pushed_model": pushed})
            writer.label_change(store, PIPELINE, "stable", -1, int(PUSHED_VERSION), "promote",
                                pushed.id)
        demo.runs.append(run_id)

    _next_millisecond()
    run = w.run(TUNED)
    results = files / TUNED / "tuner_results"
    write_project(results / "keras_tuner", [
        trial_state(tid, values, status=status, score=score,
                    val_acc=(score - 0.05, score) if score else ())
        for tid, (values, status, score) in TRIALS.items()
    ], search={"objective": "val_auc", "direction": "max"})
    write_trial_histories(results / "keras_tuner", {
        tid: history(score) for tid, (_, status, score) in TRIALS.items() if score
    })
    best = w.artifact("HyperParameters", best_hyperparameters(files / TUNED / "best",
                                                              TRIALS["0"][0]))
    w.execution(run, "Tuner", outputs={
        "best_hyperparameters": best, "tuner_results": w.artifact("TunerResults", results),
    })
    _trained(w, run, files, TUNED, TUNED_AUC, trainer_inputs={"hyperparameters": best})
    demo.runs.append(TUNED)
    return demo


def _next_millisecond() -> None:
    """Waits until the clock's millisecond changes: runs started in the same millisecond tie on
    their start time, and the table's newest-first order would then fall back to the ids."""
    import time

    start = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == start:
        time.sleep(0.0002)
