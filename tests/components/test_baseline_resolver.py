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


def _store_with_runs(experiments: dict[int, str | None]):
    """A real (in-memory SQLite) MLMD store holding one Trainer execution and Model per run,
    each run's pipeline_run context stamped with its experiment (None: no experiment)."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata import run_context as rc

    config = pb.ConnectionConfig()
    config.fake_database.SetInParent()
    store = metadata_store.MetadataStore(config)
    model_type = store.put_artifact_type(pb.ArtifactType(name="Model"))
    trainer_type = store.put_execution_type(pb.ExecutionType(name="Trainer"))
    run_type = store.put_context_type(pb.ContextType(name=rc.RUN_CONTEXT))
    models = []
    for run, experiment in experiments.items():
        context = pb.Context(type_id=run_type, name=f"run-{run}")
        if experiment is not None:
            context.custom_properties[rc.EXPERIMENT].string_value = experiment
        execution = pb.Execution(type_id=trainer_type, last_known_state=pb.Execution.COMPLETE)
        artifact = pb.Artifact(type_id=model_type, uri=f"/m/{run}")
        _, [model_id], _ = store.put_execution(
            execution, [(artifact, pb.Event(type=pb.Event.OUTPUT))], [context]
        )
        models.append(_model(model_id))
    return store, models


def test_a_run_of_an_experiment_takes_its_baseline_from_outside_the_experiment():
    # A blessed model from before the sweep, then two blessed variants of sweep "lr": the
    # third variant is judged against the pre-sweep model, as the first one was.
    store, models = _store_with_runs({1: None, 2: "lr", 3: "lr", 4: "lr"})
    before, first, second, candidate = models
    blessings = [_blessing(100 + m.id, m.id, 1) for m in (before, first, second)]
    inputs = {CANDIDATE_KEY: [candidate], MODEL_KEY: models, MODEL_BLESSING_KEY: blessings}
    inside = LatestBlessedBeforeCandidateStrategy(outside_experiment="lr").resolve_artifacts(
        store, inputs)
    assert [a.id for a in inside[MODEL_KEY]] == [before.id]
    # Outside any experiment (or in another), the newest blessed model is the baseline.
    for strategy in (LatestBlessedBeforeCandidateStrategy(),
                     LatestBlessedBeforeCandidateStrategy(outside_experiment="other")):
        assert [a.id for a in strategy.resolve_artifacts(store, inputs)[MODEL_KEY]] == [second.id]


def test_an_experiment_with_nothing_blessed_before_it_has_no_baseline():
    store, models = _store_with_runs({1: "lr", 2: "lr"})
    first, candidate = models
    resolved = LatestBlessedBeforeCandidateStrategy(outside_experiment="lr").resolve_artifacts(
        store, {CANDIDATE_KEY: [candidate], MODEL_KEY: models,
                MODEL_BLESSING_KEY: [_blessing(50, first.id, 1)]})
    assert resolved[MODEL_KEY] == [] and resolved[MODEL_BLESSING_KEY] == []
