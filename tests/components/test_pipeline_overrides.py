"""`beamline run --set` on the tabular pipelines: spec fields replaced, hyperparameters fixed for
the Tuner and the Trainer, a pipeline that would ignore them refused, all before any node runs."""

from __future__ import annotations

import dataclasses
import types

import pytest

from beamline import registry
from beamline.errors import ConfigError
from beamline.runner.local import check_overrides
from beamline.settings import PipelineSettings


@pytest.fixture
def settings(tmp_path):
    return PipelineSettings(
        pipeline_name="penguin",
        pipeline_root=str(tmp_path / "root"),
        data_root=str(tmp_path / "data"),
        serving_dir=str(tmp_path / "serving"),
        schema_path=str(registry.get("penguin").schema_path),
    )


def _nodes(settings, **overrides):
    from beamline_pipelines import penguin

    changed = dataclasses.replace(settings, overrides=tuple(overrides.items()))
    return {c.id: c for c in penguin.create_pipeline(changed).components}


def _config(node) -> dict:
    import json

    return json.loads(node.exec_properties["custom_config"])


def test_no_overrides_keep_the_cache_key_of_every_node(settings):
    from beamline_components.tabular_pipeline import HYPERPARAMETERS_KEY

    nodes = _nodes(settings)
    assert HYPERPARAMETERS_KEY not in _config(nodes["Trainer"])
    assert HYPERPARAMETERS_KEY not in _config(nodes["Tuner"])


def test_spec_fields_and_bounds_are_replaced(settings):
    nodes = _nodes(settings, train_steps=50, **{"bless_bounds.sparse_categorical_accuracy": 0.9})
    assert nodes["Trainer"].exec_properties["train_args"] == '{\n  "num_steps": 50\n}'
    import json

    [accuracy, _] = json.loads(nodes["Evaluator"].exec_properties["eval_config"])[
        "metrics_specs"][0]["metrics"]
    assert accuracy["threshold"]["value_threshold"] == {"lower_bound": 0.9}


def test_a_hyperparameter_is_fixed_for_the_tuner_and_the_trainer(settings):
    nodes = _nodes(settings, learning_rate=0.1)
    # The Tuner still searches units and layers, with learning_rate fixed at 0.1.
    assert _config(nodes["Tuner"])["hyperparameters"] == {"learning_rate": 0.1}
    assert _config(nodes["Trainer"])["hyperparameters"] == {"learning_rate": 0.1}
    # The upstream nodes are those of a run without overrides: TFX's cache shares them.
    plain = _nodes(settings)
    for node in ("CsvExampleGen", "StatisticsGen", "ExampleValidator", "Transform"):
        assert nodes[node].exec_properties == plain[node].exec_properties


def test_fixing_every_searched_hyperparameter_skips_the_tuner(settings):
    nodes = _nodes(settings, learning_rate=0.1, units=8, layers=1)
    assert "Tuner" not in nodes
    assert nodes["Trainer"].inputs.get("hyperparameters") is None
    assert _config(nodes["Trainer"])["hyperparameters"] == {
        "learning_rate": 0.1, "units": 8, "layers": 1}


def test_unknown_names_and_bad_values_fail_before_anything_runs(settings):
    from beamline_pipelines import penguin

    bad = dataclasses.replace(settings, overrides=(("unit", 8),))
    with pytest.raises(ConfigError, match="'unit' is not a setting.*Did you mean 'units'.*"
                       "bless_bounds.sparse_categorical_accuracy"):
        check_overrides(penguin, bad)
    bad = dataclasses.replace(settings, overrides=(("layers", 1.5),))
    with pytest.raises(ConfigError, match="layers is a hyperparameter and takes an integer"):
        check_overrides(penguin, bad)
    check_overrides(penguin, dataclasses.replace(settings, overrides=(("layers", 1),)))


def test_a_pipeline_that_would_ignore_overrides_is_refused(settings):
    from beamline_components.tabular_pipeline import build_pipeline

    own_dag = types.ModuleType("own_dag")
    own_dag.create_pipeline = lambda s: build_pipeline(s, [])
    with pytest.raises(ConfigError, match="does not take overrides.*tabular_pipeline"):
        check_overrides(own_dag, dataclasses.replace(settings, overrides=(("units", 8),)))
    stock = types.ModuleType("stock")
    stock.TARGET = types.SimpleNamespace(project_form=False)
    with pytest.raises(ConfigError, match="stock TFX pipeline function"):
        check_overrides(stock, dataclasses.replace(settings, overrides=(("units", 8),)))


def test_taxi_takes_overrides_through_the_classifier_spec_shim(settings):
    from beamline_pipelines import taxi

    changed = dataclasses.replace(settings, pipeline_name="taxi",
                                  schema_path=str(registry.get("taxi").schema_path),
                                  overrides=(("units", 64), ("eval_steps", 5)))
    nodes = {c.id: c for c in taxi.create_pipeline(changed).components}
    assert _config(nodes["Trainer"])["hyperparameters"] == {"units": 64}
    assert nodes["Trainer"].exec_properties["eval_args"] == '{\n  "num_steps": 5\n}'


def test_a_variant_without_push_has_no_pusher_and_the_same_other_nodes(settings):
    from beamline_pipelines import penguin

    changed = dataclasses.replace(settings, overrides=(("units", 8),))
    pushing = {c.id: c for c in penguin.create_pipeline(changed).components}
    quiet = {c.id: c for c in penguin.create_pipeline(
        dataclasses.replace(changed, push=False)).components}
    assert "Pusher" in pushing and "Pusher" not in quiet
    assert set(pushing) - {"Pusher"} == set(quiet)
    assert quiet["Evaluator"].exec_properties == pushing["Evaluator"].exec_properties
