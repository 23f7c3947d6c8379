"""Learning curves, one value per epoch of each loss and metric (`val_` ones from the validation
after the epoch). Plain JSON, no TensorFlow.

- A Trainer's: `history.json` in its ModelRun directory. The shared Keras plumbing writes it
  (components/common/keras_tabular.py, `EpochHistory`) as each epoch ends; a run written before
  it, or by a module of its own, has none.
- A Tuner's trials': `histories.json` beside the trial records (beamline/lineage/trials.py), each
  trial's history in the same shape under its id. Beamline's Tuner (components/tuner) catches
  every trial's epochs at KerasTuner's `Tuner.on_epoch_end` hook, since KerasTuner 1.3.5 keeps
  only a trial's best epoch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.lineage.model import Execution, Graph

HISTORY_FILE = "history.json"
TRIAL_HISTORIES_FILE = "histories.json"  # {"trials": {trial id: a history}}
MODEL_RUN_KEY = "model_run"
MODEL_RUN_TYPE = "ModelRun"


@dataclass
class History:
    epochs: int
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    source: str | None = None  # the file it was read from

    def final(self, metric: str) -> float | None:
        values = self.metrics.get(metric) or []
        return values[-1] if values else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def brief(self) -> dict[str, Any]:
        """Its length, each metric's last value and where the whole curve is: what a trial row
        of `experiments --json` carries (thousands of trials stay a small document)."""
        return {
            "epochs": self.epochs,
            "final": {name: self.final(name) for name in self.metrics},
            "file": self.source,
        }


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _load(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def read_history(model_run_uri: str) -> History | None:
    """The history in a ModelRun directory; None when there is none or it is not that shape
    (a reader of runs shows "no curve" rather than failing)."""
    path = os.path.join(model_run_uri, HISTORY_FILE)
    return history_from(_load(path), path)


def read_trial_histories(directory: str) -> dict[str, History]:
    """trial id -> its history, from the `histories.json` in a Tuner's record directory; {} when
    there is none (a stock TFX Tuner, a search recorded before it) or it is not that shape.
    A trial whose entry is not a history is left out."""
    path = os.path.join(directory, TRIAL_HISTORIES_FILE)
    data = _load(path)
    trials = data.get("trials") if isinstance(data, dict) else None
    if not isinstance(trials, dict):
        return {}
    found = {str(tid): history_from(entry, path) for tid, entry in trials.items()}
    return {tid: h for tid, h in found.items() if h is not None}


def history_from(data: Any, source: str | None = None) -> History | None:
    """A History from its JSON shape (`epochs`, `steps_per_epoch`, `validation_steps`,
    `metrics`: name -> a value per epoch); None when `data` is not one."""
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        return None
    curves = {}
    for name, values in metrics.items():
        if isinstance(values, list):
            curves[str(name)] = [
                float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
                for v in values
            ]
    epochs = _count(data.get("epochs"))
    return History(
        epochs=epochs if epochs is not None else max((len(v) for v in curves.values()), default=0),
        steps_per_epoch=_count(data.get("steps_per_epoch")),
        validation_steps=_count(data.get("validation_steps")),
        metrics=curves,
        source=source,
    )


def history_of(graph: Graph, trainer: Execution) -> History | None:
    """The learning curve of a Trainer execution (a cached one: of the execution it reused)."""
    ids = trainer.outputs.get(MODEL_RUN_KEY) or [
        aid for aid in trainer.output_ids()
        if getattr(graph.artifacts.get(aid), "type", None) == MODEL_RUN_TYPE
    ]
    for aid in ids:
        art = graph.artifacts.get(aid)
        if art is not None and art.uri:
            found = read_history(art.uri)
            if found is not None:
                return found
    return None
