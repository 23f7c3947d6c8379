"""The standard Beamline DAG for a tabular model (binary, multiclass or regression), shared by
the pipeline definitions.

ExampleGen (null-aware CSV) -> StatisticsGen -> StrictExampleValidator (against an imported,
curated schema) ; Transform -> [Tuner] -> Trainer -> baseline -> Evaluator -> Pusher, the
baseline found by a resolver or, for orchestrators that run no resolver, a container task
(`baseline_node`).
Tuner and Trainer wait for the validator, so data that breaks the contract stops the run before
training and push, on every orchestrator.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tensorflow_model_analysis as tfma

# Not `from tfx import v1`: that imports tfx.v1.extensions and with it google-cloud-aiplatform,
# about a third of the local run's start-up imports, for components a local run never uses.
from tfx.components import (
    Evaluator,
    FileBasedExampleGen,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common.importer import Importer
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import pusher_pb2, trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

from beamline.experiments import overrides as ov
from beamline.metadata.run_context import FIXED_HYPERPARAMETERS_KEY, MODULE_SHA256_KEY
from beamline.metrics import ACCURACY, MULTICLASS, TASK_METRICS
from beamline.settings import (
    BASELINE_BEFORE_CANDIDATE,
    BASELINE_LATEST_BLESSED,
    BASELINE_SERVING_DIR,
    OVERRIDES_APPLIED,
)
from beamline_components.atomic_pusher.component import AtomicPusher
from beamline_components.csv_example_gen.component import null_aware_csv_example_gen
from beamline_components.csv_example_gen.constants import DEFAULT_NULL_VALUES
from beamline_components.resolvers.baseline import (
    CANDIDATE_KEY,
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    LatestBlessedBeforeCandidateStrategy,
)
from beamline_components.resolvers.serving_baseline import (
    OptionalBaselineEvaluator,
    ServingBaseline,
)
from beamline_components.stock_node import StockNode
from beamline_components.strict_validator.component import StrictExampleValidator
from beamline_components.tuner.component import RecordingTuner

# Transform traces preprocessing_fn as a TF1 graph: the same analyzers and transform graph,
# built without tf.function's tracing; measured Transform 20.1 -> 14.5 s (taxi) and 12.8 ->
# 10.7 s (penguin) on the shipped data (benchmarks/pipeline_e2e.py). The module-file
# tests run preprocessing_fn in this same mode.
TRANSFORM_FORCE_TF_COMPAT_V1 = True


@dataclass(frozen=True)
class TabularSpec:
    """What differs between tabular pipelines: modules, label, task, blessing, step counts.

    A pipeline file returns `tabular_pipeline(settings, TabularSpec(...))` from its
    `create_pipeline(settings)`; everything else (the DAG, caching, the Evaluator's baseline,
    the atomic push) is shared.

    Attributes:
        transform_module: Path of the Transform module file (`preprocessing_fn`); each model
            input is named `<raw feature>_xf`.
        model_module: Path of the model module file (`run_fn`, and `tuner_fn` for the Tuner).
        label_key: The label column; the serving signature does not take it.
        task: `binary`, `multiclass` or `regression` (beamline.metrics): what the Evaluator
            computes (AUC and binary accuracy; accuracy; RMSE and MAE).
        bless_bounds: (metric name, bound) pairs a model must meet to be blessed: a lower
            bound for metrics where higher is better, an upper bound for errors (RMSE, MAE).
        max_regression: How much the task's headline metric (the first of its metrics) may
            worsen against the baseline (the latest blessed model older than the candidate)
            and still be blessed: absolute for AUC and accuracy (0.02 = two points), relative
            for errors (0.02 = 2% higher).
        drop_rows_without_label: Rows with no label are left out (CSV data; counted on the
            Examples artifact) rather than failing validation.
        slice_features: Features the Evaluator also reports metrics per value of.
        train_steps: Trainer steps.
        eval_steps: Trainer evaluation steps.
        tuner_train_steps: Steps per Tuner trial (skipped with `beamline run --no-tune`).
        tuner_eval_steps: Evaluation steps per Tuner trial.
        null_values: Cell values read as missing, besides an empty cell (default `NA`, `N/A`,
            `NaN`, `nan`, `null`, `NULL`).
    """

    transform_module: str
    model_module: str
    label_key: str
    task: str = MULTICLASS
    bless_bounds: tuple[tuple[str, float], ...] = ()
    max_regression: float = 0.02
    drop_rows_without_label: bool = False
    slice_features: tuple[str, ...] = ()
    train_steps: int = 200
    eval_steps: int = 10
    tuner_train_steps: int = 30
    tuner_eval_steps: int = 5
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES


def ClassifierSpec(  # noqa: N802 - the name pipelines written before TabularSpec call
    transform_module: str,
    model_module: str,
    label_key: str,
    accuracy_lower_bound: float = 0.8,
    max_accuracy_regression: float = 0.02,
    **others,
) -> TabularSpec:
    """A multiclass TabularSpec blessed at `accuracy_lower_bound` accuracy, losing at most
    `max_accuracy_regression` against the baseline model."""
    return TabularSpec(
        transform_module,
        model_module,
        label_key,
        task=MULTICLASS,
        bless_bounds=((ACCURACY.name, accuracy_lower_bound),),
        max_regression=max_accuracy_regression,
        **others,
    )


# Code every module file may import (imputation, the Keras classifier).
COMMON_DIR = Path(__file__).resolve().parent / "common"


def module_sha256(module_file: str) -> str:
    """Digest of the module file's directory and of components/common (all their .py files).

    Passed to the components as custom_config, it is part of their execution properties, so a
    code change invalidates the cache whether or not TFX packages the module as a wheel (the
    local runner and Kubeflow/Vertex images import module files in place).
    """
    h = hashlib.sha256()
    for directory in (Path(module_file).parent, COMMON_DIR):
        for path in sorted(directory.glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


HYPERPARAMETERS_IMPORTER = "hyperparameters_importer"
# The custom_config key of hyperparameters a run fixes (`beamline run --set`): the Tuner searches
# only the others, the Trainer takes them over the tuned ones (keras_tabular spells it too).
HYPERPARAMETERS_KEY = FIXED_HYPERPARAMETERS_KEY
# `--set bless_bounds.METRIC=VALUE` changes (or adds) the bound of one of the task's metrics.
BLESS_BOUNDS_PREFIX = "bless_bounds."
# TabularSpec fields a run may set (the modules, label and task define the pipeline itself).
SETTABLE_SPEC_FIELDS = {
    "train_steps": ov.Setting("train_steps", int, ov.SPEC_FIELD, minimum=1),
    "eval_steps": ov.Setting("eval_steps", int, ov.SPEC_FIELD, minimum=1),
    "tuner_train_steps": ov.Setting("tuner_train_steps", int, ov.SPEC_FIELD, minimum=1),
    "tuner_eval_steps": ov.Setting("tuner_eval_steps", int, ov.SPEC_FIELD, minimum=1),
    "max_regression": ov.Setting("max_regression", float, ov.SPEC_FIELD, minimum=0),
    "drop_rows_without_label": ov.Setting("drop_rows_without_label", bool, ov.SPEC_FIELD),
}


@dataclass(frozen=True)
class Overridden:
    """A spec with a run's `--set` applied, and the hyperparameters the run fixes."""

    spec: TabularSpec
    hyperparameters: dict
    # Every hyperparameter the Tuner would search is fixed: nothing is left to search.
    nothing_to_tune: bool


