"""Through MLMD lineage: what trained the model version that answered a request.

A pushed version (the unix-seconds directory TF Serving serves, also the `model_spec.version`
logged with each request) leads to its PushedModel artifact, the Pusher's `model` input, and
from the Trainer back to the Examples that ExampleGen produced; the statistics compared against
are StatisticsGen's output over those Examples, the schema the Trainer's `schema` input, and the
evaluation the Evaluator's output for that model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from beamline.lineage.model import Artifact, Graph, outputs_of_type

TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"


@dataclass
class Trained:
    """The artifacts a version's traffic is compared with."""

    version: int
    pushed: Artifact  # PushedModel
    model: Artifact  # Model (the Trainer's output)
    statistics: Artifact  # ExampleStatistics of the training Examples
    schema: Artifact
    evaluation: Artifact | None
    run_id: str

    def statistics_path(self, split: str) -> str:
        return os.path.join(self.statistics.uri, f"Split-{split}", "FeatureStats.pb")

    def schema_path(self) -> str:
        return os.path.join(self.schema.uri, "schema.pbtxt")


def served_name(pushed: Artifact) -> str:
    """The model name a server gives a push: its directory under the serving root."""
    destination = str(pushed.prop("pushed_destination") or "").rstrip("/")
    return os.path.basename(os.path.dirname(destination))


def pushed_versions(graph: Graph, model_name: str | None = None) -> dict[int, Artifact]:
    """Pushed version -> its PushedModel artifact (optionally of one serving directory name)."""
    found: dict[int, Artifact] = {}
    for art in sorted(graph.artifacts.values(), key=lambda a: a.id):
        if art.type != "PushedModel" or art.prop("pushed") != 1:
            continue
        version = str(art.prop("pushed_version") or "")
        if not version.isdigit():
            continue
        if model_name is None or served_name(art) == model_name:
            found[int(version)] = art
    return found


# Inputs that reach an artifact without carrying its training rows: the model it is judged
# against, the model it warm-starts from, and hyperparameters a Tuner found (a retrain imports
# an earlier run's search, whose Examples are an older span).
NOT_TRAINING_DATA = frozenset({"baseline_model", "base_model", "hyperparameters"})


def upstream_examples(graph: Graph, artifact_id: int) -> list[Artifact]:
    """The Examples produced by an ExampleGen (no Examples input) upstream of an artifact,
    along the inputs that carry data (never `NOT_TRAINING_DATA`)."""
    seen: set[int] = set()
    stack = [artifact_id]
    found: list[Artifact] = []
    while stack:
        aid = stack.pop()
        if aid in seen:
            continue
        seen.add(aid)
        producer = graph.producer(aid)
        if producer is None:
            continue
        inputs = [graph.artifacts[i] for i in producer.input_ids() if i in graph.artifacts]
        art = graph.artifacts.get(aid)
        if (
            art is not None
            and art.type == "Examples"
            and not any(i.type == "Examples" for i in inputs)
        ):
            found.append(art)
            continue
        for key, ids in producer.inputs.items():
            if key not in NOT_TRAINING_DATA:
                stack.extend(ids)
    return found


def trained_for(graph: Graph, pushed: Artifact, version: int) -> Trained | None:
    """The training statistics, schema and evaluation of a pushed version, or None."""
    pusher = graph.producer(pushed.id)
    if pusher is None or not pusher.inputs.get("model"):
        return None
    model = graph.artifacts.get(pusher.inputs["model"][0])
    trainer = graph.producer(model.id) if model is not None else None
    if model is None or trainer is None:
        return None
    schema_ids = trainer.inputs.get("schema", [])
    statistics = None
    for examples in upstream_examples(graph, model.id):
        stats_gens = [e for e in graph.consumers(examples.id) if e.component == "StatisticsGen"]
        ids = outputs_of_type(graph, stats_gens, "ExampleStatistics")
        if ids:
            statistics = graph.artifacts[ids[-1]]
            break
    if not schema_ids or statistics is None:
        return None
    evaluators = [
        e
        for e in graph.consumers(model.id)
        if e.component == "Evaluator" and model.id in e.inputs.get("model", [])
    ]
    evaluation_ids = outputs_of_type(graph, evaluators, "ModelEvaluation")
    return Trained(
        version=version,
        pushed=pushed,
        model=model,
        statistics=statistics,
        schema=graph.artifacts[schema_ids[0]],
        evaluation=graph.artifacts[evaluation_ids[-1]] if evaluation_ids else None,
        run_id=pusher.run_id,
    )
