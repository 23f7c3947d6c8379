"""Beamline's file-based ExampleGens as components (TFX's declare/execute split): each compiles
exactly as TFX's FileBasedExampleGen given the same executor did, so compiled specs, MLMD type
names and earlier runs' caches see the same node, and the compilers still take it for a
file-based ExampleGen."""

from __future__ import annotations

import pytest
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.dsl.components.base import executor_spec

from beamline_components.csv_example_gen import executor
from beamline_components.csv_example_gen.component import null_aware_csv_example_gen
from beamline_components.tabular_pipeline import example_gen_for

FILE_BASED_TYPE = "tfx.components.example_gen.component.FileBasedExampleGen"


def _compiled(node, tmp_path):
    from tfx.dsl.compiler.compiler import Compiler
    from tfx.orchestration.pipeline import Pipeline

    ir = Compiler().compile(Pipeline(
        pipeline_name="gen", pipeline_root=str(tmp_path / "root"), components=[node],
    ))
    return ir.nodes[0].pipeline_node, ir.deployment_config


def _stock(declared, executor_class):
    """TFX's FileBasedExampleGen given the executor by argument, as Beamline built it before."""
    from google.protobuf import json_format
    from tfx.proto import example_gen_pb2, range_config_pb2

    def parsed(name, message):  # the component keeps its config protos as JSON
        text = declared.exec_properties.get(name)
        return json_format.Parse(text, message()) if text else None

    return FileBasedExampleGen(
        input_base=declared.exec_properties["input_base"],
        input_config=parsed("input_config", example_gen_pb2.Input),
        custom_config=parsed("custom_config", example_gen_pb2.CustomConfig),
        range_config=parsed("range_config", range_config_pb2.RangeConfig),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor_class),
    ).with_id(declared.id)


@pytest.mark.parametrize(
    ("build", "executor_class", "node_id"),
    [
        (lambda d: null_aware_csv_example_gen(d, span=3, required_columns=("species",))
         .with_id("CsvExampleGen"), executor.Executor, "CsvExampleGen"),
        (lambda d: example_gen_for("parquet", d, "*.parquet", None), parquet_executor.Executor,
         "ParquetExampleGen"),
    ],
    ids=["csv", "parquet"],
)
def test_the_example_gen_compiles_as_file_based_example_gen_with_its_executor(
    tmp_path, build, executor_class, node_id
):
    declared = build(str(tmp_path / "data"))
    assert isinstance(declared, FileBasedExampleGen)  # what deploy/compile.py checks
    assert declared.executor_spec.executor_class is executor_class
    assert _compiled(declared, tmp_path) == _compiled(_stock(declared, executor_class), tmp_path)
    node, _ = _compiled(declared, tmp_path)
    assert (node.node_info.id, node.node_info.type.name) == (node_id, FILE_BASED_TYPE)
