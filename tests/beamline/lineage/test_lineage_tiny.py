"""runs / why / diff / lineage / report against a real (tiny) TFX pipeline's MLMD."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from beamline.cli import cli
from beamline.errors import BeamlineError


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def as_json(*args: str):
    return json.loads(invoke(*args, "--json").output)


@pytest.fixture(scope="module")
def store(tiny_store):
    return tiny_store


def test_runs_summarizes_each_run(store):
    runs = as_json("runs", "--root", str(store.root))
    assert [r["run_id"] for r in runs] == list(reversed(store.run_ids))  # newest first
    first, second, third, fourth = reversed(runs)
    assert (first["executed"], first["cached"], first["state"]) == (6, 0, "complete")
    assert (second["executed"], second["cached"]) == (0, 6)
    assert second["pushed_version"] is None  # its Pusher came from the cache: nothing pushed
    assert first["pushed_version"] and third["pushed_version"] and fourth["pushed_version"]
    assert len({first["pushed_version"], third["pushed_version"], fourth["pushed_version"]}) == 3
    # run 4 changed only the module: Trainer and Pusher ran
    assert (fourth["executed"], fourth["cached"]) == (2, 4)
    assert all(r["duration_s"] >= 0 and r["blessed"] is None for r in runs)
    table = invoke("runs", "--root", str(store.root)).output
    assert table.splitlines()[0].split()[:5] == ["RUN", "PIPELINE", "SPAN", "STARTED", "STATE"]
    # No span pattern: TFX's ExampleGen records span 0.
    assert {r["span"] for r in runs} == {"0"}
    assert store.run_ids[0] in table


def test_why_cached_names_the_reused_execution(store):
    data = as_json("why", "CsvExampleGen", "--run", store.run_ids[1], "--root", str(store.root))
    assert data["state"] == "CACHED"
    assert data["reused_run"] == store.run_ids[0]
    text = invoke("why", "statisticsgen", "--run", "latest~2", "--root", str(store.root)).output
    assert "came from the cache" in text and store.run_ids[0] in text


def test_why_data_change_is_traced_to_the_source(store):
    data = as_json("why", "StatisticsGen", "--run", store.run_ids[2], "--root", str(store.root))
    assert data["state"] == "COMPLETE"
    assert [c["kind"] for c in data["changes"]] == ["input"]
    causes = data["root_causes"]
    assert causes and causes[0]["node"] == "CsvExampleGen" and causes[0]["kind"] == "data"
    assert "total_bytes" in causes[0]["before"] and causes[0]["before"] != causes[0]["after"]
    text = invoke("why", "ExampleValidator", "--run", store.run_ids[2], "--root", str(store.root))
    assert "Root cause" in text.output and "source data changed" in text.output


def test_why_module_change_names_the_fingerprints(store):
    data = as_json("why", "Trainer", "--root", str(store.root))  # latest = run 4
    assert data["state"] == "COMPLETE"
    code = [c for c in data["changes"] if c["kind"] == "code"]
    assert code and code[0]["name"] == "module_path"
    assert "module code changed" in code[0]["detail"]
    # the upstream inputs were the same artifacts (cached), so no input change is reported
    assert not [c for c in data["changes"] if c["kind"] == "input"]
    first = as_json("why", "Trainer", "--run", store.run_ids[0], "--root", str(store.root))
    assert "first execution" in first["verdict"]


def test_why_unknown_node_lists_the_nodes(store):
    result = invoke("why", "Tuner", "--root", str(store.root), ok=False)
    assert isinstance(result.exception, BeamlineError)
    assert "CsvExampleGen" in str(result.exception) and "Trainer" in str(result.exception)


def test_diff_data_change_drift_and_anomalies(store):
    data = as_json("diff", store.run_ids[0], store.run_ids[2], "--root", str(store.root))
    assert any(item["changed"] for item in data["data"])
    drift = {d["feature"]: d for d in data["drift"]["train"]}
    assert drift["color"]["measure"] == "L_INFINITY" and drift["color"]["drifted"]
    assert drift["x"]["measure"] == "JENSEN_SHANNON_DIVERGENCE" and drift["x"]["drifted"]
    assert not drift["label"]["drifted"]
    assert any(a["feature"] == "color" for a in data["anomalies_new"])
    assert data["pushed_version"][0] != data["pushed_version"][1]
    text = invoke("diff", store.run_ids[0], store.run_ids[2], "--root", str(store.root)).output
    assert "CHANGED" in text and "DRIFT" in text and "New anomalies in B:" in text


def test_diff_drift_threshold_decides_what_is_flagged(store):
    """--drift-threshold: the same two runs, the same measured drift, judged against the
    threshold given (the tiny schema sets no drift comparator of its own)."""
    args = ("diff", store.run_ids[0], store.run_ids[2], "--root", str(store.root))
    measured = {d["feature"]: d for d in as_json(*args)["drift"]["train"]}
    color, x = measured["color"]["value"], measured["x"]["value"]
    assert 0 < min(color, x)
    between = (min(color, x) + max(color, x)) / 2
    for threshold, flagged in (
        (max(color, x) + 0.01, set()),
        (between, {"color" if color > x else "x"} if color != x else set()),
        (min(color, x) / 2, {"color", "x"}),
    ):
        drift = as_json(*args, "--drift-threshold", str(threshold))["drift"]["train"]
        assert {d["feature"] for d in drift if d["drifted"]} == flagged, (threshold, drift)
        assert {d["threshold"] for d in drift} == {threshold}
        assert {d["feature"]: d["value"] for d in drift} == {
            f: d["value"] for f, d in measured.items()
        }


def test_runs_limit_keeps_the_newest(store):
    newest_first = list(reversed(store.run_ids))
    for limit in (1, 3):
        runs = as_json("runs", "--root", str(store.root), "--limit", str(limit))
        assert [r["run_id"] for r in runs] == newest_first[:limit]
    table = invoke("runs", "--root", str(store.root), "--limit", "1").output
    assert newest_first[0] in table and all(r not in table for r in newest_first[1:])


def test_diff_module_change_only(store):
    data = as_json("diff", "--root", str(store.root))  # previous vs latest: runs 3 and 4
    assert data["run_a"] == store.run_ids[2] and data["run_b"] == store.run_ids[3]
    code = [
        (n["node"], c["name"]) for n in data["nodes"] for c in n["changes"] if c["kind"] == "code"
    ]
    assert code == [("Trainer", "module_path")]
    assert not any(item["changed"] for item in data["data"])
    assert data["drift"] == {} and "same statistics" in " ".join(data["notes"])
    assert data["anomalies_new"] == []


def test_lineage_from_pushed_version_to_source_files(store):
    version = as_json("runs", "--root", str(store.root))[0]["pushed_version"]
    data = as_json("lineage", version, "--root", str(store.root))
    nodes = [s["node"] for s in data["steps"]]
    assert nodes[0] == "Pusher" and nodes[1] == "Trainer"
    assert set(nodes[2:]) == {"CsvExampleGen", "ImportSchemaGen"}
    trainer = next(s for s in data["steps"] if s["node"] == "Trainer")
    assert trainer["facts"]["module_fingerprint"]
    assert trainer["facts"]["train_args"]
    assert data["sources"] and data["sources"][0]["files"][0]["path"].endswith("data.csv")
    assert data["sources"][0]["unchanged_since_run"] == {"single_split": True}
    # the Trainer of run 4 ran, its Examples came from run 3's ExampleGen (cached in run 4)
    gen = next(s for s in data["steps"] if s["node"] == "CsvExampleGen")
    assert gen["run_id"] == store.run_ids[2]
    text = invoke("lineage", version, "--root", str(store.root)).output
    assert "<- Trainer" in text and "sha256" in text and "module: fingerprint" in text


def test_lineage_by_path_and_artifact_id(store):
    version = as_json("runs", "--root", str(store.root))[0]["pushed_version"]
    by_version = as_json("lineage", version, "--root", str(store.root))
    destination = by_version["target"]["properties"]["pushed_destination"]
    by_path = as_json("lineage", destination, "--root", str(store.root))
    assert by_path["target"]["id"] == by_version["target"]["id"]
    model_id = by_version["models"][0]
    model_uri = by_version["artifacts"][str(model_id)]["uri"]
    by_model = as_json("lineage", model_uri, "--root", str(store.root))
    assert by_model["target"]["type"] == "Model" and by_model["steps"][0]["node"] == "Trainer"
    assert as_json("lineage", f"#{model_id}", "--root", str(store.root))["target"]["id"] == model_id


def test_lineage_forward_from_data_file(store):
    data = as_json("lineage", str(store.data_dir / "data.csv"), "--root", str(store.root))
    assert data["direction"] == "downstream"
    pushed = {p["version"] for p in data["pushed"]}
    runs = as_json("runs", "--root", str(store.root))
    assert pushed == {r["pushed_version"] for r in runs if r["pushed_version"]}
    assert len(data["models"]) == 3


def test_lineage_unknown_reference(store):
    result = invoke("lineage", "no-such-thing", "--root", str(store.root), ok=False)
    assert isinstance(result.exception, BeamlineError)
    assert "pushed version" in str(result.exception)


def test_missing_store_is_one_clear_error(tmp_path):
    result = invoke("runs", "--root", str(tmp_path), ok=False)
    assert isinstance(result.exception, BeamlineError)
    assert result.exception.exit_code == 5 and "No metadata store" in str(result.exception)


def test_run_references(store):
    from beamline.lineage.runs import UnknownRun, resolve_run

    graph = store.graph()
    assert resolve_run(graph, "latest").id == store.run_ids[3]
    assert resolve_run(graph, "previous").id == store.run_ids[2]
    assert resolve_run(graph, "latest~3").id == store.run_ids[0]
    assert resolve_run(graph, store.run_ids[1]).id == store.run_ids[1]
    with pytest.raises(UnknownRun):
        resolve_run(graph, "latest~9")
    with pytest.raises(UnknownRun):
        resolve_run(graph, "1999-")


def test_report_writes_html(store, tmp_path):
    out = tmp_path / "r.html"
    data = as_json("report", store.run_ids[2], "--root", str(store.root), "--out", str(out))
    assert data["path"] == str(out)
    html = out.read_text()
    for element in ('id="dag-svg"', 'id="nodes-table"', 'id="anomalies-table"', 'id="lineage-svg"'):
        assert element in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    default = invoke("report", "--root", str(store.root)).output
    assert str(store.root / "reports") in default
