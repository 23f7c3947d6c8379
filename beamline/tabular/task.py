"""The learning task a label column calls for, why, and the naive baseline a model must beat."""

from __future__ import annotations

from dataclasses import dataclass

from beamline.errors import DataError
from beamline.metrics import BINARY, MULTICLASS, REGRESSION
from beamline.tabular.profile import BOOLEAN, INTEGER, NUMBER, STRING, ColumnProfile

AUTO = "auto"
# An integer label with at most this many values is a class; more is a quantity to predict.
MAX_INTEGER_CLASSES = 10
# More classes than this is rarely a classification a small tabular model should attempt.
MAX_CLASSES = 50


@dataclass(frozen=True)
class Baseline:
    """What a model that ignores the features scores on the training data."""

    metric: str  # a beamline.metrics name
    value: float
    how: str  # "always predicting 'B' (62.7% of rows)"


@dataclass(frozen=True)
class TaskDecision:
    task: str
    reason: str
    classes: tuple[str, ...] = ()  # binary: (negative, positive); multiclass: by frequency
    baselines: tuple[Baseline, ...] = ()

    @property
    def positive(self) -> str | None:
        return self.classes[1] if self.task == BINARY else None


def decide_task(label: ColumnProfile, requested: str = AUTO, where: str = "the data"
                ) -> TaskDecision:
    """The task for `label` (`requested`, or decided from its values when AUTO)."""
    if label.present == 0:
        raise DataError(
            f"The label column {label.name!r} of {where} has no values (all {label.rows} cells "
            "are missing). Pick the column the model should predict with --label."
        )
    if label.distinct == 1:
        [(value, _)] = label.top[:1]
        raise DataError(
            f"The label column {label.name!r} of {where} holds one value only ({value!r} in "
            f"every row with a label), so there is nothing to learn. Use data where it varies, "
            "or pick another column with --label."
        )
    numeric = label.kind in (INTEGER, NUMBER)
    if requested == AUTO:
        task, reason = _auto(label, numeric)
    else:
        task, reason = requested, f"--task {requested}"
        if task == REGRESSION and not numeric:
            raise DataError(
                f"--task regression needs a numeric label, but {label.name!r} of {where} holds "
                f"text (e.g. {label.top[0][0]!r}). Use --task multiclass or binary, or --task "
                "auto to let Beamline decide."
            )
        if task == BINARY and label.distinct != 2:
            raise DataError(
                f"--task binary needs a label with two values, but {label.name!r} of {where} "
                f"has {label.distinct}. Use --task multiclass (or regression for a quantity), "
                "or --task auto."
            )
    if task != REGRESSION and label.distinct > MAX_CLASSES:
        raise DataError(
            f"The label {label.name!r} of {where} has {label.distinct} distinct values, more "
            f"than the {MAX_CLASSES} classes Beamline's classifier takes. If it is a quantity, "
            "use --task regression; otherwise group its values into fewer classes."
        )
    return TaskDecision(task, reason, _classes(label, task), _baselines(label, task))


def _auto(label: ColumnProfile, numeric: bool) -> tuple[str, str]:
    if label.distinct == 2:
        return BINARY, f"{label.name!r} has two values"
    if label.kind in (STRING, BOOLEAN):
        return MULTICLASS, f"{label.name!r} holds {label.distinct} text values"
    if label.kind == INTEGER and label.distinct <= MAX_INTEGER_CLASSES:
        return MULTICLASS, (
            f"{label.name!r} holds {label.distinct} whole numbers (at most "
            f"{MAX_INTEGER_CLASSES}: classes, not a quantity)"
        )
    assert numeric
    return REGRESSION, f"{label.name!r} holds {label.distinct} distinct numbers"


def _classes(label: ColumnProfile, task: str) -> tuple[str, ...]:
    if task == REGRESSION:
        return ()
    by_count = [str(v) for v, _ in label.top]
    if task == BINARY:
        # The rarer value is the positive class (what AUC ranks first): usually the event of
        # interest (disease, churn, fraud). Ties: the later in sorted order.
        ranked = sorted(label.top, key=lambda vc: (-vc[1], str(vc[0])))
        return (str(ranked[0][0]), str(ranked[1][0]))
    return tuple(by_count)


def _baselines(label: ColumnProfile, task: str) -> tuple[Baseline, ...]:
    if task == REGRESSION:
        return (
            Baseline("root_mean_squared_error", label.std,
                     f"always predicting the mean, {label.mean:.4g}"),
            Baseline("mean_absolute_error", label.median_abs_dev,
                     f"always predicting the median, {label.median:.4g}"),
        )
    value, count = max(label.top, key=lambda vc: vc[1])
    share = count / label.present
    how = f"always predicting {str(value)!r} ({share:.1%} of labelled rows)"
    if task == BINARY:
        return (
            Baseline("auc", 0.5, "any constant score (AUC 0.5)"),
            Baseline("binary_accuracy", share, how),
        )
    return (Baseline("sparse_categorical_accuracy", share, how),)
