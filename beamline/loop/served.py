"""What serves a pipeline's model and which span it trained on (from MLMD lineage), and the
newest span on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from beamline.data.spans import find_spans
from beamline.lineage.model import Graph
from beamline.lineage.spans import examples_span
from beamline.monitor.trained import pushed_versions, upstream_examples


@dataclass(frozen=True)
class Served:
    version: int
    model_name: str
    span: int | None  # None: trained on data without spans
    run_id: str


def served_version(graph: Graph) -> Served | None:
    """The newest pushed version (what a server with the default `latest` policy serves)."""
    from beamline.monitor.trained import served_name

    versions = pushed_versions(graph)
    if not versions:
        return None
    version = max(versions)
    pushed = versions[version]
    pusher = graph.producer(pushed.id)
    span = None
    model_ids = pusher.inputs.get("model", []) if pusher is not None else []
    for model_id in model_ids[:1]:
        for examples in upstream_examples(graph, model_id):
            text = examples_span(examples)
            if text is not None:
                span = int(text.rsplit("-", 1)[-1])  # a range "1-3" trained up to span 3
                break
    return Served(version, served_name(pushed), span, pusher.run_id if pusher else "")


def newest_span(data: Path, pattern: str) -> int | None:
    """The newest span under --data that holds files (None when there are no spans)."""
    spans = {s: files for s, files in find_spans(data.expanduser().resolve(), pattern).items()
             if files}
    return max(spans) if spans else None
