"""The batch scheduler on its own (numpy only): batch formation, padding, queue bounds."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from beamline_serving.core.batching import QUEUE_FULL, BatchScheduler
from beamline_serving.core.config import BatchingOptions
from beamline_serving.errors import Code, ServingError

# How long a future may take before the test calls it hung: a guard against a deadlock, far
# above any batch's real latency, never a speed limit (speed lives in benchmarks/).
HANG = 120


@pytest.fixture
def scheduler():
    scheduler = BatchScheduler(1)
    yield scheduler
    scheduler.stop()


def recording_run(
    batches: list, gate: threading.Event | None = None, started: threading.Event | None = None
):
    def run(arrays):
        if started is not None:
            started.set()
        if gate is not None:
            gate.wait(300)
        batches.append({k: v.copy() for k, v in arrays.items()})
        return {"y": arrays["x"] * 10, "total": np.array(arrays["x"].shape[0])}

    return run


def test_tasks_arriving_within_the_timeout_share_a_batch(scheduler):
    batches: list = []
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=300_000)
    queue = scheduler.new_queue(options, recording_run(batches), "m")
    # The batch thread takes a batch only under the scheduler's lock: holding it while the three
    # arrive makes "within the timeout" true however slowly this thread runs.
    with scheduler.cond:
        futures = [queue.submit({"x": np.array([[i, i]])}, 1) for i in range(3)]
    results = [f.result(HANG) for f in futures]
    assert len(batches) == 1 and batches[0]["x"].shape == (3, 2)
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], [[10 * i, 10 * i]])
        assert int(result["total"]) == 3  # an output without batch dimension is shared


def test_a_full_batch_runs_without_waiting_for_the_timeout(scheduler):
    batches: list = []
    # The timeout is a day: only a full batch can run before the hang guard gives up.
    options = BatchingOptions(max_batch_size=2, batch_timeout_micros=86_400 * 10**6)
    queue = scheduler.new_queue(options, recording_run(batches), "m")
    futures = [queue.submit({"x": np.ones((1, 1))}, 1) for _ in range(2)]
    for future in futures:
        future.result(HANG)
    assert [b["x"].shape[0] for b in batches] == [2]


def test_allowed_batch_sizes_pad_with_the_first_row(scheduler):
    batches: list = []
    options = BatchingOptions(
        max_batch_size=4, batch_timeout_micros=200_000, allowed_batch_sizes=(2, 4)
    )
    queue = scheduler.new_queue(options, recording_run(batches), "m")
    with scheduler.cond:  # all three in one open batch (see the first test)
        futures = [queue.submit({"x": np.array([[float(i)]])}, 1) for i in (5, 6, 7)]
    results = [f.result(HANG) for f in futures]
    np.testing.assert_array_equal(batches[0]["x"][:, 0], [5, 6, 7, 5])
    assert [float(r["y"][0, 0]) for r in results] == [50, 60, 70]


def test_variable_length_inputs_are_padded_when_asked(scheduler):
    batches: list = []
    options = BatchingOptions(
        max_batch_size=4, batch_timeout_micros=200_000, pad_variable_length_inputs=True
    )
    queue = scheduler.new_queue(options, recording_run(batches), "m")
    with scheduler.cond:  # both in one open batch (see the first test)
        short = queue.submit({"x": np.array([[1.0]])}, 1)
        long = queue.submit({"x": np.array([[2.0, 3.0]])}, 1)
    short.result(HANG), long.result(HANG)
    np.testing.assert_array_equal(batches[0]["x"], [[1.0, 0.0], [2.0, 3.0]])


def test_queue_bound_and_task_size(scheduler):
    gate = threading.Event()
    batches: list = []
    options = BatchingOptions(max_batch_size=2, batch_timeout_micros=0, max_enqueued_batches=1)
    started = threading.Event()
    queue = scheduler.new_queue(options, recording_run(batches, gate, started), "m")
    running = queue.submit({"x": np.ones((2, 1))}, 2)  # taken by the only thread, which blocks
    assert started.wait(HANG), "the batch thread never took the first batch"
    queued = queue.submit({"x": np.ones((2, 1))}, 2)  # the one batch the queue may hold
    with pytest.raises(ServingError) as info:
        queue.submit({"x": np.ones((1, 1))}, 1)
    assert (info.value.code, info.value.message) == (Code.UNAVAILABLE, QUEUE_FULL)
    with pytest.raises(ServingError) as info:
        queue.submit({"x": np.ones((3, 1))}, 3)
    assert info.value.code == Code.INVALID_ARGUMENT
    assert info.value.message == "Task size 3 is larger than maximum input batch size 2"
    gate.set()
    running.result(HANG), queued.result(HANG)
    assert len(batches) == 2


def test_a_failing_batch_fails_each_of_its_requests(scheduler):
    def run(arrays):
        raise ValueError("boom")

    options = BatchingOptions(max_batch_size=4, batch_timeout_micros=100_000)
    queue = scheduler.new_queue(options, run, "m")
    futures = [queue.submit({"x": np.ones((1, 1))}, 1) for _ in range(2)]
    for future in futures:
        with pytest.raises(ServingError) as info:
            future.result(HANG)
        assert info.value.code == Code.INTERNAL and "boom" in info.value.message
    # The thread survived: the queue still works.
    ok = scheduler.new_queue(options, recording_run([]), "n").submit({"x": np.ones((1, 1))}, 1)
    assert ok.result(HANG)["y"].shape == (1, 1)
