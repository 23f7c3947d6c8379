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
        notes.append(f"Nothing was pushed: {not_blessed(graph, aid)}.")
    return notes


def failed_checks(graph: Graph, evaluator: Execution) -> list[str]:
    """The Evaluator's failed validation checks, Overall first."""
    failures: list[str] = []
    for eid in outputs_of_type(graph, [evaluator], "ModelEvaluation"):
        found = payloads.safe(tfma.load_evaluation, graph.artifacts[eid].uri)
        if found is not None:
            failures += found.failures
    # TFMA's failure messages are often empty ("...: ").
    return sorted((f.rstrip(": ") for f in failures), key=lambda f: not f.startswith("Overall"))


def not_blessed(graph: Graph, blessing_id: int) -> str:
    """'the model was NOT blessed by Evaluator (execution #N) (ModelBlessing #M); failed
    checks: ...' for an unblessed ModelBlessing."""
    evaluator = graph.producer(blessing_id)
    where = f" by {evaluator.node_id} (execution #{evaluator.id})" if evaluator else ""
    failures = failed_checks(graph, evaluator) if evaluator is not None else []
    reason = f"; failed checks: {'; '.join(failures[:3])}" if failures else ""
    return f"the model was NOT blessed{where} (ModelBlessing #{blessing_id}){reason}"