def model_search_space(model_module: str) -> tuple[dict, dict]:
    """(search space, defaults) of a model module's `SPEC` (keras_tabular.ModelSpec); empty for
    a module without one (its hyperparameters are then not settable)."""
    import importlib.util

    name = "beamline_model_module_" + hashlib.sha256(model_module.encode()).hexdigest()[:12]
    loader = importlib.util.spec_from_file_location(name, model_module)
    if loader is None or loader.loader is None:
        return {}, {}
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    spec = getattr(module, "SPEC", None)
    return dict(getattr(spec, "search_space", {}) or {}), dict(getattr(spec, "defaults", {}) or {})


def settable(spec: TabularSpec, search_space: Mapping, defaults: Mapping) -> dict:
    """Every name `beamline run --set` takes for this spec and model: ov.Setting by name."""
    declared = dict(SETTABLE_SPEC_FIELDS)
    for metric in TASK_METRICS[spec.task]:
        name = BLESS_BOUNDS_PREFIX + metric.name
        declared[name] = ov.Setting(name, float, ov.SPEC_FIELD)
    for name, setting in ov.hyperparameter_settings(search_space, defaults).items():
        declared.setdefault(name, setting)
    return declared


def apply_overrides(spec: TabularSpec, overrides: Mapping, pipeline: str) -> Overridden:
    """`spec` with the run's spec-field overrides applied, and its hyperparameter overrides;
    a ConfigError (before any node runs) for a name the pipeline does not declare or a bad
    value."""
    if not overrides:
        return Overridden(spec, {}, False)
    search_space, defaults = model_search_space(spec.model_module)
    declared = settable(spec, search_space, defaults)
    checked = ov.check(overrides, declared, pipeline)
    fields = {k: v for k, v in checked.items() if k in SETTABLE_SPEC_FIELDS}
    bounds = dict(spec.bless_bounds)
    for name, value in checked.items():
        if name.startswith(BLESS_BOUNDS_PREFIX):
            bounds[name[len(BLESS_BOUNDS_PREFIX):]] = value
    hyperparameters = {
        k: v for k, v in checked.items() if declared[k].where == ov.HYPERPARAMETER
    }
    spec = dataclasses.replace(spec, bless_bounds=tuple(bounds.items()), **fields)
    return Overridden(
        spec, hyperparameters, bool(search_space) and set(search_space) <= set(hyperparameters)
    )


