"""A Tuner's trials, read from what it left in its outputs: plain JSON, no TensorFlow.

TFX runs the search in the execution's temporary directory, which it removes afterwards, so
KerasTuner's own `trial_*/trial.json` files are gone once a Tuner finishes. What stays:

- Beamline's Tuner (components/tuner) copies KerasTuner's records into its `tuner_results`
  directory before that: `keras_tuner/trial_<id>/trial.json` for every trial (its status,
  hyperparameters, score and the metrics of its best epoch, as KerasTuner writes them) and
  `keras_tuner/search.json` (the objective and its direction), and `keras_tuner/histories.json`:
  every trial's loss and metrics at each epoch, train and validation (beamline/lineage/epochs.py;
  KerasTuner itself keeps only the best epoch's);
- TFX's own Tuner (1.16) writes `tuner_results.json` there: the completed trials, each its id,
  score and hyperparameter values (failed trials are not in it);
- both write `best_hyperparameters.txt` in the `best_hyperparameters` directory.

A KerasTuner project directory (`<directory>/<project_name>/`) reads like `keras_tuner/`.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.lineage import payloads
from beamline.lineage.epochs import History, read_trial_histories
from beamline.lineage.model import Execution, Graph

# Names in the Tuner's output directories (the writer, components/tuner/executor.py, imports
# them from here).
KERAS_TUNER_DIR = "keras_tuner"
SEARCH_FILE = "search.json"
TRIAL_FILE = "trial.json"
TUNER_RESULTS_FILE = "tuner_results.json"  # TFX's own
TUNER_RESULTS_KEY = "tuner_results"
BEST_HYPERPARAMETERS_KEY = "best_hyperparameters"
COMPLETED = "COMPLETED"  # KerasTuner's TrialStatus for a trial that finished


@dataclass
class Trial:
    trial_id: str
    status: str  # KerasTuner's TrialStatus: COMPLETED, FAILED, INVALID, RUNNING, ...
    hyperparameters: dict[str, Any]
    score: float | None
    # metric -> its value at each recorded step (KerasTuner's step is the epoch; KerasTuner
    # 1.3.5 records the best epoch's metrics only, at step `best_step`)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)
    best_step: int | None = None
    message: str | None = None
    best: bool = False  # the trial whose hyperparameters the search chose
    history: History | None = None  # every epoch, when the Tuner recorded them

    def final(self, metric: str) -> float | None:
        values = self.metrics.get(metric) or []
        return values[-1] if values else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Search:
    """A Tuner execution's trials, in the order they were created."""

    trials: list[Trial]
    objective: str | None = None  # the metric KerasTuner scored trials by, when recorded
    direction: str | None = None  # "max" or "min"
    best_hyperparameters: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the directory or file the trials were read from

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["trials"] = [t.to_json() for t in self.trials]
        return data


def _load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _observed(history: Any) -> list[float | None]:
    """A KerasTuner MetricHistory config's values in step order (the mean of a step's values,
    as KerasTuner reads them)."""
    observations = history.get("observations") if isinstance(history, dict) else None
    out = []
    for obs in sorted(
        (o for o in observations or [] if isinstance(o, dict)),
        key=lambda o: o.get("step") if isinstance(o.get("step"), int) else 0,
    ):
        value = obs.get("value")
        values = [_number(v) for v in (value if isinstance(value, list) else [value])]
        values = [v for v in values if v is not None]
        out.append(sum(values) / len(values) if values else None)
    return out


