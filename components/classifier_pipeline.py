"""The standard Beamline DAG for a tabular classifier, shared by the pipeline definitions.

ExampleGen (null-aware CSV) -> StatisticsGen -> StrictExampleValidator (against an imported,
curated schema) ; Transform -> [Tuner] -> Trainer -> baseline Resolver -> Evaluator -> Pusher.
Tuner and Trainer wait for the validator, so data that breaks the contract stops the run before
training and push, on every orchestrator.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import tensorflow_model_analysis as tfma

# Not `from tfx import v1`: that imports tfx.v1.extensions and with it google-cloud-aiplatform,
# about a third of the local run's start-up imports, for components a local run never uses.
from tfx.components import (
    Evaluator,
    Pusher,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common.importer import Importer
from tfx.dsl.components.common.resolver import Resolver
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import pusher_pb2, trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

from beamline.metadata.run_context import MODULE_SHA256_KEY
from beamline_components.atomic_pusher import executor as atomic_pusher
from beamline_components.csv_example_gen.component import null_aware_csv_example_gen
from beamline_components.csv_example_gen.constants import DEFAULT_NULL_VALUES
from beamline_components.resolvers.baseline import (
    CANDIDATE_KEY,
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    LatestBlessedBeforeCandidateStrategy,
)
from beamline_components.strict_validator.component import StrictExampleValidator

# Transform traces preprocessing_fn as a TF1 graph: the same analyzers and transform graph,
# built without tf.function's tracing; measured Transform 20.1 -> 14.5 s (taxi) and 12.8 ->
# 10.7 s (penguin) on the shipped data (benchmarks/pipeline_e2e.py, issue 12). The module-file
# tests run preprocessing_fn in this same mode.
TRANSFORM_FORCE_TF_COMPAT_V1 = True


@dataclass(frozen=True)
class ClassifierSpec:
    """What differs between classifier pipelines: modules, label, thresholds, step counts.

    A pipeline file returns `classifier_pipeline(settings, ClassifierSpec(...))` from its
    `create_pipeline(settings)`; everything else (the DAG, caching, the Evaluator's baseline,
    the atomic push) is shared.

    Attributes:
        transform_module: Path of the Transform module file (`preprocessing_fn`); each model
            input is named `<raw feature>_xf`.
        model_module: Path of the model module file (`run_fn`, and `tuner_fn` for the Tuner).
        label_key: The label column; the serving signature does not take it.
        slice_features: Features the Evaluator also reports metrics per value of.
        accuracy_lower_bound: A model is blessed (and pushed) only at or above this accuracy.
        max_accuracy_regression: How much accuracy a re-trained model may lose against the
            baseline (the latest blessed model older than it) and still be blessed.
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
    slice_features: tuple[str, ...] = ()
    accuracy_lower_bound: float = 0.8
    # A re-trained model may lose this much accuracy against the baseline and still be blessed.
    max_accuracy_regression: float = 0.02
    train_steps: int = 200
    eval_steps: int = 10
    tuner_train_steps: int = 30
    tuner_eval_steps: int = 5
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES


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


def example_gen_for(data_format: str, data_root: str, pattern: str, span: int | None):
    """TFX's own ExampleGen for TFRecord files of tf.Example (ImportExampleGen) or Parquet
    (FileBasedExampleGen with TFX's Parquet executor): one split, hashed 2:1 into train/eval."""
    from tfx.components import FileBasedExampleGen, ImportExampleGen
    from tfx.components.example_gen.custom_executors import parquet_executor
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
        return FileBasedExampleGen(
            input_base=data_root,
            input_config=input_config,
            range_config=range_config,
            custom_executor_spec=executor_spec.BeamExecutorSpec(parquet_executor.Executor),
        ).with_id("ParquetExampleGen")
    raise ValueError(f"no ExampleGen for data format {data_format!r}")


def eval_config(spec: ClassifierSpec) -> tfma.EvalConfig:
    accuracy = tfma.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        threshold=tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(
                lower_bound={"value": spec.accuracy_lower_bound}
            ),
            change_threshold=tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                absolute={"value": -spec.max_accuracy_regression},
            ),
        ),
    )
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
            tfma.MetricsSpec(metrics=[accuracy, tfma.MetricConfig(class_name="ExampleCount")])
        ],
    )


def classifier_components(
    spec: ClassifierSpec,
    data_root: str,
    data_pattern: str,
    schema_path: str,
    serving_dir: str,
    enable_tuning: bool,
    span: int | None = None,
    extra_spans: tuple[tuple[int, str], ...] = (),
    hyperparameters_uri: str | None = None,
    data_format: str = "csv",
) -> list:
    """The pipeline's nodes, in a valid topological order. With `hyperparameters_uri` (an
    earlier Tuner's best_hyperparameters directory) the Trainer gets those through an Importer
    instead of a new search."""
    if data_format == "csv":
        example_gen = null_aware_csv_example_gen(
            data_root, data_pattern, spec.null_values, span, extra_spans
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

    hyperparameters = None
    if enable_tuning and hyperparameters_uri:
        # The directory, not best_hyperparameters.txt: the Trainer lists the artifact's URI.
        importer = Importer(
            source_uri=hyperparameters_uri, artifact_type=standard_artifacts.HyperParameters
        ).with_id(HYPERPARAMETERS_IMPORTER)
        hyperparameters = importer.outputs["result"]
        nodes.append(importer)
    elif enable_tuning:
        tuner = Tuner(
            module_file=spec.model_module,
            custom_config={MODULE_SHA256_KEY: module_sha256(spec.model_module)},
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
        custom_config={MODULE_SHA256_KEY: module_sha256(spec.model_module)},
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=hyperparameters,
        train_args=trainer_pb2.TrainArgs(num_steps=spec.train_steps),
        eval_args=trainer_pb2.EvalArgs(num_steps=spec.eval_steps),
    )
    trainer.add_upstream_node(example_validator)

    baseline_resolver = Resolver(
        strategy_class=LatestBlessedBeforeCandidateStrategy,
        **{
            CANDIDATE_KEY: trainer.outputs["model"],
            MODEL_KEY: Channel(type=standard_artifacts.Model),
            MODEL_BLESSING_KEY: Channel(type=standard_artifacts.ModelBlessing),
        },
    ).with_id("baseline_resolver")

    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs[MODEL_KEY],
        eval_config=eval_config(spec),
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
        ),
        # Copy, then rename into place: no server ever sees a half-written version.
        custom_executor_spec=executor_spec.ExecutorClassSpec(atomic_pusher.Executor),
    )
    return nodes + [trainer, baseline_resolver, evaluator, pusher]


def classifier_pipeline(settings, spec: ClassifierSpec) -> Pipeline:
    """The standard classifier DAG for `spec`, as a pipeline built from PipelineSettings."""
    nodes = classifier_components(
        spec,
        data_root=settings.data_root,
        data_pattern=settings.data_pattern,
        schema_path=settings.schema_path,
        serving_dir=settings.serving_dir,
        enable_tuning=settings.enable_tuning,
        span=settings.span,
        extra_spans=settings.extra_spans,
        hyperparameters_uri=getattr(settings, "hyperparameters_uri", None),
        data_format=settings.data_format,
    )
    return build_pipeline(settings, nodes)


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