class ParquetExampleGen(StockNode, FileBasedExampleGen):
    """FileBasedExampleGen with TFX's Parquet executor (TFX ships the executor, no component);
    FileBasedExampleGen's type name to the compiled pipeline and MLMD (StockNode)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(parquet_executor.Executor)
    NODE_ID = "ParquetExampleGen"


def example_gen_for(data_format: str, data_root: str, pattern: str, span: int | None):
    """TFX's own ExampleGen for TFRecord files of tf.Example (ImportExampleGen) or Parquet
    (FileBasedExampleGen with TFX's Parquet executor): one split, hashed 2:1 into train/eval."""
    from tfx.components import ImportExampleGen
    from tfx.proto import example_gen_pb2, range_config_pb2

    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)]
    )
    range_config = None if span is None else range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)
    )
    if data_format == "tfrecord":
        return ImportExampleGen(
            input_base=data_root, input_config=input_config, range_config=range_config
        )
    if data_format == "parquet":
        return ParquetExampleGen(
            input_base=data_root, input_config=input_config, range_config=range_config
        )
    raise ValueError(f"no ExampleGen for data format {data_format!r}")


def eval_config(spec: TabularSpec) -> tfma.EvalConfig:
    """What the Evaluator computes and blesses by: the task's metrics (beamline.metrics), each
    bound in `bless_bounds`, and no regression of the headline metric against the baseline."""
    bounds = dict(spec.bless_bounds)
    task_metrics = TASK_METRICS[spec.task]
    configs = []
    for i, metric in enumerate(task_metrics):
        threshold = None
        value = change = None
        if metric.name in bounds:
            side = "lower_bound" if metric.higher_is_better else "upper_bound"
            value = tfma.GenericValueThreshold(**{side: {"value": bounds[metric.name]}})
        if i == 0:
            change = tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER if metric.higher_is_better
                else tfma.MetricDirection.LOWER_IS_BETTER,
                **(
                    {"absolute": {"value": -spec.max_regression}} if metric.higher_is_better
                    else {"relative": {"value": spec.max_regression}}
                ),
            )
        if value is not None or change is not None:
            threshold = tfma.MetricThreshold(value_threshold=value, change_threshold=change)
        configs.append(tfma.MetricConfig(class_name=metric.class_name, threshold=threshold))
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_examples",
                label_key=spec.label_key,
                preprocessing_function_names=["transform_features"],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[f]) for f in spec.slice_features],
        metrics_specs=[
            tfma.MetricsSpec(metrics=configs + [tfma.MetricConfig(class_name="ExampleCount")])
        ],
    )


