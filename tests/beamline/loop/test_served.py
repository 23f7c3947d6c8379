"""The served version and the span it trained on, from a hand-built lineage graph."""

from __future__ import annotations

from beamline.lineage.model import Artifact, Execution, Graph, Run
from beamline.loop.served import newest_span, served_version


def _execution(eid, node, run, inputs=None, outputs=None) -> Execution:
    return Execution(
        eid, f"tfx.{node}", node, "penguin", run, "COMPLETE", 0, 0,
        inputs=inputs or {}, outputs=outputs or {},
    )


def _graph(spans_and_versions) -> Graph:
    graph = Graph()
    aid = eid = 0
    for span, version in spans_and_versions:
        run = f"run-{span}"
        graph.runs[run] = Run(run, "penguin", 0)
        ids = list(range(aid + 1, aid + 4))
        aid += 3
        examples, model, pushed = ids
        graph.artifacts[examples] = Artifact(examples, "Examples", f"/e{span}",
                                             properties={"span": span})
        graph.artifacts[model] = Artifact(model, "Model", f"/m{span}")
        graph.artifacts[pushed] = Artifact(
            pushed, "PushedModel", f"/p{span}",
            properties={"pushed": 1, "pushed_version": str(version),
                        "pushed_destination": f"/serving/penguin/{version}"},
        )
        for node, inputs, outputs in (
            ("CsvExampleGen", {}, {"examples": [examples]}),
            ("Trainer", {"examples": [examples]}, {"model": [model]}),
            ("Pusher", {"model": [model]}, {"pushed_model": [pushed]}),
        ):
            eid += 1
            graph.executions[eid] = _execution(eid, node, run, inputs, outputs)
            graph.runs[run].execution_ids.append(eid)
    return graph


def test_the_newest_pushed_version_serves_and_its_span_is_found():
    served = served_version(_graph([(1, 100), (3, 300)]))
    assert (served.version, served.model_name, served.span, served.run_id) == (
        300, "penguin", 3, "run-3"
    )
    assert served_version(Graph()) is None


def test_the_newest_span_on_disk_ignores_empty_span_directories(tmp_path):
    assert newest_span(tmp_path, "span-{SPAN}/*.csv") is None
    for span in (1, 2):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "data.csv").write_text("a\n1\n")
    (tmp_path / "span-3").mkdir()  # a drop still being copied
    assert newest_span(tmp_path, "span-{SPAN}/*.csv") == 2


def test_a_retrain_reusing_an_older_search_trained_on_its_own_span():
    # Run 1's Tuner searched on span 1; run 2's Trainer imports that search's hyperparameters
    # and trains on span 2. The hyperparameters are not training data: the span is 2 whichever
    # input the walk meets first.
    graph = _graph([(1, 100), (2, 200)])
    tuner_id, hp_id = 100, 101
    graph.artifacts[hp_id] = Artifact(hp_id, "HyperParameters", "/hp1")
    graph.executions[tuner_id] = _execution(
        tuner_id, "Tuner", "run-1", {"examples": [1]}, {"best_hyperparameters": [hp_id]}
    )
    [trainer_2] = [e for e in graph.executions.values()
                   if e.run_id == "run-2" and e.node_id == "Trainer"]
    for order in (("hyperparameters", "examples"), ("examples", "hyperparameters")):
        inputs = {"examples": trainer_2.inputs["examples"], "hyperparameters": [hp_id]}
        trainer_2.inputs.clear()
        trainer_2.inputs.update({key: inputs[key] for key in order})
        graph.invalidate()
        assert served_version(graph).span == 2, order
