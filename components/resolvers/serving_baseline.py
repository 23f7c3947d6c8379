"""The Evaluator's baseline found by a container task: for orchestrators that run no resolver.

Open-source Kubeflow Pipelines compiles only container and importer executors
(kubeflow/pipelines backend/src/v2/compiler/visitor.go: "non-container and non-importer executor
not implemented"), so a TFX Resolver node cannot run there. ServingBaseline does the baseline
resolver's work as an ordinary container task: it copies the newest model version in the
serving directory (the pipeline's Pusher writes a version there only for a blessed model) into
its output Model artifact, laid out as a Trainer's (`<uri>/Format-Serving/`), which the
Evaluator reads as `baseline_model`.

It takes the candidate model as an input although it does not read it: the orchestrator's cache
key then ties the baseline to the candidate (kubeflow/pipelines backend/src/v2/cacheutils/
cache.go keys a task on its input artifacts' names and its parameters). An unchanged re-run whose
Trainer is cached reuses the baseline it was evaluated against, and the Evaluator stays cached,
as with Beamline's LatestBlessedBeforeCandidateStrategy locally.

Before the first push there is no baseline: the output artifact is left without a model (KFP's
launcher allows an output with no files: backend/src/v2/component/launcher_v2.go,
uploadOutputArtifacts) and OptionalBaselineEvaluator leaves it out, so the Evaluator judges the
candidate by its absolute bounds alone, as TFX does when a resolver finds nothing.
"""

from __future__ import annotations

import os

from absl import logging
from tfx import types
from tfx.components import Evaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
SERVING_DIR_KEY = "serving_dir"
# Custom properties of the output Model: which pushed version it is a copy of.
SOURCE_PROPERTY = "baseline_source"
VERSION_PROPERTY = "baseline_version"
SAVED_MODEL_FILE = "saved_model.pb"


def newest_version(serving_dir: str) -> str | None:
    """The newest complete numeric version directory under `serving_dir` (local or remote),
    or None. A directory without saved_model.pb is a push still being copied: skipped."""
    if not fileio.exists(serving_dir):
        return None
    names = [name.rstrip("/") for name in fileio.listdir(serving_dir)]
    for version in sorted((n for n in names if n.isdigit()), key=int, reverse=True):
        if fileio.exists(os.path.join(serving_dir, version, SAVED_MODEL_FILE)):
            return version
    return None


def holds_model(model: types.Artifact) -> bool:
    """Whether a Model artifact has a SavedModel where the Evaluator looks for one."""
    return fileio.exists(os.path.join(path_utils.serving_model_dir(model.uri), SAVED_MODEL_FILE))


class Executor(base_executor.BaseExecutor):
    """Copies the newest pushed version into the output Model (nothing when none is pushed)."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX API
        serving_dir = exec_properties[SERVING_DIR_KEY]
        baseline = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        version = newest_version(serving_dir)
        if version is None:
            logging.info("No model version in %s yet: the Evaluator gets no baseline.", serving_dir)
            return
        source = os.path.join(serving_dir, version)
        io_utils.copy_dir(source, path_utils.serving_model_dir(baseline.uri))
        baseline.set_string_custom_property(SOURCE_PROPERTY, source)
        baseline.set_int_custom_property(VERSION_PROPERTY, int(version))
        logging.info("Baseline: model version %s from %s.", version, serving_dir)


class ServingBaselineSpec(types.ComponentSpec):
    PARAMETERS = {SERVING_DIR_KEY: ExecutionParameter(type=str)}
    INPUTS = {CANDIDATE_KEY: ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ServingBaseline(base_component.BaseComponent):
    """The newest model pushed to `serving_dir`, as the baseline for `candidate`."""

    SPEC_CLASS = ServingBaselineSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    # What `beamline compile` prints for this node (formatted with its execution properties).
    COMPILE_NOTE = (
        "the Evaluator's baseline is the newest model version in {serving_dir}, copied by this "
        "container task (Kubeflow Pipelines runs no resolver); none before the first push"
    )

    def __init__(self, candidate: types.BaseChannel, serving_dir: str) -> None:
        super().__init__(
            spec=ServingBaselineSpec(
                candidate=candidate,
                serving_dir=serving_dir,
                model=types.Channel(type=standard_artifacts.Model),
            )
        )


class OptionalBaselineEvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor, leaving out a baseline_model input that holds no model."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX API
        super().Do(without_empty_baseline(input_dict), output_dict, exec_properties)


def without_empty_baseline(input_dict: dict[str, list]) -> dict[str, list]:
    """`input_dict` without its baseline_model when that artifact holds no model: TFX's
    Evaluator then drops the change thresholds, as when a resolver found no baseline."""
    key = standard_component_specs.BASELINE_MODEL_KEY
    baseline = input_dict.get(key) or []
    if not baseline or holds_model(baseline[0]):
        return input_dict
    logging.info("The baseline artifact holds no model: evaluating without a baseline.")
    return {k: v for k, v in input_dict.items() if k != key}


class OptionalBaselineEvaluator(Evaluator):
    """TFX's Evaluator whose baseline may be an empty Model artifact (see module doc). Its type
    name stays TFX's Evaluator's, for everything that reads a pipeline by node type."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(OptionalBaselineEvaluatorExecutor)

    @classmethod
    def get_class_type(cls) -> str:
        return Evaluator.get_class_type()