def tabular_components(
    spec: TabularSpec,
    data_root: str,
    data_pattern: str,
    schema_path: str,
    serving_dir: str,
    enable_tuning: bool,
    span: int | None = None,
    extra_spans: tuple[tuple[int, str], ...] = (),
    hyperparameters_uri: str | None = None,
    data_format: str = "csv",
    baseline_source: str = BASELINE_BEFORE_CANDIDATE,
    hyperparameters: Mapping | None = None,
    push: bool = True,
    experiment: str | None = None,
) -> list:
    """The pipeline's nodes, in a valid topological order. With `hyperparameters_uri` (an
    earlier Tuner's best_hyperparameters directory) the Trainer gets those through an Importer
    instead of a new search. `baseline_source` (beamline.settings' BASELINE_*) says which node
    finds the Evaluator's baseline model: a form the orchestrator can run. `hyperparameters`
    (a run's `--set`) are fixed: the Tuner searches the rest, the Trainer takes them over the
    tuned values. `push=False` leaves the Pusher out. A run of an `experiment` takes its
    baseline from outside that experiment (every variant judged against the same model)."""
    if data_format == "csv":
        example_gen = null_aware_csv_example_gen(
            data_root, data_pattern, spec.null_values, span, extra_spans,
            required_columns=(spec.label_key,) if spec.drop_rows_without_label else (),
        ).with_id("CsvExampleGen")
    else:
        example_gen = example_gen_for(data_format, data_root, data_pattern, span)
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = ImportSchemaGen(schema_file=schema_path)
    example_validator = StrictExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id("ExampleValidator")
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        module_file=spec.transform_module,
        custom_config={MODULE_SHA256_KEY: module_sha256(spec.transform_module)},
        # No analyzer cache: its resolver hands Transform a new input on every run, which
        # defeats caching of Transform and everything downstream (stock TFX behaviour).
        disable_analyzer_cache=True,
        # StatisticsGen already describes the raw data; Transform's own pre/post-transform
        # statistics (two more TFDV passes) cost about a third of its time on small data.
        disable_statistics=True,
        force_tf_compat_v1=TRANSFORM_FORCE_TF_COMPAT_V1,
    )
    nodes = [example_gen, statistics_gen, schema_gen, example_validator, transform]
    model_config = {MODULE_SHA256_KEY: module_sha256(spec.model_module)}
    if hyperparameters:
        # Only then: a run without overrides keeps the cache key it always had.
        model_config[HYPERPARAMETERS_KEY] = dict(hyperparameters)

    hyperparameters = None
    if enable_tuning and hyperparameters_uri:
        # The directory, not best_hyperparameters.txt: the Trainer lists the artifact's URI.
        importer = Importer(
            source_uri=hyperparameters_uri, artifact_type=standard_artifacts.HyperParameters
        ).with_id(HYPERPARAMETERS_IMPORTER)
        hyperparameters = importer.outputs["result"]
        nodes.append(importer)
    elif enable_tuning:
        # TFX's Tuner that also keeps every trial's record (TFX removes KerasTuner's own).
        tuner = RecordingTuner(
            module_file=spec.model_module,
            custom_config=model_config,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            train_args=trainer_pb2.TrainArgs(num_steps=spec.tuner_train_steps),
            eval_args=trainer_pb2.EvalArgs(num_steps=spec.tuner_eval_steps),
        )
        tuner.add_upstream_node(example_validator)
        hyperparameters = tuner.outputs["best_hyperparameters"]
        nodes.append(tuner)

    trainer = Trainer(
        module_file=spec.model_module,
        custom_config=model_config,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=hyperparameters,
        train_args=trainer_pb2.TrainArgs(num_steps=spec.train_steps),
        eval_args=trainer_pb2.EvalArgs(num_steps=spec.eval_steps),
    )
    trainer.add_upstream_node(example_validator)

    baseline = baseline_node(baseline_source, trainer.outputs["model"], serving_dir,
                             experiment)
    evaluator_class = (
        OptionalBaselineEvaluator if baseline_source == BASELINE_SERVING_DIR else Evaluator
    )
    evaluator = evaluator_class(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs[MODEL_KEY],
        eval_config=eval_config(spec),
    ).with_id("Evaluator")
    # Copy, then rename into place: no server ever sees a half-written version.
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
        ),
    )
    return nodes + [trainer, baseline, evaluator] + ([pusher] if push else [])


