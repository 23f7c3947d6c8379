"""A Trainer's learning curve: `history.json` in its ModelRun directory, one value per epoch of
each loss and metric (`val_` ones from the validation after the epoch). The shared Keras
plumbing writes it (components/common/keras_tabular.py, `EpochHistory`) as each epoch ends;
a run written before it, or by a module of its own, has none. Plain JSON, no TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.lineage.model import Execution, Graph

HISTORY_FILE = "history.json"
MODEL_RUN_KEY = "model_run"
MODEL_RUN_TYPE = "ModelRun"


@dataclass
class History:
    epochs: int
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    metrics: dict[str, list[float | None]] = field(default_factory=dict)

    def final(self, metric: str) -> float | None:
        values = self.metrics.get(metric) or []
        return values[-1] if values else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_history(model_run_uri: str) -> History | None:
    """The history in a ModelRun directory; None when there is none or it is not that shape
    (a reader of runs shows "no curve" rather than failing)."""
    path = os.path.join(model_run_uri, HISTORY_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        return None
    curves = {}
    for name, values in metrics.items():
        if isinstance(values, list):
            curves[str(name)] = [
                float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
                for v in values
            ]
    epochs = _count(data.get("epochs"))
    return History(
        epochs=epochs if epochs is not None else max((len(v) for v in curves.values()), default=0),
        steps_per_epoch=_count(data.get("steps_per_epoch")),
        validation_steps=_count(data.get("validation_steps")),
        metrics=curves,
    )


def history_of(graph: Graph, trainer: Execution) -> History | None:
    """The learning curve of a Trainer execution (a cached one: of the execution it reused)."""
    ids = trainer.outputs.get(MODEL_RUN_KEY) or [
        aid for aid in trainer.output_ids()
        if getattr(graph.artifacts.get(aid), "type", None) == MODEL_RUN_TYPE
    ]
    for aid in ids:
        art = graph.artifacts.get(aid)
        if art is not None and art.uri:
            found = read_history(art.uri)
            if found is not None:
                return found
    return None
