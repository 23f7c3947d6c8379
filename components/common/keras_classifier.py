"""The name module files of projects made before regression and binary models arrived import;
everything lives in `keras_tabular` now."""

from beamline_components.common.keras_tabular import (  # noqa: F401 - re-exported
    ModelSpec,
    build_model,
    export,
    run_fn,
    tuner_fn,
)