BASELINE_NODE = "baseline_resolver"
SERVING_BASELINE_NODE = "baseline_from_serving"


def baseline_node(source: str, candidate, serving_dir: str, experiment: str | None = None):
    """The node whose `model` output is the Evaluator's baseline (see beamline.settings); in
    an experiment's run, the newest blessed model trained outside that experiment."""
    if source == BASELINE_SERVING_DIR:
        return ServingBaseline(candidate=candidate, serving_dir=serving_dir).with_id(
            SERVING_BASELINE_NODE
        )
    if source == BASELINE_LATEST_BLESSED:
        return Resolver(
            strategy_class=LatestBlessedModelStrategy,
            **{
                MODEL_KEY: Channel(type=standard_artifacts.Model),
                MODEL_BLESSING_KEY: Channel(type=standard_artifacts.ModelBlessing),
            },
        ).with_id(BASELINE_NODE)
    if source != BASELINE_BEFORE_CANDIDATE:
        raise ValueError(f"unknown baseline source {source!r}")
    return Resolver(
        strategy_class=LatestBlessedBeforeCandidateStrategy,
        # Only when set: a run outside any experiment compiles to the same resolver as before.
        config={"outside_experiment": experiment} if experiment else None,
        **{
            CANDIDATE_KEY: candidate,
            MODEL_KEY: Channel(type=standard_artifacts.Model),
            MODEL_BLESSING_KEY: Channel(type=standard_artifacts.ModelBlessing),
        },
    ).with_id(BASELINE_NODE)


def tabular_pipeline(settings, spec: TabularSpec) -> Pipeline:
    """The standard tabular DAG for `spec`, as a pipeline built from PipelineSettings, with
    the run's overrides (`settings.overrides`, `beamline run --set`) applied."""
    applied = apply_overrides(
        spec, dict(getattr(settings, "overrides", ())), settings.pipeline_name
    )
    spec = applied.spec
    nodes = tabular_components(
        spec,
        data_root=settings.data_root,
        data_pattern=settings.data_pattern,
        schema_path=settings.schema_path,
        serving_dir=settings.serving_dir,
        enable_tuning=settings.enable_tuning and not applied.nothing_to_tune,
        span=settings.span,
        extra_spans=settings.extra_spans,
        hyperparameters_uri=getattr(settings, "hyperparameters_uri", None),
        data_format=settings.data_format,
        baseline_source=getattr(settings, "baseline_source", BASELINE_BEFORE_CANDIDATE),
        hyperparameters=applied.hyperparameters,
        push=getattr(settings, "push", True),
        experiment=getattr(settings, "experiment", None),
    )
    pipeline = build_pipeline(settings, nodes)
    setattr(pipeline, OVERRIDES_APPLIED, True)
    return pipeline


def build_pipeline(settings, components: list) -> Pipeline:
    """A tfx Pipeline from PipelineSettings (runner-agnostic: local, Kubeflow v2, Vertex)."""
    return Pipeline(
        pipeline_name=settings.pipeline_name,
        pipeline_root=settings.pipeline_root,
        components=components,
        enable_cache=True,
        metadata_connection_config=settings.metadata_connection_config,
        beam_pipeline_args=list(settings.beam_pipeline_args),
    )
