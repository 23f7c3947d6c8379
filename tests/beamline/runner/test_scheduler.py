import threading

import pytest

from beamline.runner.scheduler import (
    CACHED,
    COMPLETE,
    FAILED,
    RUNNING,
    SKIPPED,
    run_dag,
    topological_order,
)

DIAMOND = {"gen": set(), "stats": {"gen"}, "transform": {"gen"}, "train": {"stats", "transform"}}


def test_topological_order_puts_upstream_first():
    order = topological_order(DIAMOND)
    assert order.index("gen") < order.index("stats") < order.index("train")
    assert order.index("transform") < order.index("train")


def test_topological_order_rejects_cycles():
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"a": {"b"}, "b": {"a"}})


def test_independent_nodes_run_concurrently():
    both_running = threading.Barrier(2, timeout=120)  # a hang guard, never a speed limit

    def launch(node):
        if node in ("stats", "transform"):
            both_running.wait()  # deadlocks (times out) unless both run at once
        return COMPLETE

    results = run_dag(DIAMOND, launch, max_parallel=2)
    assert {r.state for r in results.values()} == {COMPLETE}


def test_node_waits_for_all_upstream():
    finished = []
    transform_done = threading.Event()

    def launch(node):
        if node == "stats":  # finishes last of train's two upstreams, by construction
            assert transform_done.wait(120), "transform never finished"
        finished.append(node)
        if node == "transform":
            transform_done.set()
        return CACHED if node == "gen" else COMPLETE

    results = run_dag(DIAMOND, launch, max_parallel=3)
    assert finished.index("train") > max(finished.index("stats"), finished.index("transform"))
    assert results["gen"].state == CACHED


def test_failure_skips_what_did_not_start_and_reports_error():
    events = []

    def launch(node):
        if node == "stats":
            raise RuntimeError("boom")
        return COMPLETE

    results = run_dag(DIAMOND, launch, max_parallel=1, on_event=events.append)
    assert results["stats"].state == FAILED
    assert str(results["stats"].error) == "boom"
    assert results["train"].state == SKIPPED
    assert (("stats", RUNNING) in [(e.node_id, e.state) for e in events])
