"""Declares StrictExampleValidator: ExampleValidator whose execution fails on anomalies."""

from __future__ import annotations

from tfx.components import ExampleValidator
from tfx.dsl.components.base import executor_spec

from beamline_components.strict_validator import executor


class StrictExampleValidator(ExampleValidator):
    """ExampleValidator that stops the pipeline when the data has anomalies."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
