"""TFX spans end to end: the latest span by default, caching per span, a degraded new span.

One session fixture (span_runs) makes three runs (no tuning) over one data directory; every
test here reads it, and the bad-input tests fail before any Beam work.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import beamline, penguin_rows, write_csv


def _states(run) -> dict[str, str]:
    return {
        fields[1]: fields[2]
        for fields in (line.split() for line in run.stdout.splitlines())
        if len(fields) >= 3 and fields[0] in ("✓", "≡", "✗", "·", "→")
    }


def _runs(span_runs) -> list[dict]:
    result = span_runs.beamline("runs", "--json")
    assert result.returncode == 0, result.stderr
    return {r["run_id"]: r for r in json.loads(result.stdout)}


def test_spreadsheet_export_span_passes_validation_and_is_pushed(span_runs):
    """span-1 is penguins.csv with BOM, CRLF and a trailing blank line: the same data."""
    out = span_runs.first.stdout
    assert "span 1" in out
    assert _states(span_runs.first)["ExampleValidator"] == "executed"
    assert "model blessed: yes" in out and "pushed: version" in out


def test_unchanged_latest_span_is_fully_cached_by_the_fast_path(span_runs):
    assert "nothing changed since an earlier successful run" in span_runs.unchanged.stdout
    assert set(_states(span_runs.unchanged).values()) <= {"cached", "resolved"}


def test_new_span_reruns_what_depends_on_data(span_runs):
    assert "span 2" in span_runs.second.stdout
    states = _states(span_runs.second)
    assert "nothing changed" not in span_runs.second.stdout
    for node in ("CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator"):
        assert states[node] == "executed", (node, span_runs.second.stdout)
    assert states["ImportSchemaGen"] == "cached"


def test_degraded_span_is_not_blessed_and_nothing_is_pushed(span_runs):
    second = span_runs.second
    assert "model blessed: no" in second.stdout, second.stdout + second.stderr
    versions = list((span_runs.root / "serving" / "penguin").iterdir())
    assert len(versions) == 1, "only span 1's model may be in the serving directory"
    why = span_runs.beamline("why", "Pusher", "--run", second.run_id)
    assert why.returncode == 0, why.stderr
    assert "Nothing was pushed: the model was NOT blessed by Evaluator" in why.stdout, why.stdout
    assert "failed checks: Overall: sparse_categorical_accuracy" in why.stdout


def _node_execution(store, run_id: str, node: str):
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    node_ctx = store.get_context_by_type_and_name("node", f"penguin.{node}")
    in_run = {e.id for e in store.get_executions_by_context(run_ctx.id)}
    [execution] = [e for e in store.get_executions_by_context(node_ctx.id) if e.id in in_run]
    return execution


def _artifact_ids(store, execution, event_type, key: str) -> set[int]:
    return {
        e.artifact_id
        for e in store.get_events_by_execution_ids([execution.id])
        if e.type == event_type and e.path.steps[0].key == key
    }


def test_evaluator_compared_against_the_previous_blessed_model(span_runs):
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata.connection import sqlite_config

    store = mlmd.MetadataStore(sqlite_config(span_runs.root / "metadata.sqlite"))
    first_trainer = _node_execution(store, span_runs.first.run_id, "Trainer")
    evaluator = _node_execution(store, span_runs.second.run_id, "Evaluator")
    first_model = _artifact_ids(store, first_trainer, pb.Event.OUTPUT, "model")
    assert _artifact_ids(store, evaluator, pb.Event.INPUT, "baseline_model") == first_model


def test_runs_show_the_span_each_run_read(span_runs):
    runs = _runs(span_runs)
    assert runs[span_runs.first.run_id]["span"] == "1"
    assert runs[span_runs.unchanged.run_id]["span"] == "1"
    assert runs[span_runs.second.run_id]["span"] == "2"
    table = span_runs.beamline("runs").stdout
    assert "SPAN" in table.splitlines()[0]


def test_lineage_names_the_span(span_runs):
    [version] = [p.name for p in (span_runs.root / "serving" / "penguin").iterdir()]
    pushed = span_runs.beamline("lineage", version)
    assert pushed.returncode == 0, pushed.stderr
    assert "(span 1)" in pushed.stdout, pushed.stdout
    from_file = span_runs.beamline("lineage", str(span_runs.data / "span-2" / "penguins.csv"))
    assert from_file.returncode == 0, from_file.stderr
    assert "(span 2)" in from_file.stdout, from_file.stdout


def test_diff_between_spans_shows_the_span_and_label_drift(span_runs):
    result = span_runs.beamline("diff", span_runs.first.run_id, span_runs.second.run_id)
    assert result.returncode == 0, result.stderr
    assert "span: 1 -> 2" in result.stdout
    drift = span_runs.beamline(
        "diff", span_runs.first.run_id, span_runs.second.run_id, "--json"
    )
    data = json.loads(drift.stdout)
    assert data["span"] == ["1", "2"]
    assert data["drift"], "statistics of different spans must be compared"


@pytest.mark.parametrize(
    "flags, fragment, code",
    [
        (("--span", "9"), "Span 9 is not in", 3),
        (("--span-range", "5:7"), "No span of", 3),
        (("--span-range", "7:5"), "is not a span range", 2),
    ],
)
def test_bad_span_selection_fails_before_any_beam_work(span_runs, tmp_path, flags, fragment,
                                                        code):
    root = tmp_path / "root"
    result = beamline("run", "penguin", "--data", str(span_runs.data), "--root", str(root),
                      *flags)
    assert result.returncode == code, result.stdout + result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not root.exists()


def test_empty_span_directory_fails_before_any_beam_work(tmp_path):
    header, rows = penguin_rows()
    write_csv(tmp_path / "data" / "span-1" / "penguins.csv", header, rows[:20])
    (tmp_path / "data" / "span-2").mkdir()
    root = tmp_path / "root"
    result = beamline("run", "penguin", "--data", str(tmp_path / "data"), "--root", str(root))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Span 2" in result.stderr and "holds no file" in result.stderr
    assert not root.exists()


def test_span_flag_on_plain_csv_directory_fails_clearly(tmp_path):
    header, rows = penguin_rows()
    write_csv(tmp_path / "data" / "penguins.csv", header, rows[:20])
    root = tmp_path / "root"
    result = beamline("run", "penguin", "--data", str(tmp_path / "data"), "--root", str(root),
                      "--span", "1")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "matches nothing" in result.stderr
    assert not root.exists()
