"""The name pipelines written before regression and binary models arrived import; the DAG lives
in `tabular_pipeline` now."""

from beamline_components.tabular_pipeline import (  # noqa: F401 - re-exported
    ClassifierSpec,
    TabularSpec,
    build_pipeline,
    eval_config,
    module_sha256,
)
from beamline_components.tabular_pipeline import tabular_pipeline as classifier_pipeline  # noqa: F401
