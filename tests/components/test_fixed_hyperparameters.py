"""A hyperparameter a run fixes (`beamline run --set`): KerasTuner's Fixed in the search, and
over the tuned value in the Trainer."""

from __future__ import annotations

import types

from beamline_components.common import keras_tabular as kt

SPEC = kt.ModelSpec(
    name="m", label_key="y",
    search_space={"units": [8, 16], "learning_rate": [0.003, 0.01]},
    defaults={"units": 16, "learning_rate": 0.01},
)


def test_a_fixed_hyperparameter_is_the_only_value_the_search_tries():
    hp = kt.search_space(SPEC, {"learning_rate": 0.1})
    by_name = {p.name: p for p in hp.space}
    assert type(by_name["learning_rate"]).__name__ == "Fixed"
    assert by_name["learning_rate"].value == 0.1
    assert list(by_name["units"].values) == [8, 16]  # still searched
    assert hp.values == {"units": 16, "learning_rate": 0.1}


def test_the_fixed_ones_come_from_the_components_custom_config():
    assert kt.fixed_hyperparameters(types.SimpleNamespace(custom_config={
        kt.FIXED_HYPERPARAMETERS_KEY: {"units": 8}, "module_sha256": "0"})) == {"units": 8}
    assert kt.fixed_hyperparameters(types.SimpleNamespace(custom_config=None)) == {}
    assert kt.fixed_hyperparameters(types.SimpleNamespace()) == {}


def test_the_trainer_takes_defaults_then_the_tuned_values_then_the_fixed_ones():
    tuned = kt.search_space(SPEC)
    tuned.values.update({"units": 8, "learning_rate": 0.003})
    fn_args = types.SimpleNamespace(hyperparameters=tuned.get_config(),
                                    custom_config={kt.FIXED_HYPERPARAMETERS_KEY: {"units": 32}})
    assert kt.hyperparameters_for(SPEC, fn_args) == {"units": 32, "learning_rate": 0.003}
    untuned = types.SimpleNamespace(hyperparameters=None, custom_config={})
    assert kt.hyperparameters_for(SPEC, untuned) == SPEC.defaults
