"""The recording Tuner: TFX's Tuner executor run for real on a tiny KerasTuner search keeps every
trial (a failed one too, with its message) and every trial's epochs in its tuner_results output,
where the lineage reader finds them; the node stays TFX's Tuner to everything that reads a
pipeline."""

from __future__ import annotations

import json
import textwrap

from tfx.components import Tuner
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.channel import Channel
from tfx.utils import proto_utils

from beamline.lineage.epochs import TRIAL_HISTORIES_FILE
from beamline.lineage.trials import KERAS_TUNER_DIR, TUNER_RESULTS_FILE, read_search
from beamline.runner.local import autograph_skips_tf_keras
from beamline_components.tuner.component import NODE_ID, RecordingTuner
from beamline_components.tuner.executor import Executor

# A tuner_fn as a module file: the first trial's model fails to build, so the search
# has a FAILED trial beside completed ones. Two epochs per trial: KerasTuner keeps the best one.
TUNER_MODULE = textwrap.dedent(
    """
    import keras_tuner
    import numpy as np
    import tf_keras as keras
    from tfx.components.tuner.component import TunerFnResult

    calls = []

    def build(hp):
        calls.append(hp.values)
        if len(calls) == 2:  # the first call only fills the search space
            raise ValueError("this model does not fit")
        model = keras.Sequential([keras.layers.Dense(hp.Choice("units", [2, 4, 8])),
                                  keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        return model

    def tuner_fn(fn_args):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 3)).astype("float32")
        y = x.sum(axis=1)
        tuner = keras_tuner.RandomSearch(
            build, objective=keras_tuner.Objective("val_loss", "min"), max_trials=3,
            max_consecutive_failed_trials=2, directory=fn_args.working_dir, project_name="t",
            seed=1,
        )
        return TunerFnResult(tuner=tuner, fit_kwargs={
            "x": x, "y": y, "validation_data": (x[:16], y[:16]), "epochs": 2,
            "batch_size": 16, "verbose": 0,
        })
    """
)


def test_every_trial_is_kept_in_tuner_results_as_the_reader_reads_it(tmp_path):
    autograph_skips_tf_keras()  # as in a run: fitting without it transpiles tf_keras first
    module = tmp_path / "tuner_module.py"
    module.write_text(TUNER_MODULE)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    best = standard_artifacts.HyperParameters()
    best.uri = str(tmp_path / "best_hyperparameters")
    results = standard_artifacts.TunerResults()
    results.uri = str(tmp_path / "tuner_results")
    tmp = tmp_path / "executor_tmp"

    Executor(Executor.Context(tmp_dir=str(tmp), unique_id="1")).Do(
        input_dict={standard_component_specs.EXAMPLES_KEY: [examples]},
        output_dict={
            standard_component_specs.BEST_HYPERPARAMETERS_KEY: [best],
            standard_component_specs.TUNER_RESULTS_KEY: [results],
        },
        exec_properties={
            standard_component_specs.MODULE_FILE_KEY: str(module),
            standard_component_specs.TRAIN_ARGS_KEY: proto_utils.proto_to_json(
                trainer_pb2.TrainArgs(num_steps=4)
            ),
            standard_component_specs.EVAL_ARGS_KEY: proto_utils.proto_to_json(
                trainer_pb2.EvalArgs(num_steps=1)
            ),
        },
    )

    # TFX's own outputs are unchanged: its tuner_results.json lists the completed trials only.
    stock = json.loads((tmp_path / "tuner_results" / TUNER_RESULTS_FILE).read_text())
    assert len(stock) == 2
    assert (tmp_path / "tuner_results" / KERAS_TUNER_DIR).is_dir()

    search = read_search(results.uri, best.uri)
    statuses = sorted(t.status for t in search.trials)
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED"]
    failed = next(t for t in search.trials if t.status == "FAILED")
    assert "this model does not fit" in failed.message and failed.score is None
    for trial in (t for t in search.trials if t.status == "COMPLETED"):
        assert trial.best_step in (0, 1) and trial.metrics["loss"]
        assert trial.score == trial.final("val_loss")
        assert set(trial.hyperparameters) == {"units"}
        # Every epoch, where KerasTuner kept only the best: its score is the best epoch's.
        history = trial.history
        assert history.epochs == 2 and set(history.metrics) == {"loss", "val_loss"}
        assert all(len(v) == 2 and None not in v for v in history.metrics.values())
        assert trial.score == min(history.metrics["val_loss"])
        assert history.metrics["val_loss"][trial.best_step] == trial.score
        assert history.source.endswith(TRIAL_HISTORIES_FILE)
    assert failed.history is None  # it never trained an epoch
    assert [t.trial_id for t in search.trials if t.best] == [
        min((t for t in search.trials if t.status == "COMPLETED"), key=lambda t: t.score).trial_id
    ]
    assert (search.objective, search.direction) == ("val_loss", "min")
    # What TFX removes once the execution ends: the search's own directory in its tmp dir.
    assert list(tmp.glob("**/trial_*/trial.json"))


def test_the_node_is_tfx_s_tuner_with_the_recording_executor():
    tuner = RecordingTuner(
        examples=Channel(type=standard_artifacts.Examples),
        module_file="module.py",
        train_args=trainer_pb2.TrainArgs(num_steps=2),
        eval_args=trainer_pb2.EvalArgs(num_steps=1),
    )
    assert tuner.id == NODE_ID == Tuner(
        examples=Channel(type=standard_artifacts.Examples), module_file="module.py",
        train_args=trainer_pb2.TrainArgs(num_steps=2), eval_args=trainer_pb2.EvalArgs(num_steps=1),
    ).id
    assert tuner.type == Tuner.get_class_type() == "tfx.components.tuner.component.Tuner"
    assert tuner.executor_spec.executor_class is Executor
    assert set(tuner.outputs) == {"best_hyperparameters", "tuner_results"}
