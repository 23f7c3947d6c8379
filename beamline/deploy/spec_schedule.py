"""Tasks of a DAG run as soon as what they need is done, at most N at once (`run --spec`).

As Argo runs a KFP workflow's pods: a task starts once every task it depends on has finished;
the first failure starts nothing new, lets the running tasks finish, then ends the run failed.
`prepare` and `finish` run in the calling thread (they may touch one MLMD connection, which is
not thread-safe); only the work they hand over (subprocesses) runs in the pool's threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any


def run_dag(
    order: list[str],
    needs: Mapping[str, set[str]],
    prepare: Callable[[str], Callable[[], Any]],
    finish: Callable[[str, Any], None],
    failed: Callable[[str, BaseException], None],
    max_parallel: int,
) -> None:
    """Runs `prepare(task)()` for every task of `order` (a valid topological order: the
    preference among ready tasks) after all of `needs[task]`, then `finish(task, result)`; a
    task whose prepare or work raises gets `failed(task, exc)`, and the first such exception is
    raised once the running tasks are done."""
    if max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, not {max_parallel}")
    done: set[str] = set()
    started: set[str] = set()
    running: dict[Future, str] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max_parallel) as pool:
        while True:
            for task in order:
                if failure is not None or len(running) >= max_parallel:
                    break
                if task in started or not needs.get(task, set()) <= done:
                    continue
                started.add(task)
                try:
                    work = prepare(task)
                except BaseException as exc:  # noqa: BLE001 - recorded, raised below
                    failed(task, exc)
                    failure = exc
                    break
                running[pool.submit(work)] = task
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                exc = future.exception()
                if exc is None:
                    try:
                        finish(task, future.result())
                        done.add(task)
                        continue
                    except BaseException as error:  # noqa: BLE001 - recorded, raised below
                        exc = error
                failed(task, exc)
                failure = failure or exc
    if failure is not None:
        raise failure
    left = [t for t in order if t not in done]
    if left:
        raise ValueError(f"tasks {left} wait on tasks that are not in the DAG")
