"""End to end: the penguin pipeline on Beam with MLMD, its cache, and its data contract."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from beamline.lineage import payloads
from beamline.lineage.epochs import read_trial_histories
from beamline_pipelines.penguin import default_data_root
from tests.e2e.conftest import beamline

COMPONENT_NODES = {
    "CsvExampleGen",
    "ImportSchemaGen",
    "StatisticsGen",
    "ExampleValidator",
    "Transform",
    "Tuner",
    "Trainer",
    "Evaluator",
    "Pusher",
}


def _executions_by_node(store, pipeline: str, run_id: str) -> dict[str, list]:
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    assert run_ctx is not None, f"no pipeline_run context {run_id}"
    in_run = {e.id: e for e in store.get_executions_by_context(run_ctx.id)}
    by_node = {}
    for node in COMPONENT_NODES:
        ctx = store.get_context_by_type_and_name("node", f"{pipeline}.{node}")
        assert ctx is not None, node
        by_node[node] = [e for e in store.get_executions_by_context(ctx.id) if e.id in in_run]
    return by_node


def test_every_node_completes_in_mlmd(penguin_run):
    by_node = _executions_by_node(penguin_run.store(), "penguin", penguin_run.first.run_id)
    for node, executions in by_node.items():
        assert [e.last_known_state for e in executions] == [
            metadata_store_pb2.Execution.COMPLETE
        ], node


def test_a_run_leaves_nothing_in_tmpdir(penguin_run):
    """TFX's package builds, autograph files, Beam's temp files: all under <root>/tmp, removed."""
    assert penguin_run.tmpdir_left == []
    tmp_root = penguin_run.layout.tmp_root
    assert not tmp_root.exists() or not any(tmp_root.iterdir())


def test_first_run_output_reports_blessed_push(penguin_run):
    out = penguin_run.first.stdout
    assert "model blessed: yes" in out
    assert "pushed: version" in out
    assert f"beamline serve --root {penguin_run.layout.root}" in out  # follows the labels


def test_every_tuner_trial_has_a_history_as_long_as_its_epochs(penguin_run):
    listed = beamline("experiments", "penguin", "--root", str(penguin_run.root), "--json")
    assert listed.returncode == 0, listed.stderr
    trials = [t for row in json.loads(listed.stdout) for t in row["trials"]]
    assert trials, "the first run's Tuner searched"
    for trial in trials:
        assert trial["state"] == "COMPLETED"
        brief = trial["history"]
        assert trial["epochs"] == brief["epochs"] == 10  # 30 tuner steps: 10 epochs of 3
        # The whole curve, where the brief says it is, read without TensorFlow.
        history = read_trial_histories(os.path.dirname(brief["file"]))[str(trial["trial"])]
        assert set(history.metrics) == {
            "loss", "sparse_categorical_accuracy", "val_loss", "val_sparse_categorical_accuracy"}
        for name, values in history.metrics.items():
            assert len(values) == history.epochs == 10 and None not in values, name
            assert brief["final"][name] == values[-1]
        # KerasTuner scores a trial by its best epoch: one of the recorded ones.
        assert trial["score"] == pytest.approx(
            max(history.metrics["val_sparse_categorical_accuracy"]))


def test_unchanged_rerun_is_fully_cached_by_tfx(penguin_run):
    by_node = _executions_by_node(penguin_run.store(), "penguin", penguin_run.rerun.run_id)
    for node, executions in by_node.items():
        assert [e.last_known_state for e in executions] == [
            metadata_store_pb2.Execution.CACHED
        ], node
    assert "nodes: 0 executed, 9 cached" in penguin_run.rerun.stdout
    versions = list(penguin_run.layout.serving_dir("penguin").iterdir())
    assert len(versions) == 1, "an unchanged re-run must not push a new version"


def _outputs(store, executions) -> dict[str, set[int]]:
    events = store.get_events_by_execution_ids([e.id for e in executions])
    out: dict[str, set[int]] = {}
    for e in events:
        if e.type == metadata_store_pb2.Event.OUTPUT:
            out.setdefault(e.path.steps[0].key, set()).add(e.artifact_id)
    return out


def test_a_run_opens_the_store_once(penguin_run):
    """Cleanup, the run's claim, its versions and the replay share one store; TFX's launchers
    (the re-run's cached nodes) open their own, through TFX."""
    for run in ("rerun", "fast_rerun"):
        opened = (penguin_run.opens / f"{run}.opens").read_text().splitlines()
        assert len(opened) == 1, (run, opened)
        assert opened[0].endswith(str(penguin_run.layout.metadata_path)), opened


def test_fast_rerun_records_what_tfx_records(penguin_run):
    """The fast path skips TensorFlow but leaves MLMD as TFX's own cache hits do."""
    assert "nothing changed since an earlier successful run" in penguin_run.fast_rerun.stdout
    store = penguin_run.store()
    tfx_run = _executions_by_node(store, "penguin", penguin_run.rerun.run_id)
    fast_run = _executions_by_node(store, "penguin", penguin_run.fast_rerun.run_id)
    for node in COMPONENT_NODES:
        [tfx_exec], [fast_exec] = tfx_run[node], fast_run[node]
        assert fast_exec.last_known_state == metadata_store_pb2.Execution.CACHED, node
        assert fast_exec.type_id == tfx_exec.type_id
        assert _outputs(store, [fast_exec]) == _outputs(store, [tfx_exec]), node
        contexts = {(c.type, c.name) for c in store.get_contexts_by_execution(fast_exec.id)}
        assert ("pipeline", "penguin") in contexts and ("node", f"penguin.{node}") in contexts
        assert ("pipeline_run", penguin_run.fast_rerun.run_id) in contexts


def _pushed_model_dir(penguin_run) -> Path:
    [version] = list(penguin_run.layout.serving_dir("penguin").iterdir())
    assert version.name.isdigit()
    assert (version / "saved_model.pb").exists()
    return version


def _held_out_examples(penguin_run) -> list[tf.train.Example]:
    """The eval split ExampleGen wrote: rows the Trainer never trained on."""
    pattern = f"{penguin_run.first_output_uri('CsvExampleGen', 'examples')}/Split-eval/*.gz"
    files = tf.io.gfile.glob(pattern)
    assert files, pattern
    examples = []
    for f in files:
        for record in tf.data.TFRecordDataset(f, compression_type="GZIP"):
            examples.append(tf.train.Example.FromString(record.numpy()))
    return examples


def test_pushed_model_classifies_held_out_examples(penguin_run):
    model = tf.saved_model.load(str(_pushed_model_dir(penguin_run)))
    examples = _held_out_examples(penguin_run)
    assert len(examples) > 80
    labels = [e.features.feature["species"].bytes_list.value[0].decode() for e in examples]
    result = model.signatures["classification"](
        inputs=tf.constant([e.SerializeToString() for e in examples])
    )
    classes = result["classes"].numpy().astype(str)
    predicted = classes[np.arange(len(examples)), result["scores"].numpy().argmax(axis=1)]
    accuracy = float(np.mean(predicted == np.array(labels)))
    assert accuracy >= 0.9, accuracy


def test_pushed_model_serves_raw_feature_rows(penguin_run):
    """serving_default takes raw values (what a JSON client sends), no tf.Example needed."""
    model = tf.saved_model.load(str(_pushed_model_dir(penguin_run)))
    signature = model.signatures["serving_default"]
    with open(default_data_root(), newline="") as f:
        rows = [r for r in csv.DictReader(f) if "NA" not in r.values()]
    inputs = {}
    for name, spec in signature.structured_input_signature[1].items():
        values = [rows[i][name] for i in range(0, len(rows), 3)]
        inputs[name] = tf.constant(np.array(values).astype(spec.dtype.as_numpy_dtype))
    labels = np.array([rows[i]["species"] for i in range(0, len(rows), 3)])
    out = signature(**inputs)
    predicted = out["classes"].numpy().astype(str)[
        np.arange(len(labels)), out["scores"].numpy().argmax(axis=1)
    ]
    assert float(np.mean(predicted == labels)) >= 0.9


def test_classification_signature_uses_tf_serving_classify_method(penguin_run):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString(
        (_pushed_model_dir(penguin_run) / "saved_model.pb").read_bytes()
    )
    signatures = saved.meta_graphs[0].signature_def
    assert signatures["classification"].method_name == "tensorflow/serving/classify"
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"


def _bad_copy(tmp_path: Path, edit) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    with open(default_data_root(), newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    rows, header = edit(rows, header)
    with open(data / "penguins.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return data


def _species_out_of_domain(rows, header):
    rows[3]["species"] = "Dodo"
    return rows, header


def _string_in_numeric_column(rows, header):
    rows[7]["body_mass_g"] = "heavy"
    return rows, header


def _required_column_missing(rows, header):
    return rows, [h for h in header if h != "island"]


def _mostly_missing_column(rows, header):
    """60% of body_mass_g is NA: present in 40% of rows, below the schema's min_fraction."""
    for i, row in enumerate(rows):
        if i % 5 < 3:
            row["body_mass_g"] = "NA"
    return rows, header


@pytest.mark.parametrize(
    "edit, feature",
    [
        (_species_out_of_domain, "species"),
        (_string_in_numeric_column, "body_mass_g"),
        (_required_column_missing, "island"),
    ],
)
def test_anomalous_data_stops_before_training_and_pushes_nothing(
    penguin_run, tmp_path, edit, feature
):
    data = _bad_copy(tmp_path, edit)
    before = sorted(p.name for p in penguin_run.layout.serving_dir("penguin").iterdir())
    result = beamline("run", "penguin", "--root", str(penguin_run.root), "--data", str(data),
                      "--no-tune")
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"feature '{feature}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Trainer           skipped" in result.stdout or "Trainer skipped" in " ".join(
        result.stdout.split()
    )
    after = sorted(p.name for p in penguin_run.layout.serving_dir("penguin").iterdir())
    assert after == before
    # A changed data file re-runs what depends on it; the unchanged schema import is reused.
    states = {
        fields[1]: fields[2]
        for fields in (line.split() for line in result.stdout.splitlines())
        if len(fields) >= 3 and fields[0] in ("✓", "≡", "✗", "·", "→")
    }
    assert states["CsvExampleGen"] == "executed"
    assert states["ImportSchemaGen"] == "cached"


def test_mostly_missing_column_is_named_as_a_presence_anomaly(penguin_run, tmp_path):
    data = _bad_copy(tmp_path, _mostly_missing_column)
    result = beamline("run", "penguin", "--root", str(penguin_run.root), "--data", str(data),
                      "--no-tune")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Run stopped at ExampleValidator" in result.stderr
    assert "feature 'body_mass_g'" in result.stderr and "present" in result.stderr.lower()


def test_missing_cells_are_absent_features_and_statistics_count_them(penguin_run):
    """NA cells are absent keys (not empty lists), so TFDV's missing counts are the truth."""
    import tensorflow_data_validation as tfdv

    examples_uri = penguin_run.first_output_uri("CsvExampleGen", "examples")
    examples = [
        tf.train.Example.FromString(record.numpy())
        for f in tf.io.gfile.glob(f"{examples_uri}/Split-train/*.gz")
        for record in tf.data.TFRecordDataset(f, compression_type="GZIP")
    ]
    without_sex = sum("sex" not in e.features.feature for e in examples)
    assert without_sex > 0
    assert all(
        len(f.bytes_list.value) + len(f.int64_list.value) + len(f.float_list.value) == 1
        for e in examples
        for f in e.features.feature.values()
    ), "a present feature has exactly one value: no empty lists"
    stats_uri = penguin_run.first_output_uri("StatisticsGen", "statistics")
    stats = tfdv.load_stats_binary(f"{stats_uri}/Split-train/FeatureStats.pb")
    [sex] = [f for f in stats.datasets[0].features if f.path.step == ["sex"]]
    assert sex.string_stats.common_stats.num_missing == without_sex
    assert stats.datasets[0].num_examples == len(examples)
    # What the HTML report's "Missing" column shows.
    _, summaries = payloads.feature_summaries(stats)
    assert {s.name: s.missing for s in summaries}["sex"] == without_sex


def test_missing_data_directory_fails_before_any_beam_work(tmp_path):
    result = beamline("run", "penguin", "--root", str(tmp_path / "root"),
                      "--data", str(tmp_path / "absent"))
    assert result.returncode == 3
    assert "does not exist" in result.stderr and str(tmp_path / "absent") in result.stderr
    assert not (tmp_path / "root" / "metadata.sqlite").exists()


def test_empty_data_directory_fails_clearly(tmp_path):
    (tmp_path / "empty").mkdir()
    result = beamline("run", "penguin", "--root", str(tmp_path / "root"),
                      "--data", str(tmp_path / "empty"))
    assert result.returncode == 3
    assert "holds no *.csv" in result.stderr and "Parquet" in result.stderr
    assert "Traceback" not in result.stderr
