"""Declares NullAwareCsvExampleGen: FileBasedExampleGen with the null-aware CSV executor.

The class declares its executor (TFX's declare/execute split, as atomic_pusher/component.py
follows it) instead of each instance overriding it with `custom_executor_spec=`. It stays a
FileBasedExampleGen: TFX's FileBasedDriver resolves its span, the compilers treat it as a
file-based ExampleGen (beamline/deploy/compile.py, TFX's Kubeflow step builder), and its type
name in the compiled pipeline and in MLMD is FileBasedExampleGen's (StockNode), as when the
executor was passed in, so earlier runs' cached examples are reused.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2

from beamline_components.csv_example_gen import executor
from beamline_components.csv_example_gen.constants import (
    CUSTOM_CONFIG_EXTRA_FINGERPRINT,
    CUSTOM_CONFIG_EXTRA_PATTERNS,
    CUSTOM_CONFIG_NULL_VALUES,
    CUSTOM_CONFIG_REQUIRED_COLUMNS,
    CUSTOM_CONFIG_SPAN_RANGE,
    DEFAULT_NULL_VALUES,
)
from beamline_components.stock_node import StockNode


class NullAwareCsvExampleGen(StockNode, FileBasedExampleGen):
    """FileBasedExampleGen reading CSV files whose configured null tokens are missing values."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    NODE_ID = "FileBasedExampleGen"  # TFX's default; Beamline's pipelines name it CsvExampleGen


def null_aware_csv_example_gen(
    input_base: str,
    pattern: str = "*.csv",
    null_values: Sequence[str] = DEFAULT_NULL_VALUES,
    span: int | None = None,
    extra_spans: Sequence[tuple[int, str]] = (),
    required_columns: Sequence[str] = (),
) -> NullAwareCsvExampleGen:
    """CsvExampleGen over `input_base`/`pattern` reading `null_values` cells as missing values.

    One input split, hashed 2:1 into train and eval (TFX's default output config). A pattern
    with a TFX span spec ({SPAN}, {YYYY}{MM}{DD}) reads `span` (TFX's StaticRange span:span),
    or the latest span when `span` is None. TFX's ExampleGen reads one span per run; the
    earlier spans of a range (`extra_spans`: (span, its file pattern)) are read by this
    executor alongside it, and the Examples record them (custom property `span_range`). A row
    with no value in one of `required_columns` (the label) is left out, and the Examples count
    them (custom property `rows_without_label`).
    """
    config: dict = {CUSTOM_CONFIG_NULL_VALUES: list(null_values)}
    if required_columns:
        config[CUSTOM_CONFIG_REQUIRED_COLUMNS] = list(required_columns)
    if extra_spans:
        patterns = [p for _, p in extra_spans]
        config[CUSTOM_CONFIG_EXTRA_PATTERNS] = patterns
        config[CUSTOM_CONFIG_EXTRA_FINGERPRINT] = _files_fingerprint(input_base, patterns)
        config[CUSTOM_CONFIG_SPAN_RANGE] = f"{extra_spans[0][0]}-{span}"
    custom_config = example_gen_pb2.CustomConfig()
    custom_config.custom_config.Pack(_json_struct(config))
    range_config = None
    if span is not None:
        range_config = range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(
                start_span_number=span, end_span_number=span
            )
        )
    return NullAwareCsvExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)]
        ),
        range_config=range_config,
        custom_config=custom_config,
    )


def _files_fingerprint(input_base: str, patterns: Sequence[str]) -> str:
    """Names, sizes and modification times of the files (what TFX's input fingerprint holds)."""
    parts = []
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(input_base, pattern))):
            st = os.stat(path)
            parts.append(f"{os.path.relpath(path, input_base)}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def _json_struct(value: dict):
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(value)
    return struct
