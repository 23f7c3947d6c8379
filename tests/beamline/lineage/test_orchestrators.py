"""`runs`, `lineage`, `why`, `diff` and `report` read a Kubeflow Pipelines v2 / Vertex AI metadata
layout: a real SQLite MLMD store written the way KFP's v2 backend writes it
(kubeflow/pipelines backend/src/v2/metadata/client.go: `system.Pipeline` context parent of a
`system.PipelineRun` context per run, `system.ContainerExecution`s with `task_name`, a root
`system.DAGExecution`, a cache hit recorded as CACHED with `cached_execution_id` and OUTPUT events
to the earlier artifacts, TFX artifact types named by schema title). No cluster runs here; the
Airflow layout is read back from a real `airflow dags test` run in tests/e2e/test_airflow_dag.py.
"""

from __future__ import annotations

import json

import pytest

from beamline.cli import main

PUSHED_VERSION = "1764000000"


def _value(pb, value):
    v = pb.Value()
    if isinstance(value, str):
        v.string_value = value
    elif isinstance(value, int):
        v.int_value = value
    else:
        v.double_value = value
    return v


class KfpWriter:
    """Writes contexts, executions, artifacts and events as KFP's v2 driver/launcher do."""

    def __init__(self, store):
        from ml_metadata.proto import metadata_store_pb2 as pb

        self.pb, self.store = pb, store
        self.ctx_types = {
            name: store.put_context_type(pb.ContextType(name=name))
            for name in ("system.Pipeline", "system.PipelineRun")
        }
        self.exec_types = {
            name: store.put_execution_type(pb.ExecutionType(name=name))
            for name in ("system.ContainerExecution", "system.DAGExecution")
        }
        self.art_types: dict[str, int] = {}

    def context(self, type_name: str, name: str, **custom):
        ctx = self.pb.Context(type_id=self.ctx_types[type_name], name=name)
        for key, value in custom.items():
            ctx.custom_properties[key].CopyFrom(_value(self.pb, value))
        [ctx_id] = self.store.put_contexts([ctx])
        ctx.id = ctx_id
        return ctx

    def run(self, pipeline_ctx, run_id: str):
        run_ctx = self.context(
            "system.PipelineRun", run_id, pipeline_root=f"gs://b/root/penguin/{run_id}"
        )
        self.store.put_parent_contexts(
            [self.pb.ParentContext(child_id=run_ctx.id, parent_id=pipeline_ctx.id)]
        )
        self.execution(pipeline_ctx, run_ctx, "system.DAGExecution", "", "COMPLETE", {}, {})
        return run_ctx

    def artifact(self, type_name: str, uri: str, **custom):
        pb = self.pb
        if type_name not in self.art_types:
            self.art_types[type_name] = self.store.put_artifact_type(
                pb.ArtifactType(name=type_name)
            )
        art = pb.Artifact(type_id=self.art_types[type_name], uri=uri, state=pb.Artifact.LIVE)
        for key, value in custom.items():
            art.custom_properties[key].CopyFrom(_value(pb, value))
        return art

    def execution(self, pipeline_ctx, run_ctx, type_name, task, state, inputs, outputs, **custom):
        pb = self.pb
        ex = pb.Execution(
            type_id=self.exec_types[type_name],
            last_known_state=getattr(pb.Execution, state),
        )
        ex.custom_properties["display_name"].string_value = task
        ex.custom_properties["task_name"].string_value = task
        for key, value in custom.items():
            ex.custom_properties[key].CopyFrom(_value(pb, value))
        pairs = []
        for kind, artifacts in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
            for key, art in artifacts.items():
                event = pb.Event(type=kind)
                event.path.steps.add().key = key
                if isinstance(art, int):
                    event.artifact_id = art
                    pairs.append((None, event))
                else:
                    pairs.append((art, event))
        ex_id, art_ids, _ = self.store.put_execution(ex, pairs, [pipeline_ctx, run_ctx])
        return ex_id, art_ids[len(inputs) :]  # the ids of the outputs


@pytest.fixture(scope="module")
def kfp_store(tmp_path_factory):
    """Run A executes every task; run B is an unchanged re-run, every task a cache hit."""
    from beamline.metadata.connection import open_store, sqlite_config

    root = tmp_path_factory.mktemp("kfp-mlmd")
    db = root / "metadata.sqlite"
    w = KfpWriter(open_store(sqlite_config(db)))
    pipeline = w.context("system.Pipeline", "penguin")
    base = "gs://b/root/penguin/run-a"

    run_a = w.run(pipeline, "run-a")
    examples = w.artifact("tfx.Examples", f"{base}/CsvExampleGen/examples", span=0)
    gen, (examples_id,) = w.execution(
        pipeline,
        run_a,
        "system.ContainerExecution",
        "CsvExampleGen",
        "COMPLETE",
        {},
        {"examples": examples},
        cache_fingerprint="fp-gen",
    )
    model = w.artifact("tfx.Model", f"{base}/Trainer/model")
    trainer, (model_id,) = w.execution(
        pipeline,
        run_a,
        "system.ContainerExecution",
        "Trainer",
        "COMPLETE",
        {"examples": examples_id},
        {"model": model},
        cache_fingerprint="fp-trainer",
    )
    blessing = w.artifact("tfx.ModelBlessing", f"{base}/Evaluator/blessing", blessed=1.0)
    evaluator, (blessing_id,) = w.execution(
        pipeline,
        run_a,
        "system.ContainerExecution",
        "Evaluator",
        "COMPLETE",
        {"examples": examples_id, "model": model_id},
        {"blessing": blessing},
    )
    pushed = w.artifact(
        "tfx.PushedModel",
        f"{base}/Pusher/pushed_model",
        pushed=1.0,
        pushed_version=PUSHED_VERSION,
        pushed_destination=f"gs://b/serving/penguin/{PUSHED_VERSION}",
    )
    pusher, (pushed_id,) = w.execution(
        pipeline,
        run_a,
        "system.ContainerExecution",
        "Pusher",
        "COMPLETE",
        {"model": model_id, "model_blessing": blessing_id},
        {"pushed_model": pushed},
    )

    run_b = w.run(pipeline, "run-b")
    for task, earlier, inputs, outputs in (
        ("CsvExampleGen", gen, {}, {"examples": examples_id}),
        ("Trainer", trainer, {"examples": examples_id}, {"model": model_id}),
        ("Evaluator", evaluator, {"model": model_id}, {"blessing": blessing_id}),
        ("Pusher", pusher, {"model": model_id}, {"pushed_model": pushed_id}),
    ):
        w.execution(
            pipeline,
            run_b,
            "system.ContainerExecution",
            task,
            "CACHED",
            inputs,
            outputs,
            cached_execution_id=str(earlier),
        )
    return root


