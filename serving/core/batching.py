"""Dynamic batching across concurrent requests, with TF Serving's BatchingParameters semantics.

One queue per (servable, signature); a shared pool of `num_batch_threads` threads serves all
queues. A queue has at most one open batch: tasks join it until it would exceed
`max_batch_size`; a batch runs once it is full or `batch_timeout_micros` after it opened (0: as
soon as a thread is free, so requests that arrive while the threads are busy share a batch).
When a new batch would exceed `max_enqueued_batches`, the task is refused with UNAVAILABLE
(HTTP 503), which is TF Serving's answer for a full queue.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from beamline_serving.core.config import BatchingOptions
from beamline_serving.errors import from_exception, invalid_argument, unavailable

log = logging.getLogger("beamline.serving")

Arrays = dict[str, np.ndarray]
QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


class _Task:
    __slots__ = ("inputs", "size", "future")

    def __init__(self, inputs: Arrays, size: int) -> None:
        self.inputs = inputs
        self.size = size
        self.future: Future = Future()


class BatchQueue:
    """Tasks waiting to be batched for one signature of one servable."""

    def __init__(
        self,
        scheduler: BatchScheduler,
        options: BatchingOptions,
        run: Callable[[Arrays], Arrays],
        name: str,
    ) -> None:
        self.options = options
        self.name = name
        self._scheduler = scheduler
        self._run = run
        self._timeout = options.batch_timeout_micros / 1e6
        self._open: list[_Task] = []
        self._open_size = 0
        self._open_since = 0.0
        self._closed: collections.deque[list[_Task]] = collections.deque()
        self.shut = False

    def submit(self, inputs: Arrays, size: int) -> Future:
        """Queues a task of `size` rows; the future resolves to its slice of the outputs."""
        max_size = self.options.max_batch_size
        if size > max_size:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {max_size}"
            )
        task = _Task(inputs, size)
        with self._scheduler.cond:
            if self.shut:
                raise unavailable(f"The batch queue of {self.name} is shutting down")
            if self._open and self._open_size + size > max_size:
                if len(self._closed) + 1 >= self.options.max_enqueued_batches:
                    raise unavailable(QUEUE_FULL)
                self._closed.append(self._open)
                self._open, self._open_size = [], 0
            if not self._open:
                if len(self._closed) >= self.options.max_enqueued_batches:
                    raise unavailable(QUEUE_FULL)
                self._open_since = time.monotonic()
            self._open.append(task)
            self._open_size += size
            self._scheduler.cond.notify()
        return task.future

    # Called by the scheduler with its lock held.
    def _take(self, now: float) -> list[_Task] | None:
        if self._closed:
            return self._closed.popleft()
        if self._open and (
            self.shut
            or self._open_size >= self.options.max_batch_size
            or now - self._open_since >= self._timeout
        ):
            batch, self._open, self._open_size = self._open, [], 0
            return batch
        return None

    def _deadline(self) -> float | None:
        if self._open and not self._closed:
            return self._open_since + self._timeout
        return None

    def _idle(self) -> bool:
        return not self._open and not self._closed

    def close(self) -> None:
        """No new tasks; queued ones still run (their requests already hold the servable)."""
        with self._scheduler.cond:
            self.shut = True
            self._scheduler.cond.notify_all()

    def process(self, batch: list[_Task]) -> None:
        """Runs a batch (grouping tasks whose inputs cannot be concatenated) and resolves it."""
        groups: dict[tuple, list[_Task]] = {}
        for task in batch:
            groups.setdefault(self._shape_key(task.inputs), []).append(task)
        if self.options.pad_variable_length_inputs and len(groups) > 1:
            groups = {("padded",): batch}
        for tasks in groups.values():
            try:
                self._process_group(tasks)
            except BaseException as exc:  # every waiting request must get an answer
                error = from_exception(exc)
                for task in tasks:
                    if not task.future.done():
                        task.future.set_exception(error)

    def _shape_key(self, inputs: Arrays) -> tuple:
        return tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(inputs.items()))

    def _process_group(self, tasks: list[_Task]) -> None:
        if len(tasks) == 1 and not self.options.allowed_batch_sizes:
            merged, total = tasks[0].inputs, tasks[0].size
        else:
            total = sum(t.size for t in tasks)
            merged = {}
            for key in tasks[0].inputs:
                parts = [t.inputs[key] for t in tasks]
                if self.options.pad_variable_length_inputs:
                    parts = _pad_to_common_shape(parts)
                merged[key] = np.concatenate(parts, axis=0)
        padded = _padded_size(total, self.options.allowed_batch_sizes)
        if padded > total:
            merged = {k: _pad_rows(v, padded - total) for k, v in merged.items()}
        outputs = self._run(merged)
        offset = 0
        for task in tasks:
            result = {}
            for key, value in outputs.items():
                if value.ndim and value.shape[0] == padded:
                    result[key] = value[offset : offset + task.size]
                else:  # an output without the batch dimension is the same for every task
                    result[key] = value
            offset += task.size
            task.future.set_result(result)


def _padded_size(size: int, allowed: tuple[int, ...]) -> int:
    for candidate in allowed:
        if candidate >= size:
            return candidate
    return size


def _pad_rows(array: np.ndarray, extra: int) -> np.ndarray:
    # TF Serving pads a batch with copies of its first row.
    return np.concatenate([array, np.repeat(array[:1], extra, axis=0)], axis=0)


def _pad_to_common_shape(parts: list[np.ndarray]) -> list[np.ndarray]:
    if len({p.ndim for p in parts}) != 1:
        return parts
    target = [max(p.shape[d] for p in parts) for d in range(parts[0].ndim)]
    out = []
    for p in parts:
        widths = [(0, 0)] + [(0, target[d] - p.shape[d]) for d in range(1, p.ndim)]
        if any(w[1] for w in widths):
            fill = b"" if p.dtype == object else 0
            p = np.pad(p, widths, mode="constant", constant_values=fill)
        out.append(p)
    return out


class BatchScheduler:
    """A shared pool of batch threads serving every batch queue."""

    def __init__(self, num_threads: int) -> None:
        self.cond = threading.Condition()
        self._queues: list[BatchQueue] = []
        self._next = 0
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(max(num_threads, 1))
        ]
        for thread in self._threads:
            thread.start()

    def new_queue(
        self, options: BatchingOptions, run: Callable[[Arrays], Arrays], name: str
    ) -> BatchQueue:
        queue = BatchQueue(self, options, run, name)
        with self.cond:
            self._queues.append(queue)
        return queue

    def _next_batch(self) -> tuple[BatchQueue, list[_Task]] | None:
        with self.cond:
            while not self._stopped:
                now = time.monotonic()
                count = len(self._queues)
                deadline = None
                for i in range(count):
                    queue = self._queues[(self._next + i) % count]
                    batch = queue._take(now)
                    if batch:
                        self._next = (self._next + i + 1) % max(count, 1)
                        return queue, batch
                    queue_deadline = queue._deadline()
                    if queue_deadline is not None:
                        deadline = (
                            queue_deadline if deadline is None else min(deadline, queue_deadline)
                        )
                # Drop queues of unloaded servables once they are drained.
                self._queues = [q for q in self._queues if not (q.shut and q._idle())]
                self.cond.wait(None if deadline is None else max(deadline - now, 0.0))
            return None

    def _work(self) -> None:
        while True:
            item = self._next_batch()
            if item is None:
                return
            queue, batch = item
            try:
                queue.process(batch)
            except BaseException:
                log.exception("Batch processing failed")

    def stop(self) -> None:
        """Stops the threads; tasks still queued are answered UNAVAILABLE."""
        with self.cond:
            self._stopped = True
            pending = []
            for queue in self._queues:
                queue.shut = True
                pending.extend(queue._closed)
                pending.append(queue._open)
                queue._closed.clear()
                queue._open = []
            self.cond.notify_all()
        for tasks in pending:
            for task in tasks:
                if not task.future.done():
                    task.future.set_exception(unavailable("The server is shutting down"))
        for thread in self._threads:
            thread.join(timeout=10)
