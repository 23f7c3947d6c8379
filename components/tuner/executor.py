"""TFX's Tuner executor, unchanged, and then every trial's record kept in the outputs.

TFX's own executor writes `best_hyperparameters.txt` and `tuner_results.json` (completed
trials, their scores and hyperparameter values). The trials themselves, a failed one's status
and message too, and the metrics of each trial's best epoch, are KerasTuner's
`trial_*/trial.json` under the search directory, which a tuner_fn puts in
`fn_args.working_dir`: the execution's temporary directory, removed when the execution
ends. So the oracle's trials are written to `<tuner_results>/keras_tuner/trial_<id>/trial.json`
(KerasTuner's own format, whatever directory the tuner_fn chose), with `search.json` naming the
objective beside them.
"""

from __future__ import annotations

import json
import os

from absl import logging
from tfx.components.tuner import executor as tfx_tuner
from tfx.types import artifact_utils, standard_component_specs

from beamline.lineage.trials import KERAS_TUNER_DIR, SEARCH_FILE, TRIAL_FILE


def _write_json(path: str, data) -> None:
    import tensorflow as tf

    tf.io.gfile.makedirs(os.path.dirname(path))
    # default=float: numpy scalars a custom tuner may have put in its metrics.
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(data, default=float))


def write_trials(tuner, directory: str) -> int:
    """Every trial the tuner's oracle holds, as KerasTuner writes trial.json, under
    `<directory>/keras_tuner/`; returns how many. A tuner without a KerasTuner oracle writes
    none (TFX's tuner_results.json still lists its completed trials)."""
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
    return len(trials)


class Executor(tfx_tuner.Executor):
    """TFX's Tuner executor, then the trials written into the `tuner_results` output."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX's name
        if tfx_tuner.get_tune_args(exec_properties):
            raise ValueError("TuneArgs is not supported by this Tuner's Executor.")
        tuner = tfx_tuner.search(input_dict, exec_properties, self._get_tmp_dir())
        tfx_tuner.write_best_hyperparameters(tuner, output_dict)
        results = artifact_utils.get_single_uri(
            output_dict[standard_component_specs.TUNER_RESULTS_KEY]
        )
        count = write_trials(tuner, results)
        logging.info("Wrote %d trial record(s) to %s.", count, results)
