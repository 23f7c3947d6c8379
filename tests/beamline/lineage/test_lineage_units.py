"""Pure functions over hand-built graphs and payload readers (no TFX, no TensorFlow)."""

from __future__ import annotations

import sys

import pytest

from beamline.lineage import drift, tfma
from beamline.lineage.diff import diff_runs
from beamline.lineage.model import Artifact, Execution, Graph, Run
from beamline.lineage.runs import UnknownRun, resolve_run, run_summaries
from beamline.lineage.sources import parse_fingerprint
from beamline.lineage.trace import downstream, find_target, upstream
from beamline.lineage.why import explain, module_fingerprint
from beamline_serving.request_log.tfrecord import frame

T = "tfx.components"


def _ex(eid, node, run, state="COMPLETE", inputs=None, outputs=None, props=None, start=0):
    return Execution(
        id=eid,
        type=f"{T}.{node.lower()}.component.{node}",
        node_id=node,
        pipeline="p",
        run_id=run,
        state=state,
        start_ms=start or eid * 1000,
        end_ms=(start or eid * 1000) + 500,
        properties=props or {},
        inputs=inputs or {},
        outputs=outputs or {},
    )


def model_graph() -> Graph:
    """Two runs: r1 trains model 3, blessed (no baseline), pushes v100; r2 retrains with new
    module code, compared with baseline model 3 through a Resolver, not blessed."""
    g = Graph(source="test")
    art = {
        1: Artifact(1, "Examples", "/a/1", properties={"span": 0}),
        2: Artifact(2, "Schema", "/a/2"),
        3: Artifact(3, "Model", "/a/3"),
        4: Artifact(4, "ModelBlessing", "/a/4", properties={"blessed": 1}),
        5: Artifact(
            5,
            "PushedModel",
            "/a/5",
            properties={
                "pushed": 1,
                "pushed_version": "100",
                "pushed_destination": "/serving/p/100",
            },
        ),
        6: Artifact(6, "Model", "/a/6"),
        7: Artifact(7, "ModelBlessing", "/a/7", properties={"blessed": 0}),
        8: Artifact(8, "PushedModel", "/a/8", properties={"pushed": 0}),
    }
    g.artifacts.update(art)
    fp = "split:s,num_files:1,total_bytes:10,xor_checksum:5,sum_checksum:5"
    code1 = "m@/root/_wheels/tfx_user_code_Trainer-0.0+aaaa1111-py3-none-any.whl"
    code2 = "m@/root/_wheels/tfx_user_code_Trainer-0.0+bbbb2222-py3-none-any.whl"
    execs = [
        _ex(
            1,
            "CsvExampleGen",
            "r1",
            outputs={"examples": [1]},
            props={"input_base": "/nonexistent/data", "input_fingerprint": fp},
        ),
        _ex(2, "ImportSchemaGen", "r1", outputs={"schema": [2]}),
        _ex(
            3,
            "Trainer",
            "r1",
            inputs={"examples": [1], "schema": [2]},
            outputs={"model": [3]},
            props={"module_path": code1, "train_args": '{"num_steps": 5}'},
        ),
        _ex(
            4, "Evaluator", "r1", inputs={"model": [3], "examples": [1]}, outputs={"blessing": [4]}
        ),
        _ex(
            5,
            "Pusher",
            "r1",
            inputs={"model": [3], "model_blessing": [4]},
            outputs={"pushed_model": [5]},
        ),
        _ex(
            6,
            "CsvExampleGen",
            "r2",
            "CACHED",
            outputs={"examples": [1]},
            props={"input_base": "/nonexistent/data"},
        ),
        _ex(7, "ImportSchemaGen", "r2", "CACHED", outputs={"schema": [2]}),
        _ex(
            8,
            "Trainer",
            "r2",
            inputs={"examples": [1], "schema": [2]},
            outputs={"model": [6]},
            props={"module_path": code2, "train_args": '{"num_steps": 5}'},
        ),
        _ex(9, "latest_blessed_model_resolver", "r2", outputs={"model": [3]}),
        _ex(
            10,
            "Evaluator",
            "r2",
            inputs={"model": [6], "baseline_model": [3], "examples": [1]},
            outputs={"blessing": [7]},
        ),
        _ex(
            11,
            "Pusher",
            "r2",
            inputs={"model": [6], "model_blessing": [7]},
            outputs={"pushed_model": [8]},
        ),
    ]
    for ex in execs:
        g.executions[ex.id] = ex
    g.runs["r1"] = Run("r1", "p", 1000, [1, 2, 3, 4, 5])
    g.runs["r2"] = Run("r2", "p", 6000, [6, 7, 8, 9, 10, 11])
    return g


