"""Prometheus text metrics with TF Serving's names, labels and buckets.

Rendered like TF Serving's PrometheusExporter (util/prometheus_exporter.cc): `/` in metric names
becomes `:`, histograms get cumulative `_bucket{le=...}` lines ending in `+Inf`, then `_sum` and
`_count`. The metrics are the ones TF Serving records per request and per warm-up.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable


def _exponential(scale: float, growth: float, count: int) -> list[float]:
    return [scale * growth**i for i in range(count)]


# Buckets::Exponential(10, 1.8, 33): microseconds up to ~20 minutes.
LATENCY_BUCKETS = _exponential(10, 1.8, 33)
# Buckets::Exponential(1, 2, 15): examples per request.
EXAMPLE_BUCKETS = _exponential(1, 2, 15)


def _number(value: float) -> str:
    # absl::StrCat(double): %g with 6 significant digits.
    return f"{value:g}"


# The model_name of requests for models this server does not serve: the name is the client's
# choice, and one cell per name would grow without bound. No served model has an empty name.
UNSERVED_MODEL = ""
# Label sets one metric keeps. Past it, new ones are added up in one OVERFLOW cell, so the page
# and the memory stay bounded whatever values reach a label; ':' is in no model name.
MAX_CELLS = 10_000
OVERFLOW = ":overflow"
# The exposition format's escapes for label values: a raw newline would end the sample line.
_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def _escape(value: str) -> str:
    return value.translate(_LABEL_ESCAPES)


class _Metric:
    def __init__(
        self, name: str, help_text: str, labels: tuple[str, ...], max_cells: int = MAX_CELLS
    ) -> None:
        self.name = name
        self.prom_name = "".join(c if c.isalnum() or c == "_" else ":" for c in name)
        self.help = help_text
        self.labels = labels
        self.lock = threading.Lock()
        self.max_cells = max_cells
        self.cells: dict = {}

    def _key(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """The cell `values` count in (call under the lock): their own while there is room."""
        if values in self.cells or len(self.cells) < self.max_cells:
            return values
        return (OVERFLOW,) * len(values)

    def _label_text(self, values: tuple[str, ...]) -> str:
        return ",".join(f'{k}="{_escape(v)}"' for k, v in zip(self.labels, values, strict=True))


class Counter(_Metric):
    def inc(self, *values: str, by: int = 1) -> None:
        with self.lock:
            key = self._key(values)
            self.cells[key] = self.cells.get(key, 0) + by

    def snapshot(self) -> list:
        with self.lock:
            return [[list(k), v] for k, v in self.cells.items()]

    def render(self, peers: list[list] = ()) -> list[str]:
        with self.lock:
            merged = dict(self.cells)
        for snapshot in peers:
            for key, value in snapshot:
                merged[tuple(key)] = merged.get(tuple(key), 0) + value
        cells = sorted(merged.items())
        lines = [f"# TYPE {self.prom_name} counter"]
        lines += [f"{self.prom_name}{{{self._label_text(k)}}} {v}" for k, v in cells]
        return lines


class Histogram(_Metric):
    def __init__(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...],
        buckets: list[float],
        max_cells: int = MAX_CELLS,
    ) -> None:
        super().__init__(name, help_text, labels, max_cells)
        self.buckets = buckets

    def observe(self, value: float, *values: str) -> None:
        index = bisect.bisect_right(self.buckets, value)
        with self.lock:
            key = self._key(values)
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = [[0] * (len(self.buckets) + 1), 0.0]
            cell[0][index] += 1
            cell[1] += value

    def snapshot(self) -> list:
        with self.lock:
            return [[list(k), list(v[0]), v[1]] for k, v in self.cells.items()]

    def render(self, peers: list[list] = ()) -> list[str]:
        with self.lock:
            merged = {k: (list(v[0]), v[1]) for k, v in self.cells.items()}
        for snapshot in peers:
            for key, counts, total in snapshot:
                mine = merged.get(tuple(key))
                if mine is None:
                    merged[tuple(key)] = (list(counts), total)
                else:
                    added = [a + b for a, b in zip(mine[0], counts, strict=True)]
                    merged[tuple(key)] = (added, mine[1] + total)
        cells = sorted(merged.items())
        lines = [f"# TYPE {self.prom_name} histogram"]
        for key, (counts, total) in cells:
            labels = self._label_text(key)
            prefix = f"{self.prom_name}_bucket{{{labels}{',' if labels else ''}"
            cumulative = 0
            for i, count in enumerate(counts):
                cumulative += count
                limit = _number(self.buckets[i]) if i < len(self.buckets) else "+Inf"
                lines.append(f'{prefix}le="{limit}"}} {cumulative}')
            lines.append(f"{self.prom_name}_sum{{{labels}}} {_number(total)}")
            lines.append(f"{self.prom_name}_count{{{labels}}} {cumulative}")
        return lines


class Metrics:
    """The server's metrics registry."""

    def __init__(self) -> None:
        self.request_count = Counter(
            "/tensorflow/serving/request_count",
            "The total number of requests.",
            ("model_name", "status"),
        )
        self.request_latency = Histogram(
            "/tensorflow/serving/request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint"),
            LATENCY_BUCKETS,
        )
        self.runtime_latency = Histogram(
            "/tensorflow/serving/runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ("model_name", "API", "runtime"),
            LATENCY_BUCKETS,
        )
        self.example_counts = Histogram(
            "/tensorflow/serving/request_example_counts",
            "The number of tensorflow.Examples per request.",
            ("model",),
            EXAMPLE_BUCKETS,
        )
        self.example_count_total = Counter(
            "/tensorflow/serving/request_example_count_total",
            "The total number of tensorflow.Examples.",
            ("model",),
        )
        self.warmup_latency = Histogram(
            "/tensorflow/serving/model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            ("model_path", "status"),
            LATENCY_BUCKETS,
        )
        self.warmup_records = Counter(
            "/tensorflow/serving/model_warmup_records_read",
            "Total number of warmup records read during model warmup.",
            ("model_path", "status"),
        )
        self.batch_size = Histogram(
            "/tensorflow/serving/batching_session/batch_size",
            "Tracks the batch size distribution on processing (Beamline).",
            ("model_name",),
            EXAMPLE_BUCKETS,
        )
        self.request_log_count = Counter(
            "/tensorflow/serving/request_log_count",
            "Sampled requests by what became of their log record: logged, dropped (the "
            "logger's queue was full) or error (Beamline).",
            ("model_name", "outcome"),
        )
        self._all = [
            self.request_count,
            self.request_latency,
            self.runtime_latency,
            self.example_counts,
            self.example_count_total,
            self.warmup_latency,
            self.warmup_records,
            self.batch_size,
            self.request_log_count,
        ]
        # Returns the other processes' snapshots (serving/workers.py); none by default.
        self.peers: Callable[[], list[dict[str, list]]] = list

    def record_request(
        self, model: str, api: str, entrypoint: str, status: str, micros: float
    ) -> None:
        """What TF Serving records per request: latency only for OK, a count for every status."""
        if status == "OK":
            self.request_latency.observe(micros, model, api, entrypoint)
        self.request_count.inc(model, status)

    def record_examples(self, model: str, count: int) -> None:
        self.example_counts.observe(count, model)
        self.example_count_total.inc(model, by=count)

    def snapshot(self) -> dict[str, list]:
        """This process's points, for the other processes serving the same port to add."""
        return {metric.name: metric.snapshot() for metric in self._all}

    def render(self) -> str:
        """The Prometheus page (metrics with no points are left out, as TF Serving does), with
        the points of the other processes serving the same port (`peers`) added in."""
        peers = self.peers()
        lines: list[str] = []
        for metric in sorted(self._all, key=lambda m: m.name):
            theirs = [peer.get(metric.name, []) for peer in peers]
            if metric.cells or any(theirs):
                lines.extend(metric.render(theirs))
        return "\n".join(lines) + "\n"
