"""What a loop run reused instead of computing: the last hyperparameter search.

A recurring retrain imports the best hyperparameters of the last Tuner search (beamline.runner.
tuned) rather than searching again. What that saved is measured, not assumed: the search's run
spent its Tuner's time plus its training with them; this run spent only its training. The two
trainings differ by more than noise: the first Keras model a process builds pays TensorFlow's
one-time costs (tracing, graph optimisation, lazy imports), which in the search's run the
Tuner paid. Read from MLMD after the run, so the step reports what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from beamline.metadata import run_context as rc
from beamline.runner.tuned import TUNER_NODE


@dataclass(frozen=True)
class ReusedSearch:
    run_id: str  # the run whose Tuner searched
    execution_id: int  # that Tuner execution
    seconds: float  # how long it ran (MLMD create -> last update)
    trained_there: float  # seconds its run's executions that took the hyperparameters ran
    trained_here: float  # the same in the run that reused them

    @property
    def saved(self) -> float:
        return self.seconds + self.trained_there - self.trained_here


def reused_search(store, pipeline: str, run_id: str) -> ReusedSearch | None:
    """The earlier Tuner search whose output run `run_id` used, when it ran no Tuner itself."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    run = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    node = store.get_context_by_type_and_name(rc.NODE_CONTEXT, f"{pipeline}.{TUNER_NODE}")
    if run is None or node is None:
        return None
    in_run = {e.id for e in store.get_executions_by_context(run.id)}
    searches = [
        e for e in store.get_executions_by_context(node.id)
        if e.last_known_state == pb.Execution.COMPLETE
    ]
    if not in_run or any(e.id in in_run for e in searches):
        return None  # it searched (or ran nothing)
    used = {ev.artifact_id for ev in store.get_events_by_execution_ids(list(in_run))}
    for search in sorted(searches, key=lambda e: e.id, reverse=True):
        produced = {
            ev.artifact_id
            for ev in store.get_events_by_execution_ids([search.id])
            if ev.type == pb.Event.OUTPUT
        }
        if produced & used:
            search_run = rc.run_of(store, search.id)
            there = (
                {e.id for e in store.get_executions_by_context(search_run.id)}
                if search_run is not None else set()
            )
            return ReusedSearch(
                search_run.name if search_run is not None else f"execution #{search.id}",
                search.id,
                _seconds(search),
                _consumers_seconds(store, produced, there),
                _consumers_seconds(store, produced, in_run),
            )
    return None


def _seconds(execution) -> float:
    return (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3


def _consumers_seconds(store, artifact_ids: set[int], execution_ids: set[int]) -> float:
    """How long the executions among `execution_ids` that read `artifact_ids` ran (the
    Trainer, for a search's best hyperparameters)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    readers = {
        ev.execution_id
        for ev in store.get_events_by_artifact_ids(list(artifact_ids))
        if ev.type == pb.Event.INPUT and ev.execution_id in execution_ids
    }
    return sum(_seconds(e) for e in store.get_executions_by_id(list(readers))) if readers else 0.0


def describe(reused: ReusedSearch | None, run_id: str, run_seconds: float) -> str:
    """One line for the step's output: the run's time and, when it reused a search, what was
    skipped and what that saved. Wall times of two runs on a machine others share can make the
    training here the longer by more than the search took: then it says so, not a negative
    saving."""
    took = f"run {run_id} took {run_seconds:.1f} s"
    if reused is None:
        return took
    head = (
        f"{took}; hyperparameters reused from run {reused.run_id} (Tuner execution "
        f"#{reused.execution_id}): its {reused.seconds:.1f} s search was skipped"
    )
    training = (
        f"training took {reused.trained_here:.1f} s here against {reused.trained_there:.1f} s "
        "there (the first model a process trains pays TensorFlow's one-time costs, which the "
        "search paid there)"
    )
    if reused.saved > 0:
        return f"{head}; {training}, so reusing saved {reused.saved:.1f} s"
    return f"{head}, but {training}, so reusing saved no time in this run"
