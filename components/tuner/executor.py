"""TFX's Tuner executor, and then every trial's record kept in the outputs.

TFX's own executor writes `best_hyperparameters.txt` and `tuner_results.json` (completed
trials, their scores and hyperparameter values). The trials themselves, a failed one's status
and message too, and the metrics of each trial's best epoch, are KerasTuner's
`trial_*/trial.json` under the search directory, which a tuner_fn puts in
`fn_args.working_dir`: the execution's temporary directory, removed when the execution
ends. So the oracle's trials are written to `<tuner_results>/keras_tuner/trial_<id>/trial.json`
(KerasTuner's own format, whatever directory the tuner_fn chose), with `search.json` naming the
objective beside them.

KerasTuner 1.3.5 passes a trial's epochs to no one but its `Tuner.on_epoch_end` hook (the oracle
keeps the best epoch only), so the search runs here as TFX's `search` runs it, with that hook of
the tuner the tuner_fn returned wrapped to keep every epoch's logs: `keras_tuner/histories.json`
holds each trial's loss and metrics per epoch, train and validation, whatever the module file.
"""

from __future__ import annotations

import json
import math
import os

from absl import logging
from tfx.components.trainer import fn_args_utils
from tfx.components.tuner import executor as tfx_tuner
from tfx.components.util import udf_utils
from tfx.types import artifact_utils, standard_component_specs

from beamline.lineage.epochs import TRIAL_HISTORIES_FILE
from beamline.lineage.trials import KERAS_TUNER_DIR, SEARCH_FILE, TRIAL_FILE


def _write_json(path: str, data) -> None:
    import tensorflow as tf

    tf.io.gfile.makedirs(os.path.dirname(path))
    # default=float: numpy scalars a custom tuner may have put in its metrics.
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(data, default=float))


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class EpochRecorder:
    """Every trial's logs, epoch by epoch, as KerasTuner's Tuner.on_epoch_end sees them."""

    def __init__(self) -> None:
        # trial id -> one {metric: a value per epoch} per execution of the trial
        self.executions: dict[str, list[dict[str, list[float | None]]]] = {}

    def attach(self, tuner) -> bool:
        """Wraps `tuner`'s on_epoch_end (its own still runs); False for a tuner without the hook
        (a BaseTuner that trains no Keras model has no epochs)."""
        hook = getattr(tuner, "on_epoch_end", None)
        if not callable(hook):
            return False

        def on_epoch_end(trial, model, epoch, logs=None):
            self.record(str(trial.trial_id), epoch, logs)
            return hook(trial, model, epoch, logs=logs)

        tuner.on_epoch_end = on_epoch_end
        return True

    def record(self, trial_id: str, epoch: int, logs) -> None:
        runs = self.executions.setdefault(trial_id, [])
        if epoch == 0 or not runs:  # executions_per_trial > 1 starts the epochs again
            runs.append({})
        for name, value in sorted((logs or {}).items()):
            runs[-1].setdefault(str(name), []).append(_finite(value))

    def histories(self, steps_per_epoch=None, validation_steps=None) -> dict:
        """histories.json: per trial, each metric's mean over the trial's executions at each
        epoch (KerasTuner scores a trial by that mean too)."""
        trials = {}
        for trial_id, runs in sorted(self.executions.items()):
            names = sorted({name for run in runs for name in run})
            metrics = {name: _mean_by_epoch([run.get(name, []) for run in runs])
                       for name in names}
            trials[trial_id] = {
                "epochs": max((len(v) for v in metrics.values()), default=0),
                "executions": len(runs),
                "steps_per_epoch": _count(steps_per_epoch),
                "validation_steps": _count(validation_steps),
                "metrics": metrics,
            }
        return {"trials": trials}


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mean_by_epoch(runs: list[list[float | None]]) -> list[float | None]:
    out = []
    for epoch in range(max((len(r) for r in runs), default=0)):
        values = [r[epoch] for r in runs if epoch < len(r) and r[epoch] is not None]
        out.append(sum(values) / len(values) if values else None)
    return out


def search(input_dict, exec_properties, working_dir: str):
    """TFX's tuner executor's `search` (the tuner_fn's tuner, searched with its fit_kwargs), with
    every trial's epochs recorded: (the tuner, its EpochRecorder, the fit_kwargs)."""
    tuner_fn = udf_utils.get_fn(exec_properties, "tuner_fn")
    fn_args = fn_args_utils.get_common_fn_args(input_dict, exec_properties, working_dir)
    result = tuner_fn(fn_args)
    tuner = result.tuner
    recorder = EpochRecorder()
    recorder.attach(tuner)
    tuner.search_space_summary()
    logging.info("Start tuning... Tuner ID: %s", tuner.tuner_id)
    tuner.search(**result.fit_kwargs)
    logging.info("Finished tuning... Tuner ID: %s", tuner.tuner_id)
    tuner.results_summary()
    return tuner, recorder, dict(result.fit_kwargs)


def write_trials(tuner, directory: str, recorder: EpochRecorder | None = None,
                 fit_kwargs: dict | None = None) -> int:
    """Every trial the tuner's oracle holds, as KerasTuner writes trial.json, under
    `<directory>/keras_tuner/`, and the recorded epochs in histories.json there; returns how
    many trials. A tuner without a KerasTuner oracle writes none (TFX's tuner_results.json still
    lists its completed trials)."""
    oracle = getattr(tuner, "oracle", None)
    trials = getattr(oracle, "trials", None)
    if not isinstance(trials, dict):
        return 0
    target = os.path.join(directory, KERAS_TUNER_DIR)
    for trial_id, trial in sorted(trials.items()):
        _write_json(os.path.join(target, f"trial_{trial_id}", TRIAL_FILE), trial.get_state())
    objective = getattr(oracle, "objective", None)
    _write_json(os.path.join(target, SEARCH_FILE), {
        "objective": getattr(objective, "name", None),
        "direction": getattr(objective, "direction", None),
        "max_trials": getattr(oracle, "max_trials", None),
    })
    if recorder is not None and recorder.executions:
        fit_kwargs = fit_kwargs or {}
        _write_json(os.path.join(target, TRIAL_HISTORIES_FILE), recorder.histories(
            fit_kwargs.get("steps_per_epoch"), fit_kwargs.get("validation_steps")
        ))
    return len(trials)


class Executor(tfx_tuner.Executor):
    """TFX's Tuner executor, then the trials and their epochs written into `tuner_results`."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX's name
        if tfx_tuner.get_tune_args(exec_properties):
            raise ValueError("TuneArgs is not supported by this Tuner's Executor.")
        tuner, recorder, fit_kwargs = search(input_dict, exec_properties, self._get_tmp_dir())
        tfx_tuner.write_best_hyperparameters(tuner, output_dict)
        results = artifact_utils.get_single_uri(
            output_dict[standard_component_specs.TUNER_RESULTS_KEY]
        )
        count = write_trials(tuner, results, recorder, fit_kwargs)
        logging.info("Wrote %d trial record(s) and the epochs of %d to %s.", count,
                     len(recorder.executions), results)
