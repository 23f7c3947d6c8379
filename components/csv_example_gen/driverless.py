"""Span resolution inside the ExampleGen executor, for orchestrators that run no driver.

TFX resolves a file-based ExampleGen's `{SPAN}`/`{VERSION}`/date pattern and computes its input
fingerprint in a driver. Locally and on Airflow that driver runs in-process; for Kubeflow
Pipelines v2 TFX compiles it into the container's `lifecycle.pre_cache_check`
(tfx/orchestration/kubeflow/v2/step_builder.py, `_build_file_based_example_gen_spec`), which
Vertex AI Pipelines runs and open-source KFP's backend never reads (backend/src/v2 has no use of
a container's lifecycle). There the executor receives the pattern unresolved and no `span`
execution property, so it does here what TFX's driver for KFP v2 does
(tfx/orchestration/kubeflow/v2/file_based_example_gen/driver.py, `_run_driver`), with the same
TFX classes.
"""

from __future__ import annotations

from typing import Any

from tfx.components.example_gen import driver, input_processor, utils
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils


def driver_ran(exec_properties: dict[str, Any]) -> bool:
    """Whether a driver resolved the span: every TFX driver (local, Airflow, Vertex's
    pre_cache_check) sets the `span` execution property before the executor runs."""
    return exec_properties.get(utils.SPAN_PROPERTY_NAME) is not None


def resolve_without_driver(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """`exec_properties` as TFX's driver would have left them: the newest span (or the span
    range_config pins) and version resolved into each split's pattern, with `span`, `version`
    and `input_fingerprint` set. Raises TFX's own error when no file matches."""
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
    )
    range_config = None
    if exec_properties.get(standard_component_specs.RANGE_CONFIG_KEY):
        range_config = range_config_pb2.RangeConfig()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.RANGE_CONFIG_KEY], range_config
        )
    processor = input_processor.FileBasedInputProcessor(
        input_base, input_config.splits, range_config
    )
    span, version = processor.resolve_span_and_version()
    fingerprint = processor.get_input_fingerprint(span, version)
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    return {
        **exec_properties,
        utils.SPAN_PROPERTY_NAME: span,
        utils.VERSION_PROPERTY_NAME: version,
        utils.FINGERPRINT_PROPERTY_NAME: fingerprint,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
    }


def record_on(examples, exec_properties: dict[str, Any]) -> None:
    """The span, version and fingerprint on the Examples artifact, as the driver records them."""
    driver.update_output_artifact(exec_properties, examples.mlmd_artifact)
