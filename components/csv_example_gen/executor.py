"""Executor: TFX's CSV-to-tf.Example conversion with null tokens read as missing cells.

Stock CsvExampleGen treats "NA" as a string, which turns every numeric column with a missing
value into a BYTES column. Here null tokens become empty cells *before* column-type inference,
so a column of numbers with gaps stays numeric and its gaps are absent features (which the
schema's presence constraints then judge). Any other non-numeric string still makes the column
BYTES, so ExampleValidator reports a type anomaly instead of the run crashing.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor

# Reused (not copied) from the pinned tfx==1.16.0: the multi-line-aware CSV record reader and
# the typed cell-to-Feature conversion.
from tfx.components.example_gen.csv_example_gen.executor import (
    _ParsedCsvToTfExample,
    _ReadCsvRecordsFromTextFile,
)
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx_bsl.coders import csv_decoder

from components.csv_example_gen.constants import (
    CUSTOM_CONFIG_NULL_VALUES,
    DEFAULT_NULL_VALUES,
)


def null_values_from(exec_properties: dict[str, Any]) -> frozenset[bytes]:
    """The null tokens configured in custom_config (JSON), as bytes."""
    # custom_config arrives as the JSON form of example_gen_pb2.CustomConfig, whose Any holds
    # a Struct: {"customConfig": {"@type": ..., "value": {"null_values": [...]}}}.
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}"
    config = json.loads(raw) if isinstance(raw, str) else {}
    struct = config.get("customConfig", config.get("custom_config", {})).get("value", {})
    tokens = struct.get(CUSTOM_CONFIG_NULL_VALUES, list(DEFAULT_NULL_VALUES))
    return frozenset(t.encode("utf-8") for t in tokens)


def blank_nulls(cells: list[bytes], null_values: frozenset[bytes]) -> list[bytes]:
    """Replaces null tokens with empty cells (missing values)."""
    return [b"" if cell.strip() in null_values else cell for cell in cells]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _CsvToExampleWithNulls(  # noqa: N802 - Beam PTransform naming
    pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    csv_files = sorted(fileio.glob(pattern))
    if not csv_files:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    column_names = io_utils.load_csv_column_names(csv_files[0])
    for csv_file in csv_files[1:]:
        if io_utils.load_csv_column_names(csv_file) != column_names:
            raise RuntimeError(
                f"CSV files matching {pattern} have different headers: {csv_files[0]} has "
                f"{column_names}, {csv_file} has {io_utils.load_csv_column_names(csv_file)}. "
                "All files of one split must share one header."
            )
    null_values = null_values_from(exec_properties)
    cells = (
        pipeline
        | "CreateFilenames" >> beam.Create(csv_files)
        | "ReadFromText" >> beam.ParDo(_ReadCsvRecordsFromTextFile())
        | "ParseCSVLine" >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=","))
        | "ExtractParsedCSVLines" >> beam.Keys()
        | "BlankNulls" >> beam.Map(blank_nulls, null_values)
    )
    column_infos = beam.pvalue.AsSingleton(
        cells
        | "InferColumnTypes"
        >> beam.CombineGlobally(
            csv_decoder.ColumnTypeInferrer(column_names, skip_blank_lines=True)
        )
    )
    return cells | "ToTFExample" >> beam.ParDo(_ParsedCsvToTfExample(), column_infos)


class Executor(BaseExampleGenExecutor):
    """CSV ExampleGen executor whose null tokens are missing values."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 - TFX API
        return _CsvToExampleWithNulls
