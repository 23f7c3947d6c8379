"""Why a Pusher pushed nothing: the blessing it was given, and the Evaluator's failed checks."""

from __future__ import annotations

from beamline.lineage import payloads, tfma
from beamline.lineage.model import Execution, Graph, outputs_of_type


def push_notes(graph: Graph, ex: Execution) -> list[str]:
    """For a Pusher execution whose model was not blessed: what the Evaluator decided and why."""
    if ex.component != "Pusher":
        return []
    notes = []
    for aid in ex.inputs.get("model_blessing", []):
        blessing = graph.artifacts.get(aid)
        if blessing is None or blessing.prop("blessed") is None or blessing.prop("blessed"):
            continue
        evaluator = graph.producer(aid)
        where = f" by {evaluator.node_id} (execution #{evaluator.id})" if evaluator else ""
        failures: list[str] = []
        if evaluator is not None:
            for eid in outputs_of_type(graph, [evaluator], "ModelEvaluation"):
                found = payloads.safe(tfma.load_evaluation, graph.artifacts[eid].uri)
                if found is not None:
                    failures += found.failures
        # Overall first; TFMA's failure messages are often empty ("...: ").
        failures = sorted(
            (f.rstrip(": ") for f in failures), key=lambda f: not f.startswith("Overall")
        )
        reason = f"; failed checks: {'; '.join(failures[:3])}" if failures else ""
        notes.append(
            f"Nothing was pushed: the model was NOT blessed{where} (ModelBlessing #{aid}){reason}."
        )
    return notes