def trial_from_state(state: dict[str, Any]) -> Trial:
    """A Trial from KerasTuner's `trial.json` (Trial.get_state()); ValueError if it is not one."""
    if not isinstance(state, dict) or "trial_id" not in state:
        raise ValueError("not a KerasTuner trial: no trial_id")
    hps = state.get("hyperparameters")
    values = hps.get("values", {}) if isinstance(hps, dict) else {}
    tracked = state.get("metrics")
    tracked = tracked.get("metrics", {}) if isinstance(tracked, dict) else {}
    best_step = state.get("best_step")
    message = state.get("message")
    return Trial(
        trial_id=str(state["trial_id"]),
        status=str(state.get("status") or "UNKNOWN"),
        hyperparameters=dict(values) if isinstance(values, dict) else {},
        score=_number(state.get("score")),
        metrics={str(name): _observed(h) for name, h in sorted(tracked.items())},
        best_step=best_step if isinstance(best_step, int) else None,
        message=None if message is None else str(message),
    )


def read_keras_tuner_dir(path: str) -> Search | None:
    """Every `trial_*/trial.json` under a KerasTuner project directory (and Beamline's
    `search.json` beside them); None when the directory holds no trial. Unreadable trial files
    are left out."""
    trials = []
    for name in sorted(glob.glob(os.path.join(path, "trial_*", TRIAL_FILE))):
        found = payloads.safe(lambda p: trial_from_state(_load_json(p)), name)
        if found is not None:
            trials.append(found)
    if not trials:
        return None
    histories = read_trial_histories(path)
    for trial in trials:
        trial.history = histories.get(trial.trial_id)
    search = Search(trials=trials, source=path)
    meta = payloads.safe(_load_json, os.path.join(path, SEARCH_FILE), default={})
    if isinstance(meta, dict):
        objective = meta.get("objective")
        search.objective = str(objective) if objective else None
        direction = meta.get("direction")
        search.direction = direction if direction in ("max", "min") else None
    return search


def read_tuner_results(path: str) -> Search | None:
    """TFX's `tuner_results.json` (a list of {trial_id, score, hyperparameter values...}):
    completed trials only. None when the file is missing or not that shape."""
    rows = payloads.safe(_load_json, path)
    if not isinstance(rows, list):
        return None
    trials = []
    for row in rows:
        if not isinstance(row, dict) or "trial_id" not in row:
            continue
        values = {k: v for k, v in row.items() if k not in ("trial_id", "score")}
        trials.append(Trial(str(row["trial_id"]), COMPLETED, values, _number(row.get("score"))))
    return Search(trials=sorted(trials, key=lambda t: t.trial_id), source=path)


def read_search(tuner_results_uri: str | None, best_hyperparameters_uri: str | None = None
                ) -> Search | None:
    """The trials a Tuner left in its `tuner_results` directory (Beamline's full records first,
    else TFX's completed trials), the chosen one marked `best`."""
    search = None
    if tuner_results_uri:
        search = read_keras_tuner_dir(os.path.join(tuner_results_uri, KERAS_TUNER_DIR))
        if search is None:
            search = read_tuner_results(os.path.join(tuner_results_uri, TUNER_RESULTS_FILE))
    if search is None:
        return None
    if best_hyperparameters_uri:
        search.best_hyperparameters = payloads.safe(
            payloads.load_hyperparameters, best_hyperparameters_uri, default={}
        )
    chosen = search.best_hyperparameters
    for trial in search.trials:
        if chosen and trial.status == COMPLETED and trial.hyperparameters == chosen:
            trial.best = True
            break
    return search


def _output_uri(graph: Graph, ex: Execution, key: str) -> str | None:
    for aid in ex.outputs.get(key, []):
        art = graph.artifacts.get(aid)
        if art is not None and art.uri:
            return art.uri
    return None


def search_of(graph: Graph, tuner: Execution) -> Search | None:
    """The trials of a Tuner execution (a cached one: those of the execution it reused)."""
    return read_search(
        _output_uri(graph, tuner, TUNER_RESULTS_KEY),
        _output_uri(graph, tuner, BEST_HYPERPARAMETERS_KEY),
    )


def is_tuner(ex: Execution) -> bool:
    """TFX's Tuner or a subclass that keeps its type name (Beamline's does)."""
    return ex.component == "Tuner" or ex.node_id == "Tuner"
