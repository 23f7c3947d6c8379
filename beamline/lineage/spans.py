"""The TFX span a run read: the `span` (and, for a --span-range, `span_range`) custom
properties ExampleGen put on its Examples artifact."""

from __future__ import annotations

from collections.abc import Iterator

from beamline.lineage.model import Artifact, Execution, Graph
from beamline.lineage.sources import is_example_gen

SPAN_PROPERTY = "span"  # set by TFX's ExampleGen driver (0 when the pattern has no span spec)
SPAN_RANGE_PROPERTY = "span_range"  # set by Beamline's CSV ExampleGen for --span-range: "1-3"


def examples_span(art: Artifact) -> str | None:
    """"3", "1-3" (a range), or None for artifacts that are not ExampleGen output."""
    if art.type != "Examples" or art.prop(SPAN_PROPERTY) is None:
        return None
    return str(art.prop(SPAN_RANGE_PROPERTY) or art.prop(SPAN_PROPERTY))


def example_gen_outputs(graph: Graph, executions: list[Execution]
                        ) -> Iterator[tuple[Execution, Artifact]]:
    """(ExampleGen execution, one of its output artifacts) among `executions`."""
    for ex in executions:
        if is_example_gen(ex):
            for aid in ex.output_ids():
                art = graph.artifacts.get(aid)
                if art is not None:
                    yield ex, art


def span_of(graph: Graph, executions: list[Execution]) -> str | None:
    """The span the executions' ExampleGen read (None: no ExampleGen output among them)."""
    for _, art in example_gen_outputs(graph, executions):
        span = examples_span(art)
        if span is not None:
            return span
    return None
