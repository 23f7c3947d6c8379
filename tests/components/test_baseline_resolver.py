"""The baseline resolver: the latest blessed model older than the candidate, and only the newest
candidate (TFX's legacy launcher, used on Airflow, hands it every Trainer model of the pipeline;
a model returned as both candidate and baseline is two OUTPUT events MLMD refuses)."""

from __future__ import annotations

from tfx.types import standard_artifacts

from beamline_components.resolvers.baseline import (
    CANDIDATE_KEY,
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    LatestBlessedBeforeCandidateStrategy,
)


def _model(artifact_id: int):
    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _blessing(artifact_id: int, model_id: int, blessed: int):
    blessing = standard_artifacts.ModelBlessing()
    blessing.id = artifact_id
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", blessed)
    return blessing


def test_every_past_model_as_candidate_resolves_to_the_newest_and_its_baseline():
    models = [_model(7), _model(21), _model(30)]
    blessings = [_blessing(10, 7, 1), _blessing(25, 21, 0)]
    resolved = LatestBlessedBeforeCandidateStrategy().resolve_artifacts(
        None, {CANDIDATE_KEY: [models[0], models[2], models[1]], MODEL_KEY: models,
               MODEL_BLESSING_KEY: blessings},
    )
    assert [a.id for a in resolved[CANDIDATE_KEY]] == [30]
    assert [a.id for a in resolved[MODEL_KEY]] == [7]  # 21 was not blessed
    assert [a.id for a in resolved[MODEL_BLESSING_KEY]] == [10]
    baseline = {a.id for a in resolved[MODEL_KEY]}
    assert not baseline & {a.id for a in resolved[CANDIDATE_KEY]}


def test_the_first_model_has_no_baseline():
    resolved = LatestBlessedBeforeCandidateStrategy().resolve_artifacts(
        None, {CANDIDATE_KEY: [_model(7)], MODEL_KEY: [_model(7)], MODEL_BLESSING_KEY: []}
    )
    assert [a.id for a in resolved[CANDIDATE_KEY]] == [7]
    assert resolved[MODEL_KEY] == [] and resolved[MODEL_BLESSING_KEY] == []
