"""The baseline for a candidate model: the latest blessed model *older than the candidate*.

TFX's LatestBlessedModelStrategy returns the latest blessed model, which on an unchanged re-run
is the (cached) candidate itself: Evaluator then sees a new baseline input and re-runs, and so
does everything after it. Resolving relative to the candidate keeps the Evaluator's inputs
identical across unchanged re-runs, so they come from the cache.
"""

from __future__ import annotations

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common import resolver as resolver_strategy
from tfx.types import standard_artifacts

from beamline.metadata import run_context as rc

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"

# Custom properties written by the Evaluator on ModelBlessing artifacts.
_BLESSED = "blessed"
_CURRENT_MODEL_ID = "current_model_id"


def latest_blessed_before(
    candidate_id: int | None, models: list, blessings: list
) -> tuple[list, list]:
    """([model], [blessing]) of the newest blessed model with id < candidate_id, or ([], [])."""
    blessed = {
        b.get_int_custom_property(_CURRENT_MODEL_ID): b
        for b in blessings
        if b.get_int_custom_property(_BLESSED) == 1
    }
    for model in sorted(models, key=lambda a: a.id, reverse=True):
        if candidate_id is not None and model.id >= candidate_id:
            continue
        if model.id in blessed:
            return [model], [blessed[model.id]]
    return [], []


def trained_in(store, experiment: str, models: list) -> set[int]:
    """The ids of `models` whose producing run was stamped with `experiment`."""
    if not models:
        return set()
    producers = {
        event.artifact_id: event.execution_id
        for event in store.get_events_by_artifact_ids([m.id for m in models])
        if event.type == metadata_store_pb2.Event.OUTPUT
    }
    inside = set()
    for model_id, execution_id in producers.items():
        run = rc.run_of(store, execution_id)
        if run is not None and rc.properties_of(run).get(rc.EXPERIMENT) == experiment:
            inside.add(model_id)
    return inside


class LatestBlessedBeforeCandidateStrategy(resolver_strategy.ResolverStrategy):
    """Resolves {candidate, model, model_blessing}: the baseline for the candidate model.

    With `outside_experiment`, models trained in that experiment's runs are passed over: every
    variant of a sweep is judged against the model the pipeline had before the experiment, not
    against a sibling blessed a minute earlier (which would make a variant's blessing depend on
    the order the variants ran in)."""

    def __init__(self, outside_experiment: str | None = None):
        self._outside_experiment = outside_experiment

    def resolve_artifacts(
        self, store, input_dict: dict[str, list[types.Artifact]]
    ) -> dict[str, list[types.Artifact]] | None:
        # TFX's legacy launcher (AirflowDagRunner) resolves the candidate channel to every
        # Trainer model of the pipeline, not only this run's: the candidate is the newest. Only
        # it is returned, so no model is both candidate and baseline (two OUTPUT events of one
        # artifact on one execution, which MLMD refuses).
        candidates = sorted(input_dict.get(CANDIDATE_KEY, []), key=lambda a: a.id)[-1:]
        candidate_id = candidates[0].id if candidates else None
        models = [
            m for m in input_dict.get(MODEL_KEY, []) if isinstance(m, standard_artifacts.Model)
        ]
        if self._outside_experiment:
            inside = trained_in(store, self._outside_experiment, models)
            models = [m for m in models if m.id not in inside]
        model, blessing = latest_blessed_before(
            candidate_id, models, input_dict.get(MODEL_BLESSING_KEY, [])
        )
        return {CANDIDATE_KEY: candidates, MODEL_KEY: model, MODEL_BLESSING_KEY: blessing}
