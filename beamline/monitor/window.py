"""Logged requests in a time window, as one row of features per request row.

TFDV cannot read PredictionLog, so each request row becomes a dict of feature -> values, later a
tf.Example: predict inputs are split along their first (batch) dimension, classify/regress/
multi-inference requests contribute one row per tf.Example (context features merged). An input
absent from a row is omitted, never written as an empty list. Each row's answer is kept beside
it: the predicted class of a classifier (predict `scores`/`classes`, classify results) or the
predicted number of a regression model (predict `outputs`, regress results). Reading needs no
TensorFlow (beamline.monitor.log_messages): a loop step that decides from the window alone never
imports it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from beamline.errors import DataError
from beamline.monitor.log_messages import EXAMPLE, PREDICTION_LOG, messages, to_array
from beamline.timefmt import format_time
from beamline_serving.errors import ServingError
from beamline_serving.request_log.reader import LogScan, log_files, read_prediction_logs

# Predict inputs that carry serialized tf.Examples (TFX's serving_examples signatures).
EXAMPLE_INPUT_NAMES = ("examples", "input_example_tensor")

Row = dict[str, list]


class MonitorInputError(DataError):
    """The request logs cannot be monitored (missing, empty, or no requests in the window)."""


@dataclass
class VersionTraffic:
    """The rows one model version answered in the window."""

    model_name: str
    version: int
    rows: list[Row] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)  # predicted class per row, when known
    # Predicted number per row (regression models), when known.
    predicted_values: list[float] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)  # logged time (unix s) per row
    first_secs: int = 0
    last_secs: int = 0


@dataclass
class Window:
    since: dt.datetime | None
    until: dt.datetime | None
    scan: LogScan
    undecodable: int = 0  # records skipped: a tensor no decoder reads (the server never logs one)
    traffic: dict[tuple[str, int], VersionTraffic] = field(default_factory=dict)
    # Inputs each version was ever sent (all logs, not only this window): what it takes.
    inputs_sent: dict[tuple[str, int], set[str]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(len(t.rows) for t in self.traffic.values())


def _secs(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def read_window(
    directory: Path, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> Window:
    """The rows logged in [since, until) under `directory`, grouped by model version."""
    if not os.path.isdir(directory):
        raise MonitorInputError(
            f"The request log directory {directory} does not exist. Point --requests at the "
            "directory given to `beamline serve --request_log_dir` (or the directory of a "
            "logging_config filename_prefix)."
        )
    if not log_files(directory):
        raise MonitorInputError(
            f"The request log directory {directory} holds no request logs (*.tfrecord): "
            "either logging is off (serve with --request_log_dir), no request has been "
            "logged yet, or --requests names the wrong directory."
        )
    window = Window(since, until, LogScan())
    start, end = _secs(since), _secs(until)
    for record in read_prediction_logs(directory, window.scan, messages()[PREDICTION_LOG]):
        meta = record.log_metadata
        key = (meta.model_spec.name, meta.model_spec.version.value)
        try:
            rows, predicted = rows_of(record)
        except ServingError:
            window.undecodable += 1
            continue
        sent = window.inputs_sent.setdefault(key, set())
        for row in rows:
            sent.update(row)
        stamp = meta.timestamp_secs
        if (start is not None and stamp < start) or (end is not None and stamp >= end):
            continue
        traffic = window.traffic.get(key)
        if traffic is None:
            traffic = window.traffic[key] = VersionTraffic(*key, first_secs=stamp)
        traffic.rows.extend(rows)
        traffic.stamps.extend([stamp] * len(rows))
        if len(predicted) == len(rows):
            numbers = bool(predicted) and isinstance(predicted[0], float)
            (traffic.predicted_values if numbers else traffic.predicted).extend(predicted)
        traffic.first_secs = min(traffic.first_secs, stamp)
        traffic.last_secs = max(traffic.last_secs, stamp)
    if not window.traffic:
        damaged = (
            f" ({len(window.scan.damaged)} damaged file(s) skipped)" if window.scan.damaged else ""
        )
        raise MonitorInputError(
            f"No requests were logged in {directory} between {describe_bound(since, 'the start')} "
            f"and {describe_bound(until, 'now')}: {window.scan.records} record(s) in "
            f"{len(window.scan.files)} file(s){damaged}, none in the window. Widen --since/"
            "--until, or send traffic first."
        )
    return window


def describe_bound(value: dt.datetime | None, unbounded: str) -> str:
    return unbounded if value is None else format_time(value)


# ---------------------------------------------------------------------------------------------
# PredictionLog -> rows
# ---------------------------------------------------------------------------------------------


def rows_of(record) -> tuple[list[Row], list[str] | list[float]]:
    """(rows, answers) of one PredictionLog: the predicted class (str) of each row from a
    classifier, the predicted number (float) from a regression model, [] when the answer gives
    neither for every row."""
    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        response = record.predict_log.response
        rows = _predict_rows(record.predict_log.request)
        return rows, _predict_classes(response) or _predict_values(response, len(rows))
    if kind in ("classify_log", "regress_log", "multi_inference_log"):
        entry = getattr(record, kind)
        rows = _example_rows(entry.request.input)
        if kind == "classify_log":
            return rows, _classify_classes(entry.response.result)
        if kind == "regress_log":
            return rows, [float(r.value) for r in entry.response.result.regressions]
        return rows, []
    return [], []


def _values(array) -> list:
    import numpy as np

    flat = np.asarray(array).reshape(-1)
    if flat.dtype.kind in "SOU":
        return [v if isinstance(v, bytes) else str(v).encode() for v in flat.tolist()]
    if flat.dtype.kind == "f":
        return [float(v) for v in flat.tolist()]
    return [int(v) for v in flat.tolist()]


def _predict_rows(request) -> list[Row]:
    arrays = {name: to_array(tensor) for name, tensor in request.inputs.items()}
    if len(arrays) == 1:
        [(name, array)] = arrays.items()
        if name in EXAMPLE_INPUT_NAMES and array.dtype.kind in "SO":
            example = messages()[EXAMPLE]
            return [_example_row(example.FromString(v)) for v in array.reshape(-1)]
    batch = min((a.shape[0] for a in arrays.values() if a.ndim), default=1)
    rows: list[Row] = []
    for i in range(batch):
        rows.append({name: _values(a[i] if a.ndim else a) for name, a in arrays.items()})
    return rows


def _example_row(example, context=None) -> Row:
    row: Row = {}
    for source in (context, example):
        if source is None:
            continue
        for name, feature in source.features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind is not None:
                row[name] = list(getattr(feature, kind).value)
    return row


def _example_rows(holder) -> list[Row]:
    which = holder.WhichOneof("kind")
    if which == "example_list":
        return [_example_row(e) for e in holder.example_list.examples]
    if which == "example_list_with_context":
        lists = holder.example_list_with_context
        return [_example_row(e, lists.context) for e in lists.examples]
    return []


def _predict_classes(response) -> list[str]:
    import numpy as np

    if "scores" not in response.outputs:
        return []
    scores = to_array(response.outputs["scores"])
    if scores.ndim != 2:
        return []
    best = np.argmax(scores, axis=1)
    if "classes" in response.outputs:
        classes = to_array(response.outputs["classes"])
        if classes.shape == scores.shape:
            return [_text(classes[i][b]) for i, b in enumerate(best)]
    return [str(int(b)) for b in best]


def _predict_values(response, rows: int) -> list[float]:
    """A regression model's predict answer: one float per row in `outputs` ([batch], or
    [batch, 1] as a single-unit Keras head answers without a reshape)."""
    if "scores" in response.outputs or "outputs" not in response.outputs:
        return []
    values = to_array(response.outputs["outputs"])
    if values.dtype.kind != "f" or values.ndim not in (1, 2) or values.size != rows:
        return []
    if values.ndim == 2 and values.shape[1] != 1:
        return []
    return [float(v) for v in values.reshape(-1).tolist()]


def _classify_classes(result) -> list[str]:
    found = []
    for classification in result.classifications:
        if classification.classes:
            found.append(max(classification.classes, key=lambda c: c.score).label)
    return found if len(found) == len(result.classifications) else []


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def write_examples(rows: list[Row], path: Path) -> None:
    """One tf.Example per row, as a TFRecord file TFDV reads."""
    from beamline_serving.request_log.tfrecord import frame

    with open(path, "wb") as out:
        for row in rows:
            example = messages()[EXAMPLE]()
            for name, values in row.items():
                feature = example.features.feature[name]
                if values and isinstance(values[0], bytes):
                    feature.bytes_list.value.extend(values)
                elif values and isinstance(values[0], float):
                    feature.float_list.value.extend(values)
                else:
                    feature.int64_list.value.extend(values)
            out.write(frame(example.SerializeToString()))
