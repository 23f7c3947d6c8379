"""The learning tasks Beamline's tabular pipelines know, and the metrics that judge each.

One home for what a task is judged by: the pipeline's Evaluator is configured from it (the
metric classes TFMA computes), and every reader of an evaluation (model versions, the report, the
UI, experiments) picks a model's headline metric and its direction from it. Names are the keys
TFMA records for those classes (`AUC` is recorded as `auc`).
"""

from __future__ import annotations

from dataclasses import dataclass

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)


@dataclass(frozen=True)
class Metric:
    class_name: str  # the Keras/TFMA metric class the Evaluator computes
    name: str  # the key TFMA records it under
    higher_is_better: bool


AUC = Metric("AUC", "auc", True)
BINARY_ACCURACY = Metric("BinaryAccuracy", "binary_accuracy", True)
ACCURACY = Metric("SparseCategoricalAccuracy", "sparse_categorical_accuracy", True)
RMSE = Metric("RootMeanSquaredError", "root_mean_squared_error", False)
MAE = Metric("MeanAbsoluteError", "mean_absolute_error", False)

# Per task: the metric a model is blessed (and compared) by first, then the others reported.
TASK_METRICS: dict[str, tuple[Metric, ...]] = {
    BINARY: (AUC, BINARY_ACCURACY),
    MULTICLASS: (ACCURACY,),
    REGRESSION: (RMSE, MAE),
}

# Recorded beside every task's metrics: the number of examples scored, which has no better
# direction.
EXAMPLE_COUNT = "example_count"
# Names read as lower-is-better when no task lists them (the model's `loss`, Keras's
# `mean_squared_error`, `binary_crossentropy`, ...).
_LOWER_IS_BETTER_ENDINGS = ("error", "loss", "crossentropy")

# Recorded names in the order a reader wants them first, whatever the task.
_BY_NAME = {m.name: m for metrics in TASK_METRICS.values() for m in metrics}
_PREFERENCE = (AUC.name, ACCURACY.name, BINARY_ACCURACY.name, "accuracy", RMSE.name, MAE.name)


def headline_metric(task: str) -> Metric:
    return TASK_METRICS[task][0]


def known(name: str) -> Metric | None:
    return _BY_NAME.get(name)


def _base_name(name: str) -> str:
    """A recorded name without the output name TFMA puts before a multi-output model's metric
    (`outputs/root_mean_squared_error`) or the sub key after it (`precision[class_id=1]`)."""
    return name.rsplit("/", 1)[-1].split("[", 1)[0]


def higher_is_better(name: str) -> bool:
    """Direction of a recorded metric: a task's metric by its definition; another name ending in
    error, loss or crossentropy is lower-is-better; any other higher-is-better, as accuracy."""
    base = _base_name(name)
    metric = _BY_NAME.get(base)
    if metric is not None:
        return metric.higher_is_better
    return not base.lower().endswith(_LOWER_IS_BETTER_ENDINGS)


def improved(name: str, delta: float | None) -> bool | None:
    """Whether a change of `delta` in metric `name` is for the better (a falling RMSE is); None
    when nothing changed or the metric has no better direction (the example count)."""
    if not delta or _base_name(name) == EXAMPLE_COUNT:
        return None
    return (delta > 0) == higher_is_better(name)


def headline(metrics: dict[str, float]) -> tuple[str, float] | None:
    """The metric a reader wants first among recorded ones: the task's blessing metric when
    present (AUC, accuracy, RMSE), else any metric but the example count."""
    for name in _PREFERENCE:
        if name in metrics:
            return name, metrics[name]
    for name, value in sorted(metrics.items()):
        if "accuracy" in name.lower():
            return name, value
    others = [(n, v) for n, v in sorted(metrics.items()) if n != EXAMPLE_COUNT]
    return others[0] if others else None


def task_of(metrics: dict[str, float]) -> str | None:
    """The task an evaluation judged, from the metrics it recorded (None: not one of ours)."""
    for task, task_metrics in TASK_METRICS.items():
        if task_metrics[0].name in metrics:
            return task
    return None


# Names of metrics that are fractions, in [0, 1]: a chart's axis never passes 1 for them.
_FRACTIONS = ("auc", "accuracy", "precision", "recall", "specificity", "sensitivity", "prc")


def value_range(name: str) -> tuple[float, float] | None:
    """The range a recorded metric lies in, when it has one: (0, 1) for AUC, accuracy,
    precision and recall (by any output or sub key); None for errors, losses and counts."""
    base = _base_name(name).lower()
    if base == EXAMPLE_COUNT or base.endswith(_LOWER_IS_BETTER_ENDINGS):
        return None
    return (0.0, 1.0) if any(word in base for word in _FRACTIONS) else None
