"""Benchmark: what recording every Tuner trial's epochs costs a search (issue 31).

The shared tuner_fn (components/common/keras_tabular.py) splits each trial's steps into up to
10 epochs, as the Trainer does, so that every trial has a learning curve: the same steps and
batches, plus a validation after every epoch and KerasTuner's checkpoint of each better epoch.
This runs penguin's real Tuner executor (Beamline's, components/tuner) on the Transform output
of a penguin run already in ROOT, with the split (what runs do now) and without it (every trial
one epoch of all its steps, as before), alternating, in this process; it prints each search's
time, the chosen hyperparameters and the medians.

    .venv/bin/python benchmarks/tuner_epochs.py --root ROOT [--repeat 3]

ROOT: a run root where `beamline run penguin` completed (its latest Transform is used).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
PIPELINE = "penguin"
MODULE = "beamline_components.penguin.model.module"
TRAIN_STEPS, EVAL_STEPS = 30, 5  # penguin's tuner_train_steps and tuner_eval_steps


def transform_outputs(root: Path) -> tuple[str, str]:
    """(transformed examples URI, transform graph URI) of the latest penguin Transform."""
    from beamline.lineage.access import open_graph
    from beamline.lineage.model import COMPLETE

    graph = open_graph(root, None, PIPELINE)
    for run in reversed(graph.sorted_runs(PIPELINE)):
        for ex in graph.run_executions(run.id):
            if ex.component == "Transform" and ex.state == COMPLETE:
                uri = {key: graph.artifacts[ids[0]].uri for key, ids in ex.outputs.items()}
                return uri["transformed_examples"], uri["transform_graph"]
    raise SystemExit(f"No completed penguin Transform in {root}: run `beamline run penguin "
                     f"--root {root}` first.")


def search(examples_uri: str, graph_uri: str, split: bool) -> tuple[float, dict]:
    from tfx.proto import trainer_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    import beamline_components.common.keras_tabular as kt
    from beamline_components.tuner.executor import Executor

    real = kt.epoch_split
    if not split:
        kt.epoch_split = lambda total, max_epochs=kt.MAX_EPOCHS: (1, total)
    tmp = Path(tempfile.mkdtemp(prefix="beamline-tuner-bench-"))
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    transform = standard_artifacts.TransformGraph()
    transform.uri = graph_uri
    best = standard_artifacts.HyperParameters()
    best.uri = str(tmp / "best")
    results = standard_artifacts.TunerResults()
    results.uri = str(tmp / "results")
    start = time.perf_counter()
    try:
        Executor(Executor.Context(tmp_dir=str(tmp / "work"), unique_id="1")).Do(
            {specs.EXAMPLES_KEY: [examples], specs.TRANSFORM_GRAPH_KEY: [transform]},
            {specs.BEST_HYPERPARAMETERS_KEY: [best], specs.TUNER_RESULTS_KEY: [results]},
            {
                specs.MODULE_PATH_KEY: MODULE,
                specs.TRAIN_ARGS_KEY: proto_utils.proto_to_json(
                    trainer_pb2.TrainArgs(num_steps=TRAIN_STEPS)),
                specs.EVAL_ARGS_KEY: proto_utils.proto_to_json(
                    trainer_pb2.EvalArgs(num_steps=EVAL_STEPS)),
            },
        )
        took = time.perf_counter() - start
        chosen = json.loads((tmp / "best" / "best_hyperparameters.txt").read_text())["values"]
    finally:
        kt.epoch_split = real
        shutil.rmtree(tmp, ignore_errors=True)
    return took, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="A run root with a penguin run.")
    parser.add_argument("--repeat", type=int, default=3, help="Searches of each kind.")
    args = parser.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from beamline.runner.local import autograph_skips_tf_keras

    autograph_skips_tf_keras()  # as in a run
    examples, graph = transform_outputs(args.root)
    print(f"{platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; penguin's search: 3 trials of {TRAIN_STEPS} steps, "
          f"{EVAL_STEPS} validation steps")
    search(examples, graph, True)  # warm-up: imports and the first graph of the process
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeat):
        for split in (False, True):
            took, chosen = search(examples, graph, split)
            times[split].append(took)
            label = "10 epochs of 3" if split else "1 epoch of 30 "
            print(f"{label}: {took:6.1f} s, chose {chosen}")
    before, after = (statistics.median(times[k]) for k in (False, True))
    print(f"median: one epoch {before:.1f} s, split {after:.1f} s ({after / before:.2f}x); "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