def _cli_json(capsys, *args):
    main([*args, "--json"])
    return json.loads(capsys.readouterr().out)


def test_runs_lists_kubeflow_runs(kfp_store, capsys):
    runs = _cli_json(capsys, "runs", "--root", str(kfp_store))
    by_id = {r["run_id"]: r for r in runs}
    assert set(by_id) == {"run-a", "run-b"}
    a, b = by_id["run-a"], by_id["run-b"]
    assert (a["pipeline"], a["state"], a["executed"], a["cached"], a["nodes"]) == (
        "penguin",
        "complete",
        4,
        0,
        4,
    )
    assert a["blessed"] is True and a["pushed_version"] == PUSHED_VERSION
    assert (b["executed"], b["cached"], b["pushed_version"]) == (0, 4, None)


def test_lineage_of_the_pushed_version_reaches_the_examples(kfp_store, capsys):
    result = _cli_json(capsys, "lineage", PUSHED_VERSION, "--root", str(kfp_store))
    target = result["target"]
    assert (target["type"], target["producer_node"], target["run_id"]) == (
        "PushedModel", "Pusher", "run-a"
    )
    assert target["properties"]["pushed_version"] == PUSHED_VERSION
    # The chain back to the examples, step by step, each step's inputs the previous outputs.
    steps = {step["node"]: step for step in result["steps"]}
    assert list(steps) == ["Pusher", "Evaluator", "Trainer", "CsvExampleGen"]
    assert {step["run_id"] for step in steps.values()} == {"run-a"}
    artifacts = result["artifacts"]

    def produced(node: str, key: str) -> dict:
        [artifact_id] = steps[node]["outputs"][key]
        return artifacts[str(artifact_id)]

    examples = produced("CsvExampleGen", "examples")
    assert examples["uri"] == "gs://b/root/penguin/run-a/CsvExampleGen/examples"
    model = produced("Trainer", "model")
    assert steps["Trainer"]["inputs"]["examples"] == [examples["id"]]
    assert steps["Evaluator"]["inputs"] == {"examples": [examples["id"]], "model": [model["id"]]}
    blessing = produced("Evaluator", "blessing")
    assert steps["Pusher"]["inputs"] == {"model": [model["id"]], "model_blessing": [blessing["id"]]}
    assert steps["Pusher"]["outputs"]["pushed_model"] == [target["id"]]


def test_why_and_diff_and_report_on_kubeflow_runs(kfp_store, capsys, tmp_path):
    why = _cli_json(capsys, "why", "Trainer", "--run", "run-b", "--root", str(kfp_store))
    assert why["state"] == "CACHED"
    diff = _cli_json(capsys, "diff", "run-a", "run-b", "--root", str(kfp_store))
    assert (diff["run_a"], diff["run_b"]) == ("run-a", "run-b")
    # run-b reused every execution of run-a (KFP cache hits) and pushed nothing new.
    nodes = {n["node"]: n for n in diff["nodes"]}
    assert set(nodes) == {"CsvExampleGen", "Trainer", "Evaluator", "Pusher"}
    assert all(
        (n["state_a"], n["state_b"], n["same_execution"], n["changes"])
        == ("COMPLETE", "CACHED", True, [])
        for n in nodes.values()
    ), nodes
    assert diff["pushed_version"] == [PUSHED_VERSION, None]
    assert diff["blessed"] == [True, True]
    out = tmp_path / "report.html"
    report = _cli_json(capsys, "report", "run-a", "--root", str(kfp_store), "--out", str(out))
    assert report["path"] == str(out) and "Trainer" in out.read_text()


def test_airflow_legacy_layout_is_not_mistaken_for_kubeflow(kfp_store):
    from beamline.lineage import orchestrators
    from beamline.metadata.connection import open_store, sqlite_config

    store = open_store(sqlite_config(kfp_store / "metadata.sqlite"))
    assert orchestrators.legacy_runs(store, None) == []
    found = orchestrators.kubeflow_runs(store, "penguin")
    assert [f.run.id for f in found] == ["run-a", "run-b"]
    # The root DAG execution is the run, not a node.
    assert all(len(f.executions) == 4 for f in found)
    assert orchestrators.kubeflow_runs(store, "taxi") == []
