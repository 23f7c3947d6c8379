"""`beamline reproduce` without running a pipeline: its refusals over a real SQLite MLMD store
and object store (runs recorded as the runner records them), the `beamline run` it would start,
and the diff it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beamline.commands import reproduce as command
from beamline.experiments import overrides
from beamline.experiments import reproduce as rp
from beamline.lineage.diff import diff_runs
from beamline.metadata import labels as history
from beamline.metadata.records import LabelAction
from beamline.versions.store import ObjectStore
from tests.beamline.models.conftest import PIPELINE, Store, mlmd  # noqa: F401 - fixture
from tests.beamline.versions.test_data_commands import beamline, keep

ROWS = b"x,y\n1,2\n3,4\n"


@pytest.fixture
def runs(mlmd, tmp_path):  # noqa: F811
    """run-1 kept its data and code and pushed 100 (stable); run-2 kept nothing (--no-versions)
    and pushed 200."""
    data_dir, code_dir = tmp_path / "data", tmp_path / "code"
    data_dir.mkdir()
    code_dir.mkdir()
    (data_dir / "rows.csv").write_bytes(ROWS)
    (code_dir / "module.py").write_text("SCALE = 1\n")
    kept = keep(mlmd, "run-1", data_dir, code_dir)
    mlmd.push("run-1", 100)
    mlmd.push("run-2", 200)
    history.record_change(mlmd.store, PIPELINE, "stable", 100, LabelAction.PROMOTE)
    return mlmd, kept


def test_a_non_empty_to_is_refused_before_anything_is_read(runs, tmp_path):
    db, _ = runs
    target = tmp_path / "busy"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    result = beamline(db, "reproduce", "100", "--to", str(target))
    assert result.exit_code == 2, result.output
    assert "not an empty directory" in result.output and "\n\n" not in result.output.strip()
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]


@pytest.mark.parametrize(
    "ref, says",
    [
        ("999", "No run in"),
        ("nope", "neither a model version"),
    ],
)
def test_an_unknown_version_or_label_is_exit_2(runs, tmp_path, ref, says):
    db, _ = runs
    result = beamline(db, "reproduce", ref, "--to", str(tmp_path / "t"))
    assert result.exit_code == 2, result.output
    assert says in result.output and "beamline models" in result.output
    assert not (tmp_path / "t").exists()


def test_a_version_whose_run_kept_no_data_is_exit_3_naming_the_run(runs, tmp_path):
    db, _ = runs
    result = beamline(db, "reproduce", "200", "--to", str(tmp_path / "t"))
    assert result.exit_code == 3, result.output
    assert "run run-2" in result.output and "--no-versions" in result.output
    assert not (tmp_path / "t").exists()


def test_a_corrupt_object_is_named_and_no_half_checkout_stays(runs, tmp_path):
    db, kept = runs
    objects = ObjectStore(db.layout.objects_dir)
    path = objects.path_of(kept.data.manifest.files[0].sha256)
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    target = tmp_path / "t"
    result = beamline(db, "reproduce", "stable", "--to", str(target))
    assert result.exit_code == 3, result.output
    assert str(path) in result.output and "corrupted" in result.output
    assert not target.exists()  # the directory it created went with the failure


def test_a_missing_object_is_named(runs, tmp_path):
    db, kept = runs
    objects = ObjectStore(db.layout.objects_dir)
    objects.path_of(kept.code.key).unlink()
    target = tmp_path / "empty"
    target.mkdir()
    result = beamline(db, "reproduce", "100", "--to", str(target))
    assert result.exit_code == 3, result.output
    assert f"Object {kept.code.key} is not in the store" in result.output
    assert list(target.iterdir()) == []


def test_code_without_the_pipeline_file_is_refused_and_the_checkout_removed(runs, tmp_path):
    db, _ = runs  # its code version holds components/module.py only
    result = beamline(db, "reproduce", "100", "--to", str(tmp_path / "t"))
    assert result.exit_code == 3, result.output
    assert "has no pipelines/p.py" in result.output and "data checkout --run run-1" in (
        result.output)
    assert not (tmp_path / "t").exists()


def test_the_run_fixes_every_recorded_setting_exactly():
    original = rp.Original(
        PIPELINE, 7, "run-1", "d" * 64, "c" * 64,
        overrides={"train_steps": 120, "learning_rate": 0.003},
        hyperparameters={"learning_rate": 0.003, "units": 32, "dropout": 0.1 + 0.2,
                         "activation": "relu"},
        tuned=True, span=3, extra_spans=(1, 2),
    )
    restored = rp.Restored(Path("/new/checkout/data"), Path("/new/checkout/code"),
                           Path("/new/checkout/python"))
    args = rp.run_arguments(original, Path("/new"), restored)
    assert args[:8] == ["run", PIPELINE, "--root", "/new", "--data", "/new/checkout/data",
                        "--trigger", "reproduce"]
    assert args[args.index("--span-range") + 1] == "1:3"
    assert "--no-tune" not in args  # its Trainer took a search's values: the Tuner stays
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert sets == ["train_steps=120", "learning_rate=0.003", "units=32",
                    "dropout=0.30000000000000004"]
    # Read back as `beamline run --set` reads them: the very values the original recorded.
    assert dict((name, values[0]) for name, values in overrides.parse_sets(sets)) == {
        "train_steps": 120, "learning_rate": 0.003, "units": 32, "dropout": 0.1 + 0.2}
    assert original.unfixed() == ["activation"]
    untuned = rp.Original(PIPELINE, 7, "run-1", "d" * 64, "c" * 64, span=None)
    assert "--no-tune" in rp.run_arguments(untuned, Path("/new"), restored)


def test_the_run_uses_the_original_s_beam_profile_unless_told_otherwise():
    restored = rp.Restored(Path("/n/d"), Path("/n/c"), Path("/n/p"))
    multi = rp.Original(PIPELINE, 7, "run-1", "d" * 64, "c" * 64, beam_profile="direct-multi")
    args = rp.run_arguments(multi, Path("/n"), restored)
    assert args[args.index("--beam") + 1] == "direct-multi"
    asked = rp.run_arguments(multi, Path("/n"), restored, "direct")
    assert asked[asked.index("--beam") + 1] == "direct" and asked.count("--beam") == 1
    older = rp.Original(PIPELINE, 7, "run-1", "d" * 64, "c" * 64)  # recorded no profile
    assert "--beam" not in rp.run_arguments(older, Path("/n"), restored)


def test_the_claimed_run_records_its_beam_profile_and_reproduce_reads_it(runs):
    from beamline.metadata import run_context as rc
    from beamline.metadata.run_claim import claim_run_id

    db, _ = runs
    run_id = claim_run_id(db.store, PIPELINE, "run-9", beam_profile="direct-multi")
    ctx = db.store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    assert rc.properties_of(ctx)[rc.BEAM_PROFILE] == "direct-multi"
    # run-1 ran before runs recorded their profile: the original says so (None).
    original = rp.find_original(db.store, db.graph(), PIPELINE, 100,
                                ObjectStore(db.layout.objects_dir))
    assert original.beam_profile is None


def test_the_environment_puts_the_kept_code_first_and_determinism_on(tmp_path):
    restored = rp.Restored(tmp_path / "d", tmp_path / "c", tmp_path / "py")
    env = rp.run_environment(restored, {"PYTHONPATH": "/elsewhere", "HOME": "/h"})
    assert env["PYTHONPATH"].split(":") == [str(tmp_path / "py"), "/elsewhere"]
    assert env["BEAMLINE_PROJECT"] == str(tmp_path / "c")
    assert env["TF_DETERMINISTIC_OPS"] == "1" and env["PYTHONHASHSEED"] == "0"


def test_settings_count_a_fixed_hyperparameter_once():
    original = rp.settings_of({"learning_rate": 0.01, "train_steps": 50},
                              {"learning_rate": 0.01, "units": 16})
    # The reproduction fixed every hyperparameter with --set: its overrides hold them all.
    reproduced = rp.settings_of({"learning_rate": 0.01, "units": 16, "train_steps": 50},
                                {"learning_rate": 0.01, "units": 16})
    assert original == reproduced == {"hp.learning_rate": 0.01, "hp.units": 16,
                                      "set.train_steps": 50}


def comparison(**changes) -> rp.Comparison:
    metrics = {"Overall": {"accuracy": {"a": 0.95, "b": 0.95, "delta": 0.0},
                           "loss": {"a": 0.2, "b": 0.2, "delta": 0.0}},
               "island=Dream": {"accuracy": {"a": 1.0, "b": 1.0, "delta": 0.0}}}
    fields = dict(
        pipeline=PIPELINE, version=7, original_run="run-1", reproduced_run="run-9",
        root="/new", data=("a" * 64, "a" * 64), code=("b" * 64, "b" * 64),
        settings=rp.compare_settings({"hp.units": 16}, {"hp.units": 16}),
        metrics=rp.metric_rows(metrics),
    )
    fields.update(changes)
    return rp.Comparison(**fields)


def test_an_exact_reproduction_says_so_and_shows_each_metric():
    c = comparison()
    text = rp.render(c)
    assert c.exact and c.within_tolerance
    assert "Inputs (data version):\n  = aaaaaaaaaaaa (the same)" in text
    assert "Code (code version):\n  = bbbbbbbbbbbb (the same)" in text
    assert "Settings:\n  = unchanged: hp.units=16" in text
    assert "Verdict: reproduced exactly: all 3 metrics equal bit for bit" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if "ORIGINAL" in line)
    assert lines[header].split() == ["SLICE", "METRIC", "ORIGINAL", "REPRODUCED", "DIFFERENCE"]
    assert lines[header + 1].split() == ["Overall", "accuracy", "0.95", "0.95", "0"]
    assert lines[header + 3].split()[:2] == ["island=Dream", "accuracy"]
    data = c.to_json()
    assert data["exact"] and data["data_version"]["same"] and data["code_version"]["same"]
    assert data["largest_difference"] == 0.0


def test_a_close_reproduction_says_how_close_and_a_far_one_that_it_is_not():
    rows = rp.metric_rows({"Overall": {"loss": {"a": 0.2, "b": 0.2 + 3e-8},
                                       "accuracy": {"a": 0.95, "b": 0.95}}})
    close = comparison(metrics=rows)
    assert not close.exact and close.within_tolerance
    assert "reproduced within tolerance 1e-06 (largest difference +3e-08 in Overall loss)" in (
        rp.render(close))
    assert "+3e-08 (within)" in rp.render(close)
    far = comparison(metrics=rows, tolerance=1e-9)
    assert not far.within_tolerance
    assert "NOT reproduced within tolerance 1e-09" in rp.render(far)
    assert "(OUTSIDE)" in rp.render(far)
    assert json.loads(json.dumps(far.to_json()))["within_tolerance"] is False


def test_changed_inputs_code_and_settings_are_shown_as_removed_and_added_lines():
    c = comparison(data=("a" * 64, "c" * 64), code=("b" * 64, ""),
                   settings=rp.compare_settings({"hp.units": 16, "set.train_steps": 50},
                                                {"hp.units": 32}),
                   code_files=["components/module.py"])
    text = rp.render(c)
    assert "Inputs (data version):\n  - aaaaaaaaaaaa\n  + cccccccccccc" in text
    assert "Code (code version):\n  - bbbbbbbbbbbb\n  + none kept" in text
    assert "  changed file: components/module.py" in text
    assert "  - hp.units=16\n  + hp.units=32" in text
    assert "  - set.train_steps=50\n  + set.train_steps=(unset)" in text
    assert c.setting_changes == {"hp.units": (16, 32), "set.train_steps": (50, None)}


def test_the_command_and_the_comparison_share_one_default_tolerance():
    assert command.DEFAULT_TOLERANCE == rp.DEFAULT_TOLERANCE


def test_diff_compares_runs_across_two_stores_without_sharing_ids(tmp_path):
    import ml_metadata as mlmd_lib

    from beamline.metadata.connection import sqlite_config
    from beamline.settings import RootLayout

    stores = []
    for name in ("a", "b"):
        layout = RootLayout(tmp_path / name)
        layout.root.mkdir()
        store = Store(mlmd_lib.MetadataStore(sqlite_config(layout.metadata_path)), layout)
        store.push("run-1", 100 if name == "a" else 101)
        stores.append(store.graph())
    graph_a, graph_b = stores
    # The same ids in both stores: one execution in each, yet they are not the same one.
    result = diff_runs(graph_a, graph_a.runs["run-1"], graph_b.runs["run-1"], graph_b=graph_b)
    [node] = result.nodes
    assert not node.same_execution
    assert result.pushed_version == ("100", "101")
    same = diff_runs(graph_a, graph_a.runs["run-1"], graph_a.runs["run-1"])
    assert same.nodes[0].same_execution
