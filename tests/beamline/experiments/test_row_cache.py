"""The experiments row cache (beamline.experiments.cache) over the real SQLite MLMD store of
test_table: what `beamline experiments` prints from it is what a fresh build prints, and a new
run, a label change, a running run, a store written anew and a damaged or foreign cache file
each give the rows a fresh build gives."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from beamline.experiments import cache, table
from beamline.experiments.text import render
from beamline.metadata import run_context as rc
from tests.beamline.experiments.test_table import PIPELINE, Writer, _rows
from tests.beamline.experiments.test_table import root as root  # noqa: F401 - the fixture
from tests.beamline.ui import writer

ARGS = (
    (), ("--slices",), ("--where", "auc > 0.9 and blessed"), ("--sort", "-auc"),
    ("--columns", "run,units,score,labels"), ("--experiment", "lr-sweep"),
)


def _fresh(root: Path, args: tuple[str, ...], as_json: bool) -> str:
    """What the command printed before the cache: every row built from a loaded Graph."""
    def value(flag):
        return args[args.index(flag) + 1] if flag in args else None

    rows = _rows(root, slices="--slices" in args)
    chosen = table.choose_columns(rows, value("--columns")) if not as_json else None
    rows = table.order(table.select(rows, value("--where"), value("--experiment")),
                       value("--sort"))
    if as_json:
        return json.dumps([r.to_json() for r in rows], indent=2, default=str) + "\n"
    return render(rows, chosen) + "\n"


def _cli(root: Path, *args: str) -> str:
    from click.testing import CliRunner

    from beamline.cli import cli

    result = CliRunner().invoke(cli, ["experiments", PIPELINE, "--root", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _cache_file(root: Path) -> Path:
    return root / cache.ROW_CACHE_FILE


def _answered_from_cache(root: Path) -> bool:
    """Whether the next answer comes from the cache alone (the store unchanged since)."""
    from beamline.metadata.connection import describe

    kept = cache.RowCache(_cache_file(root), describe(None, root / "metadata.sqlite"))
    try:
        marker = cache.store_marker(root / "metadata.sqlite")
        return kept.answer(PIPELINE, marker, True, False) is not None
    finally:
        kept.close()


def _writer(root: Path) -> Writer:
    from beamline.metadata.connection import open_store, sqlite_config

    return Writer(open_store(sqlite_config(root / "metadata.sqlite")), root)


def test_kept_rows_print_what_a_fresh_build_prints(root):
    assert not _cache_file(root).exists()
    for args in ARGS:
        for as_json in (True, False):
            command = (*args, "--json") if as_json else args
            fresh = _fresh(root, args, as_json)
            assert _cli(root, *command) == fresh  # the first answer keeps the rows
            assert _answered_from_cache(root)
            assert _cli(root, *command) == fresh  # the next comes from them


def test_a_new_run_a_label_change_and_a_running_run_are_seen(root):
    _cli(root, "--json")
    w = _writer(root)
    # A new run: its row is built, a's and b's come from the cache.
    run = w.run("c", **{rc.EXPERIMENT: "lr-sweep"})
    w.execution(run, "Trainer")
    assert not _answered_from_cache(root)
    assert [r["run"] for r in json.loads(_cli(root, "--json"))] == ["c", "b", "a"]
    assert _cli(root, "--json") == _fresh(root, (), True)

    # A label change: a's labels follow it.
    pushed = next(iter(w.store.get_artifacts_by_type("PushedModel")))
    writer.label_change(w.store, PIPELINE, "canary", -1, 1764000000, "promote", pushed.id)
    a = json.loads(_cli(root, "--json"))[-1]
    assert a["labels"] == ["canary", "stable"] and a == json.loads(_fresh(root, (), True))[-1]
    assert _cli(root, "--where", "labels = canary", "--columns", "run") == _fresh(
        root, ("--where", "labels = canary", "--columns", "run"), False)

    # A running run: never kept; what it records later shows without its context changing.
    run = w.run("d", **{rc.STATE: rc.RunState.RUNNING})
    w.execution(run, "Trainer")
    assert json.loads(_cli(root, "--json"))[0]["state"] == rc.RunState.RUNNING
    with sqlite3.connect(_cache_file(root)) as db:
        assert {r for (r,) in db.execute("SELECT run FROM rows")} == {"a", "b", "c"}
    w.execution(run, "Evaluator", outputs={
        "blessing": w.artifact("ModelBlessing", root / "blessing_d", blessed=1)})
    assert json.loads(_cli(root, "--json"))[0]["blessed"] is True
    assert _cli(root, "--json") == _fresh(root, (), True)


def test_a_store_written_anew_is_not_answered_from_the_old_ones_rows(root):
    _cli(root, "--json")
    (root / "metadata.sqlite").unlink()
    w = _writer(root)
    run = w.run("a", **{rc.EXPERIMENT: "another"})
    w.execution(run, "Trainer")
    (only,) = json.loads(_cli(root, "--json"))
    assert only["experiment"] == "another" and only["trials"] == [] and only["version"] is None
    assert _cli(root, "--json") == _fresh(root, (), True)
    with sqlite3.connect(_cache_file(root)) as db:  # b's row went with the old store
        assert [r for (r,) in db.execute("SELECT run FROM rows")] == ["a"]


@pytest.mark.parametrize("damage", ["garbage", "foreign", "edited row", "truncated"])
def test_a_damaged_or_foreign_cache_file_gives_the_fresh_rows(root, damage):
    fresh = _fresh(root, (), True)
    _cli(root, "--json")
    path = _cache_file(root)
    if damage == "garbage":
        path.write_bytes(b"not a database at all\n" * 100)
    elif damage == "foreign":
        path.unlink()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE rows (x INTEGER)")
            db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
            db.execute("INSERT INTO rows VALUES (1)")
    elif damage == "edited row":
        with sqlite3.connect(path) as db:
            db.execute("UPDATE rows SET body = replace(body, '0.97', '0.99')")
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    assert _cli(root, "--json") == fresh
    assert _cli(root, "--json") == fresh
    assert _answered_from_cache(root)  # the file was written anew


def test_the_ui_keeps_rows_by_the_same_rule(root):
    from beamline.lineage.access import open_graph_and_store
    from beamline.metadata import labels as label_history

    graph, store = open_graph_and_store(root, None, PIPELINE)
    held = label_history.labels_by_version(
        label_history.holders(label_history.history(store, PIPELINE)))
    kept: dict = {}
    first = cache.reuse_rows(graph, PIPELINE, held, kept)
    assert set(kept) == {"a", "b"}
    again = cache.reuse_rows(graph, PIPELINE, held, kept)
    assert [r is k for r, k in zip(first, again, strict=True)] == [True, True]
    assert [r.values for r in first] == [r.values for r in table.build(graph, PIPELINE, held)]


def test_a_few_runs_read_alone_give_the_rows_the_whole_graph_gives(root):
    from beamline.lineage.access import open_graph_and_store
    from beamline.lineage.load import load_runs
    from beamline.metadata import labels as label_history

    w = _writer(root)  # c: a's hyperparameters imported again, and a cached ExampleGen of a's
    run = w.run("c")
    a_examples = next(a for a in w.store.get_artifacts_by_type("Examples")
                      if a.custom_properties["span"].int_value == 3)
    w.execution(run, "ExampleGen", outputs={"examples": a_examples}, input_base="x")
    [cached] = w.store.get_executions_by_context(run.id)
    cached.last_known_state = w.pb.Execution.CACHED
    w.store.put_executions([cached])
    imported = w.artifact("HyperParameters", root.parent / "files" / "best")
    w.execution(run, "Importer", outputs={"result": imported})
    w.execution(run, "Trainer", inputs={"hyperparameters": imported})
    graph, store = open_graph_and_store(root, None, PIPELINE)
    held = label_history.labels_by_version(
        label_history.holders(label_history.history(store, PIPELINE)))
    whole = {r.get("run"): r for r in table.build(graph, PIPELINE, held, with_slices=True)}
    assert whole["c"].get("tuned_in") == "a" and whole["c"].get("span") == "3"
    assert whole["c"].get("fingerprint") == whole["a"].get("fingerprint") is not None
    for run_id in ("a", "b", "c"):
        few = load_runs(store, PIPELINE, [run_id])
        assert set(few.runs) == {run_id}
        assert len(few.executions) < len(graph.executions)
        row = table.run_row(few, few.runs[run_id], held, with_slices=True)
        assert row.to_json() == whole[run_id].to_json()
        assert [c.values for c in row.children] == [c.values for c in whole[run_id].children]
    assert load_runs(store, "no-such-pipeline", ["a"]) is None
