"""The baseline for a candidate model: the latest blessed model *older than the candidate*.

TFX's LatestBlessedModelStrategy returns the latest blessed model, which on an unchanged re-run
is the (cached) candidate itself: Evaluator then sees a new baseline input and re-runs, and so
does everything after it. Resolving relative to the candidate keeps the Evaluator's inputs
identical across unchanged re-runs, so they come from the cache.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.common import resolver as resolver_strategy
from tfx.types import standard_artifacts

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


class LatestBlessedBeforeCandidateStrategy(resolver_strategy.ResolverStrategy):
    """Resolves {candidate, model, model_blessing}: the baseline for the candidate model."""

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
        model, blessing = latest_blessed_before(
            candidate_id, models, input_dict.get(MODEL_BLESSING_KEY, [])
        )
        return {CANDIDATE_KEY: candidates, MODEL_KEY: model, MODEL_BLESSING_KEY: blessing}
