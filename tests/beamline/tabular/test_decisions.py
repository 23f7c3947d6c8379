"""What a table's columns are taken for: the task from the label, how each feature is prepared,
and the baseline a model must beat (pandas only, no TensorFlow)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beamline.errors import DataError
from beamline.metrics import BINARY, MULTICLASS, REGRESSION, headline, higher_is_better, task_of
from beamline.tabular.plan import CATEGORICAL, DROPPED, NUMERIC, plan_features
from beamline.tabular.profile import BOOLEAN, INTEGER, NUMBER, STRING, profile_column, profile_frame
from beamline.tabular.render import bless_bounds
from beamline.tabular.task import decide_task


def _profile(values, name="y"):
    return profile_column(name, pd.Series(values))


@pytest.mark.parametrize(
    ("values", "task", "because"),
    [
        (["yes", "no", "no"] * 10, BINARY, "two values"),
        ([0, 1, 1] * 10, BINARY, "two values"),
        (["a", "b", "c"] * 10, MULTICLASS, "3 text values"),
        ([1, 2, 3, 4, 5] * 6, MULTICLASS, "5 whole numbers"),
        (list(range(40)), REGRESSION, "40 distinct numbers"),
        ([x / 7 for x in range(30)], REGRESSION, "30 distinct numbers"),
    ],
)
def test_auto_decides_the_task_from_the_label_and_says_why(values, task, because):
    decision = decide_task(_profile(values), "auto")
    assert decision.task == task
    assert because in decision.reason


def test_binary_positive_class_is_the_rarer_value_and_the_baselines_are_the_majority():
    decision = decide_task(_profile(["benign"] * 7 + ["malignant"] * 3), "auto")
    assert decision.classes == ("benign", "malignant")
    assert decision.positive == "malignant"
    by_metric = {b.metric: b.value for b in decision.baselines}
    assert by_metric == {"auc": 0.5, "binary_accuracy": pytest.approx(0.7)}


def test_regression_baselines_are_the_mean_and_median_predictors():
    values = [1.0, 2.0, 3.0, 10.0]
    decision = decide_task(_profile(values), "regression")
    by_metric = {b.metric: b.value for b in decision.baselines}
    series = pd.Series(values)
    assert by_metric["root_mean_squared_error"] == pytest.approx(series.std(ddof=0))
    assert by_metric["mean_absolute_error"] == pytest.approx(
        (series - series.median()).abs().mean()
    )


def test_missing_labels_do_not_count_toward_the_baseline():
    decision = decide_task(_profile(["a", "a", "b", None, None, None]), "auto")
    assert {b.metric: b.value for b in decision.baselines}["binary_accuracy"] == pytest.approx(
        2 / 3
    )


@pytest.mark.parametrize(
    ("values", "task", "says"),
    [
        (["same"] * 10, "auto", "one value only"),
        ([None] * 10, "auto", "has no values"),
        (["a", "b"] * 5, "regression", "needs a numeric label"),
        (["a", "b", "c"] * 5, "binary", "two values"),
        ([f"c{i}" for i in range(60)], "auto", "more than the 50 classes"),
    ],
)
def test_a_label_that_cannot_be_learned_is_refused_naming_the_column(values, task, says):
    with pytest.raises(DataError) as error:
        decide_task(_profile(values, "outcome"), task, "data.csv")
    assert says in str(error.value) and "'outcome'" in str(error.value)


def test_each_feature_is_planned_by_its_kind_and_useless_columns_are_left_out_with_a_reason():
    n = 40
    frame = pd.DataFrame({
        "row": list(range(1, n + 1)),
        "customer_id": [f"c-{i}" for i in range(n)],
        "constant": ["x"] * n,
        "empty": [None] * n,
        "age": [20 + (i * 7) % 31 for i in range(n)],
        "plan": ["basic", "pro"] * (n // 2),
        "rooms": [1, 2, 3] * 13 + [1],
        "income": [1000.5 + i * 3.25 for i in range(n)],
        "active": ["true", "false"] * (n // 2),
        "label": [0, 1] * (n // 2),
    })
    frame["rooms"] = frame["rooms"].astype("Int64")
    plans = {p.name: p for p in plan_features(profile_frame(frame), "label")}
    assert "label" not in plans
    kinds = {name: p.kind for name, p in plans.items()}
    assert kinds == {
        "row": DROPPED, "customer_id": DROPPED, "constant": DROPPED, "empty": DROPPED,
        "age": NUMERIC, "plan": CATEGORICAL, "rooms": CATEGORICAL, "income": NUMERIC,
        "active": CATEGORICAL,
    }
    assert "row number" in plans["row"].reason
    assert "an id or free text" in plans["customer_id"].reason
    assert "same value" in plans["constant"].reason
    assert "every cell is missing" in plans["empty"].reason


def test_column_kinds():
    assert _profile([1, 2, None]).kind == NUMBER  # pandas reads gaps in ints as floats
    assert profile_column("x", pd.Series([1, 2, None], dtype="Int64")).kind == INTEGER
    assert _profile(["a", None]).kind == STRING
    assert _profile([True, False]).kind == BOOLEAN
    assert _profile(["TRUE", "false"]).kind == BOOLEAN


def test_bless_bounds_beat_the_baselines_in_each_metrics_direction():
    binary = decide_task(_profile(["a"] * 6 + ["b"] * 4), "auto")
    regression = decide_task(_profile([float(i) for i in range(30)]), "auto")
    for decision in (binary, regression):
        for baseline, (metric, bound) in zip(decision.baselines, bless_bounds(decision),
                                             strict=True):
            assert metric == baseline.metric
            if higher_is_better(metric):
                assert bound > baseline.value
            else:
                assert bound < baseline.value


def test_headline_metric_and_task_from_recorded_metrics():
    assert headline({"example_count": 9, "auc": 0.9, "binary_accuracy": 0.8}) == ("auc", 0.9)
    assert headline({"root_mean_squared_error": 3.0, "mean_absolute_error": 2.0}) == (
        "root_mean_squared_error", 3.0
    )
    assert headline({"example_count": 9}) is None
    assert task_of({"root_mean_squared_error": 3.0}) == REGRESSION
    assert task_of({"sparse_categorical_accuracy": 0.9}) == MULTICLASS
    assert task_of({"example_count": 1}) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-5, 5), st.floats(-1e6, 1e6)), min_size=1,
                max_size=60))
def test_any_numeric_label_is_decided_or_refused_with_a_data_error(values):
    series = pd.Series(values, dtype="float64")
    profile = profile_column("y", series)
    try:
        decision = decide_task(profile, "auto")
    except DataError:
        assert profile.distinct < 2 or profile.distinct > 50
        return
    assert decision.task in (BINARY, MULTICLASS, REGRESSION)
    assert all(b.value == b.value for b in decision.baselines)  # never NaN