def test_run_summaries_blessing_and_push():
    first, second = run_summaries(model_graph())
    assert (first.blessed, first.pushed_version, first.executed, first.cached) == (
        True,
        "100",
        5,
        0,
    )
    assert (second.blessed, second.pushed_version, second.executed, second.cached) == (
        False,
        None,
        4,
        2,
    )
    assert first.state == second.state == "complete"


def test_run_state_from_runner_property_and_failures():
    g = model_graph()
    g.executions[11].state = "FAILED"
    assert run_summaries(g)[1].state == "failed"
    g.runs["r2"].properties["beamline_state"] = "stopped"
    assert run_summaries(g)[1].state == "stopped"


def test_upstream_from_pushed_version_stops_at_baseline():
    g = model_graph()
    target = find_target(g, "100")
    assert [a.id for a in target.artifacts] == [5]
    lineage = upstream(g, 5, payload=False)
    assert [s.node for s in lineage.steps] == [
        "Pusher",
        "Evaluator",
        "Trainer",
        "ImportSchemaGen",
        "CsvExampleGen",
    ]
    trainer = next(s for s in lineage.steps if s.node == "Trainer")
    assert trainer.facts["module_fingerprint"] == "aaaa1111"
    assert next(s for s in lineage.steps if s.node == "Evaluator").facts["blessed"] is True

    second = upstream(g, 7, payload=False)  # r2's blessing: baseline model 3 shown, not followed
    assert second.baselines == [3]
    assert [s.execution_id for s in second.steps if s.node == "Trainer"] == [8]


def test_downstream_from_examples_reaches_both_models_not_via_baseline():
    g = model_graph()
    lineage = downstream(g, [3])  # from model 3: its own push, not r2's (baseline only)
    assert [p["version"] for p in lineage.pushed] == ["100"]
    assert {s.execution_id for s in lineage.steps} == {4, 5}
    everything = downstream(g, [1])
    assert everything.models == [3, 6]


def test_find_target_by_destination_path_and_ids():
    g = model_graph()
    assert find_target(g, "/serving/p/100/variables").artifacts[0].id == 5
    assert find_target(g, "#6").artifacts[0].id == 6
    assert find_target(g, "artifact:2").artifacts[0].id == 2
    assert find_target(g, "/a/3/Format-Serving").artifacts[0].id == 3


def test_why_module_change_and_cached_reuse():
    g = model_graph()
    trainer = explain(g, "r2", "trainer")
    assert [c.kind for c in trainer.changes] == ["code"]
    assert "aaaa1111 -> bbbb2222" in trainer.changes[0].describe()
    cached = explain(g, "r2", "CsvExampleGen")
    assert cached.state == "CACHED" and cached.reused_execution == 1 and cached.reused_run == "r1"


def test_diff_reports_code_blessing_and_push():
    g = model_graph()
    result = diff_runs(g, g.runs["r1"], g.runs["r2"], payload=False)
    assert [(n, c.name) for n, c in result.code_changes()] == [("Trainer", "module_path")]
    assert result.param_changes() == []
    assert result.blessed == (True, False)
    assert result.pushed_version == ("100", None)
    same = {n.node: n.same_execution for n in result.nodes}
    assert same["CsvExampleGen"] and not same["Trainer"]


def test_resolve_run_ambiguous_across_pipelines():
    g = model_graph()
    g.runs["q1"] = Run("q1", "q", 9000, [])
    with pytest.raises(UnknownRun, match="several pipelines") as info:
        resolve_run(g, "latest")
    assert info.value.exit_code == 2 and "--pipeline" in str(info.value)
    assert resolve_run(g, "latest", pipeline="p").id == "r2"


def test_fingerprint_and_module_parsing():
    [fp] = parse_fingerprint("split:train,num_files:2,total_bytes:30,xor_checksum:1,sum_checksum:3")
    assert (fp.split, fp.num_files, fp.total_bytes) == ("train", 2, 30)
    assert module_fingerprint("x@/r/tfx_user_code_T-0.0+0123abcd-py3-none-any.whl") == "0123abcd"
    assert module_fingerprint("/plain/module.py") is None


