"""A DAG scheduler: runs each node as soon as its upstream nodes are done, up to N at once.

Pure orchestration logic, no TFX: `launch(node_id)` does the work and returns how the node
ended ("complete", "cached" or "resolved"); an exception fails the node. After a failure
nothing new starts (running nodes finish), and every node that did not start is "skipped".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from beamline.metadata.run_context import NodeState

RUNNING = NodeState.RUNNING
COMPLETE = NodeState.COMPLETE
CACHED = NodeState.CACHED
RESOLVED = NodeState.RESOLVED
FAILED = NodeState.FAILED
SKIPPED = NodeState.SKIPPED


@dataclass(frozen=True)
class NodeEvent:
    node_id: str
    state: str
    seconds: float = 0.0
    error: BaseException | None = None


def topological_order(upstream: Mapping[str, set[str]]) -> list[str]:
    """Node ids ordered so that every node comes after its upstream nodes."""
    order, done = [], set()
    pending = dict(upstream)
    while pending:
        ready = sorted(n for n, deps in pending.items() if deps <= done)
        if not ready:
            raise ValueError(f"cycle or unknown upstream among {sorted(pending)}")
        for node in ready:
            order.append(node)
            done.add(node)
            del pending[node]
    return order


def run_dag(
    upstream: Mapping[str, set[str]],
    launch: Callable[[str], str],
    max_parallel: int,
    on_event: Callable[[NodeEvent], None] = lambda event: None,
) -> dict[str, NodeEvent]:
    """Runs every node whose upstream nodes finished; returns each node's final event."""
    order = topological_order(upstream)
    results: dict[str, NodeEvent] = {}

    def _run(node_id: str) -> NodeEvent:
        start = time.monotonic()
        on_event(NodeEvent(node_id, RUNNING))
        try:
            state = launch(node_id)
            event = NodeEvent(node_id, state, time.monotonic() - start)
        except BaseException as exc:  # noqa: BLE001 - any failure ends this node, reported
            event = NodeEvent(node_id, FAILED, time.monotonic() - start, exc)
        on_event(event)
        return event

    # Only this thread touches `results` and `running`; node threads just return events.
    running: dict[Future, str] = {}
    failed = False
    with ThreadPoolExecutor(max_workers=max(1, max_parallel), thread_name_prefix="node") as pool:
        while True:
            finished = set(results)
            started = finished | set(running.values())
            if not failed:
                for node in order:
                    if len(running) >= max_parallel:
                        break
                    if node not in started and upstream[node] <= finished:
                        running[pool.submit(_run, node)] = node
                        started.add(node)
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                event = future.result()
                results[running.pop(future)] = event
                failed = failed or event.state == FAILED
    for node in order:
        if node not in results:
            results[node] = NodeEvent(node, SKIPPED)
            on_event(results[node])
    return results
