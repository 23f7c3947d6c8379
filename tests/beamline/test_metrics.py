"""Which way each recorded metric is better, and whether a change was an improvement."""

from __future__ import annotations

from beamline.metrics import MAE, RMSE, higher_is_better, improved


def test_each_metric_has_its_direction():
    assert higher_is_better("auc") and higher_is_better("sparse_categorical_accuracy")
    assert not higher_is_better(RMSE.name) and not higher_is_better(MAE.name)
    # TFMA's output-name prefix and sub keys do not change what a metric is.
    assert not higher_is_better("outputs/root_mean_squared_error")
    assert higher_is_better("precision[class_id=1]")
    # Names no task lists: a loss or an error is lower-is-better, anything else higher.
    assert not higher_is_better("loss") and not higher_is_better("mean_squared_error")
    assert not higher_is_better("binary_crossentropy")
    assert higher_is_better("recall")


def test_a_change_is_judged_by_the_metrics_direction():
    assert improved(RMSE.name, -3.5) is True and improved(RMSE.name, 2.0) is False
    assert improved("auc", 0.01) is True and improved("auc", -0.01) is False
    assert improved("auc", 0.0) is None and improved("auc", None) is None
    assert improved("example_count", 10.0) is None