def test_drift_measures():
    same = [(0.0, 1.0, 10.0), (1.0, 2.0, 10.0)]
    assert drift.js_divergence(same, same) == pytest.approx(0.0)
    assert drift.js_divergence([(0.0, 1.0, 10.0)], [(5.0, 6.0, 10.0)]) == pytest.approx(1.0)
    assert drift.linf_distance([("a", 5), ("b", 5)], [("a", 5), ("b", 5)]) == 0
    assert drift.linf_distance([("a", 10)], [("a", 5), ("b", 5)]) == pytest.approx(0.5)


def _write_tfrecord(path, records):
    with open(path, "wb") as handle:
        for data in records:
            handle.write(frame(data))


def test_tfma_metrics_read_without_tensorflow(tmp_path):
    messages = tfma.tfma_messages()
    overall = messages["MetricsForSlice"]()
    kv = overall.metric_keys_and_values.add()
    kv.key.name, kv.key.model_name = "accuracy", "candidate"
    kv.value.double_value.value = 0.9
    kv = overall.metric_keys_and_values.add()
    kv.key.name, kv.key.model_name = "accuracy", "baseline"
    kv.value.double_value.value = 0.8
    sliced = messages["MetricsForSlice"]()
    key = sliced.slice_key.single_slice_keys.add()
    key.column, key.bytes_value = "island", b"Dream"
    kv = sliced.metric_keys_and_values.add()
    kv.key.name, kv.key.model_name = "accuracy", "candidate"
    kv.value.double_value.value = 1.0
    _write_tfrecord(
        tmp_path / "metrics-00000-of-00001.tfrecord",
        [overall.SerializeToString(), sliced.SerializeToString()],
    )
    validation = messages["ValidationResult"](validation_ok=True)
    _write_tfrecord(
        tmp_path / "validations-00000-of-00001.tfrecord", [validation.SerializeToString()]
    )
    result = tfma.load_evaluation(str(tmp_path))
    assert result.candidate() == {"Overall": {"accuracy": 0.9}, "island=Dream": {"accuracy": 1.0}}
    assert result.baseline() == {"Overall": {"accuracy": 0.8}}
    assert result.validation_ok is True


def test_tfrecords_with_a_hostile_length_or_a_wrong_checksum_are_refused(tmp_path):
    """A record claiming 2^62 bytes is refused before anything is allocated, and a flipped data
    byte fails its CRC: both are a ValueError, which `safe` turns into "not available"."""
    import struct

    from beamline.lineage import payloads
    from beamline_serving.request_log.tfrecord import masked_crc

    length = struct.pack("<Q", 2**62)
    huge = tmp_path / "huge" / "metrics-00000-of-00001.tfrecord"
    huge.parent.mkdir()
    huge.write_bytes(length + struct.pack("<I", masked_crc(length)) + b"x" * 64)
    flipped = tmp_path / "flipped.tfrecord"
    good = frame(b"record one")
    flipped.write_bytes(good + good[:-5] + b"X" + good[-4:])
    with pytest.raises(ValueError, match="not a valid TFRecord file"):
        list(payloads.read_tfrecords(str(huge)))
    with pytest.raises(ValueError, match=f"record at byte {len(good)} "):
        list(payloads.read_tfrecords(str(flipped)))
    assert payloads.safe(tfma.load_evaluation, str(huge.parent)) is None


def test_tfma_metrics_are_read_without_importing_tensorflow(tmp_path):
    """In a fresh interpreter (in this session TensorFlow is loaded already, so a check of
    sys.modules here could not fail): reading an evaluation imports no TensorFlow or TFMA."""
    import subprocess

    validation = tfma.tfma_messages()["ValidationResult"](validation_ok=False)
    _write_tfrecord(
        tmp_path / "validations-00000-of-00001.tfrecord", [validation.SerializeToString()]
    )
    _write_tfrecord(tmp_path / "metrics-00000-of-00001.tfrecord", [])
    code = (
        "import sys\n"
        "from beamline.lineage import tfma\n"
        f"result = tfma.load_evaluation({str(tmp_path)!r})\n"
        "heavy = [m for m in ('tensorflow', 'tensorflow_model_analysis') if m in sys.modules]\n"
        "print(result.validation_ok, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False []", out.stdout + out.stderr


def test_commands_import_nothing_heavy():
    import subprocess

    code = (
        "import sys, beamline.cli, importlib\n"
        "for m in ['runs','lineage','diff','why','report']:\n"
        "    importlib.import_module('beamline.commands.' + m)\n"
        "heavy = [m for m in ('tensorflow', 'tfx', 'ml_metadata', 'apache_beam')\n"
        "         if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
