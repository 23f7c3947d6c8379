"""Cleanup after dead runs removes only what lies inside the pipeline root, whatever the store
names, and only the pipeline's own temporary directories."""

from __future__ import annotations

import os

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from beamline.metadata import run_context as rc
from beamline.runner.cleanup import record_and_clean_killed_runs, remove_leftover_files
from beamline.runner.contained import Outside, contained, inside
from beamline.runner.run_tmp import run_tmp_dir
from beamline.settings import RootLayout
from tests.beamline.runner.forged_store import PIPELINE, RUN, forged_root, victims_intact


def test_paths_leaving_the_base_are_refused(tmp_path):
    base = tmp_path / "base"
    (base / "real").mkdir(parents=True)
    (base / "link").symlink_to(tmp_path)
    assert inside(base, "real", "x") == (base / "real" / "x").resolve()
    for parts in [(str(tmp_path),), ("..",), ("real", "..", ".."), ("a/../..",), ("",), (".",),
                  ("link",), ("link", "x"), ("nul\0",), ()]:
        assert contained(base, *parts) is None, parts
        with pytest.raises(Outside):
            inside(base, *parts)


def test_a_symlinked_base_is_the_operators_choice(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "base").symlink_to(tmp_path / "real")
    assert contained(tmp_path / "base", "x") == tmp_path / "real" / "x"


def test_cleanup_never_removes_what_a_forged_store_names_outside_the_root(tmp_path):
    forged = forged_root(tmp_path)
    planned = record_and_clean_killed_runs(forged.store, forged.layout, PIPELINE, dry_run=True)
    assert planned.killed_runs == [RUN]
    assert set(planned.removed) == forged.leftovers
    assert len(planned.refused) == 4  # absolute, `..`, the node's name, the symlink
    for word in (str(forged.victims["absolute"]), "..", "is a symlink"):
        assert any(word in line for line in planned.refused), word
    assert "refused 4 path(s)" in planned.describe()
    assert all(p.exists() for p in forged.leftovers)

    done = record_and_clean_killed_runs(forged.store, forged.layout, PIPELINE)
    assert victims_intact(forged)
    assert set(done.removed) == forged.leftovers and not any(
        p.exists() for p in forged.leftovers
    )
    assert sorted(done.refused) == sorted(planned.refused)
    [ctx] = forged.store.get_contexts_by_type(rc.RUN_CONTEXT)
    assert rc.properties_of(ctx)[rc.STATE] == rc.RunState.KILLED
    states = {e.last_known_state for e in forged.store.get_executions()}
    assert states == {pb.Execution.CANCELED}


def test_cleaning_up_after_a_pipeline_spares_the_temp_dirs_of_one_named_like_it(tmp_path):
    layout = RootLayout(tmp_path)
    stale = run_tmp_dir(layout, "taxi", "2026-01-01T00:00:00")
    live = run_tmp_dir(layout, "taxi-v2", "2026-01-01T00:00:01")
    for path in (stale, live):
        path.mkdir(parents=True)
    done = remove_leftover_files(layout, "taxi")
    assert done.removed == [stale] and not stale.exists()
    assert live.is_dir()
    assert sorted(os.listdir(layout.tmp_root)) == ["taxi-v2"]  # taxi's own directory went too


@pytest.mark.parametrize("run_id", ["", ".", ".."])
def test_a_run_temp_dir_is_always_one_below_the_pipelines(tmp_path, run_id):
    layout = RootLayout(tmp_path)
    assert run_tmp_dir(layout, "p", run_id).parent == layout.tmp_root / "p"
    assert contained(layout.tmp_root / "p", run_tmp_dir(layout, "p", run_id).name)
