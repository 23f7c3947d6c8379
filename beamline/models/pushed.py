"""A version directory on disk and what the store recorded about it: pushing run, blessing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from beamline.lineage import payloads
from beamline.lineage.model import COMPLETE, Artifact, Execution, Graph, outputs_of_type
from beamline.lineage.spans import span_of
from beamline.lineage.tfma import load_evaluation
from beamline.metadata import run_context as rc
from beamline.metrics import headline
from beamline.settings import RootLayout

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


@dataclass
class PushedVersion:
    """One version directory and its record (None fields: nothing recorded)."""

    version: int
    path: Path
    pushed_model: Artifact | None = None
    pusher: Execution | None = None
    run_id: str | None = None
    span: str | None = None
    blessing: Artifact | None = None  # the Pusher's model_blessing input
    evaluator: Execution | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def recorded(self) -> bool:
        return self.pushed_model is not None and self.pusher is not None

    @property
    def blessed(self) -> bool | None:
        if self.blessing is None:
            return None
        return rc.blessed_from(self.blessing.properties)

    def headline(self) -> tuple[str, float] | None:
        """The metric a reader wants first: the task's blessing metric (AUC, accuracy, RMSE)."""
        return headline(self.metrics)


def on_disk(layout: RootLayout, pipeline: str) -> list[Path]:
    """`<serving dir>/<int version>/` directories holding a SavedModel, oldest first."""
    base = layout.serving_dir(pipeline)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.name.isdigit() and p.is_dir() and is_model(p)]
    return sorted(found, key=lambda p: int(p.name))


def is_model(path: Path) -> bool:
    return any((path / name).is_file() for name in SAVED_MODEL_FILES)


def _pushes_by_path(graph: Graph) -> dict[str, Artifact]:
    out = {}
    for art in sorted(graph.artifacts.values(), key=lambda a: a.id):
        push = rc.push_from(art.properties) if art.type == rc.PUSHED_MODEL_TYPE else None
        if push is not None and push[1]:
            out[str(Path(push[1]))] = art
    return out


def describe_version(graph: Graph, path: Path, metrics: bool = True,
                     pushes: dict[str, Artifact] | None = None) -> PushedVersion:
    """What the store recorded about the version at `path`."""
    found = PushedVersion(int(path.name), path)
    pushes = _pushes_by_path(graph) if pushes is None else pushes
    art = pushes.get(str(path))
    if art is None:
        return found
    pusher = graph.producer(art.id)
    if pusher is None or pusher.state != COMPLETE:
        return found
    found.pushed_model, found.pusher, found.run_id = art, pusher, pusher.run_id
    if pusher.run_id in graph.runs:
        found.span = span_of(graph, graph.run_executions(pusher.run_id))
    for aid in pusher.inputs.get("model_blessing", []):
        found.blessing = graph.artifacts.get(aid)
        found.evaluator = graph.producer(aid)
    if metrics and found.evaluator is not None:
        found.metrics = evaluation_metrics(graph, found.evaluator)
    return found


def evaluation_metrics(graph: Graph, evaluator: Execution) -> dict[str, float]:
    """The candidate's Overall metrics from the Evaluator's ModelEvaluation."""
    for eid in outputs_of_type(graph, [evaluator], "ModelEvaluation"):
        evaluation = payloads.safe(load_evaluation, graph.artifacts[eid].uri)
        if evaluation is not None:
            return dict(evaluation.candidate().get("Overall", {}))
    return {}


def versions(graph: Graph, layout: RootLayout, pipeline: str, metrics: bool = True
             ) -> list[PushedVersion]:
    pushes = _pushes_by_path(graph)
    return [describe_version(graph, p, metrics, pushes) for p in on_disk(layout, pipeline)]


def _digest(path: Path) -> str | None:
    for name in SAVED_MODEL_FILES:
        if (path / name).is_file():
            return hashlib.sha256((path / name).read_bytes()).hexdigest()
    return None


def trained_model_of(graph: Graph, path: Path) -> Artifact | None:
    """The Trainer's Model artifact whose SavedModel is byte-identical to the one at `path`
    (a version copied into the serving directory by hand, not pushed)."""
    wanted = _digest(path)
    if wanted is None:
        return None
    for art in sorted(graph.artifacts.values(), key=lambda a: -a.id):
        if art.type != "Model" or not art.uri:
            continue
        serving = Path(art.uri) / "Format-Serving"
        if _digest(serving) == wanted:
            return art
    return None
