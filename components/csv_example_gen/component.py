"""Declares NullAwareCsvExampleGen: FileBasedExampleGen with the null-aware CSV executor."""

from __future__ import annotations

from collections.abc import Sequence

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.csv_example_gen import executor
from components.csv_example_gen.constants import (
    CUSTOM_CONFIG_NULL_VALUES,
    DEFAULT_NULL_VALUES,
)


def null_aware_csv_example_gen(
    input_base: str,
    pattern: str = "*.csv",
    null_values: Sequence[str] = DEFAULT_NULL_VALUES,
) -> FileBasedExampleGen:
    """CsvExampleGen over `input_base`/`pattern` reading `null_values` cells as missing values.

    One input split, hashed 2:1 into train and eval (TFX's default output config).
    """
    custom_config = example_gen_pb2.CustomConfig()
    custom_config.custom_config.Pack(_json_struct({CUSTOM_CONFIG_NULL_VALUES: list(null_values)}))
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)]
        ),
        custom_config=custom_config,
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    )


def _json_struct(value: dict):
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(value)
    return struct
