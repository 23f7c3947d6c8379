"""Palmer penguins: species from body measurements (344 rows with real missing values)."""

from __future__ import annotations

from beamline.registry import package_path
from beamline.settings import PipelineSettings

# One row of raw features, as a JSON client sends it to the pushed model's serving_default.
SAMPLE_INSTANCE = {
    "island": "Biscoe",
    "bill_length_mm": 46.5,
    "bill_depth_mm": 15.0,
    "flipper_length_mm": 215,
    "body_mass_g": 5200,
    "sex": "female",
}


def default_data_root() -> str:
    """The penguins CSV that ships inside the `palmerpenguins` package (found, not imported).

    A file path: that directory also holds penguins-raw.csv, a different table.
    """
    return str(package_path("palmerpenguins", "data", "penguins.csv"))


def create_pipeline(settings: PipelineSettings):
    from beamline_components.tabular_pipeline import ClassifierSpec, tabular_pipeline

    # This example's module files ship inside the installed beamline_components package.
    components = package_path("beamline_components", "penguin")
    spec = ClassifierSpec(
        transform_module=str(components / "transform" / "module.py"),
        model_module=str(components / "model" / "module.py"),
        label_key="species",
        slice_features=("island",),
        accuracy_lower_bound=0.8,
    )
    return tabular_pipeline(settings, spec)
