"""Chicago taxi: will the tip exceed 20% of the fare? (15,002 trips shipped inside TFX)."""

from __future__ import annotations

from beamline.registry import package_path
from beamline.settings import PipelineSettings

SAMPLE_INSTANCE = {
    "fare": 12.45,
    "trip_miles": 2.1,
    "trip_seconds": 720,
    "trip_start_hour": 19,
    "trip_start_day": 6,
    "trip_start_month": 5,
    "pickup_latitude": 41.89,
    "pickup_longitude": -87.63,
    "dropoff_latitude": 41.92,
    "dropoff_longitude": -87.65,
    "payment_type": "Credit Card",
    "company": "Taxi Affiliation Services",
}


def default_data_root() -> str:
    """The sample CSV inside the tfx wheel (located without importing tfx)."""
    return str(package_path("tfx", "examples", "chicago_taxi_pipeline", "data", "simple"))


def create_pipeline(settings: PipelineSettings):
    from beamline_components.tabular_pipeline import ClassifierSpec, tabular_pipeline

    # This example's module files ship inside the installed beamline_components package.
    components = package_path("beamline_components", "taxi")
    spec = ClassifierSpec(
        transform_module=str(components / "transform" / "module.py"),
        model_module=str(components / "model" / "module.py"),
        label_key="big_tip",
        slice_features=("payment_type",),
        # Roughly half of all trips tip over 20%: the bound rejects a coin flip, not a model.
        accuracy_lower_bound=0.6,
        train_steps=300,
        eval_steps=20,
        tuner_train_steps=60,
    )
    return tabular_pipeline(settings, spec)
