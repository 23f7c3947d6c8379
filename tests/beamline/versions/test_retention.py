"""Retention of kept versions in `beamline gc`, and `beamline data du`, over a real SQLite MLMD
store and object store: runs recorded as the runner records them (tests/.../test_data_commands),
pushes as TFX's Pusher records them, labels through the label history."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from beamline.metadata import labels as history
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import process_start
from beamline.metadata.records import LabelAction
from beamline.versions.store import ObjectStore
from tests.beamline.models.conftest import PIPELINE, Store, mlmd  # noqa: F401 - fixture
from tests.beamline.versions.test_data_commands import beamline, keep, runs  # noqa: F401

ORPHAN = b"an object no run names"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def store_runs(runs, tmp_path):  # noqa: F811
    """`runs` (run-1 pushed 100 = stable, run-2 read the same, run-3 pushed 300 = canary), then
    run-4 on new data it alone read (no push, no label) and run-5, the newest, on other data;
    and one object no run names."""
    db, _ = runs
    code_dir = tmp_path / "code"
    fourth = keep(db, "run-4", _write(tmp_path / "d4" / "rows.csv", b"x,y\n4,4\n").parent,
                  code_dir)
    fifth = keep(db, "run-5", _write(tmp_path / "d5" / "rows.csv", b"x,y\n5,5\n").parent,
                 code_dir)
    objects = ObjectStore(db.layout.objects_dir)
    orphan = objects.put_bytes(ORPHAN).key
    return db, objects, fourth, fifth, orphan


def _gc(db: Store, *args: str) -> dict:
    result = beamline(db, "gc", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["objects"]


def _sound(objects: ObjectStore, kept) -> bool:
    """Every object of a version `keep` returned is still in the store, and hashes right."""
    keys = {kept.data.key, kept.code.key}
    keys |= {e.sha256 for e in kept.data.manifest.files + kept.code.manifest.files}
    return all(objects.has(k) for k in keys) and objects.verify() == []


def test_gc_deletes_an_object_no_run_names_and_keeps_every_run_s_versions(store_runs, runs):  # noqa: F811
    db, objects, fourth, fifth, orphan = store_runs
    _, (first, _, third) = runs
    done = _gc(db)
    assert done["removed"] == [orphan] and done["freed_bytes"] == len(ORPHAN)
    assert not objects.has(orphan)
    assert all(_sound(objects, k) for k in (first, third, fourth, fifth))
    assert _gc(db)["freed_objects"] == 0


def test_keep_data_frees_old_runs_but_never_a_labelled_version_s_data(store_runs, runs, tmp_path):  # noqa: F811
    db, objects, fourth, fifth, orphan = store_runs
    _, (first, _, third) = runs
    done = _gc(db, "--keep-data", "1")
    # run-4's data version and its one file go; its code version is run-5's too and stays.
    gone = {fourth.data.key, fourth.data.manifest.files[0].sha256, orphan}
    assert set(done["removed"]) == gone
    assert set(done["dropped_runs"]) == {"run-2", "run-4"}
    assert not any(objects.has(k) for k in gone)
    assert objects.has(fourth.code.key)
    # stable (100, run-1) and canary (300, run-3) keep theirs: both still restore.
    assert all(_sound(objects, k) for k in (first, third, fifth))
    restored = tmp_path / "restored"
    result = beamline(db, "data", "checkout", "--label", "stable", "-p", PIPELINE, "--to",
                      str(restored), "--code")
    assert result.exit_code == 0, result.output
    assert (restored / "span-1" / "rows.csv").read_bytes() == b"x,y\n1,2\n3,4\n"
    # The freed run's checkout says its object is gone, and writes nothing wrong.
    gone_run = beamline(db, "data", "checkout", "--run", "run-4", "--to", str(tmp_path / "g"))
    assert gone_run.exit_code != 0 and "is not in the store" in gone_run.output


def test_a_version_that_only_held_a_label_once_is_kept_unless_labelled_now(store_runs, runs):  # noqa: F811
    db, objects, fourth, fifth, _ = store_runs
    _, (first, _, _) = runs
    db.push("run-5", 500)
    for version in (300, 500):  # stable: 100 -> 300 -> 500; a rollback returns to 300
        history.record_change(db.store, PIPELINE, "stable", version, LabelAction.PROMOTE)
    data_1 = first.data.manifest.files[1].sha256  # span-1/rows.csv as run-1 read it
    assert data_1 not in _gc(db, "--keep-data", "1", "--dry-run")["removed"]
    planned = _gc(db, "--keep-data", "1", "--labelled", "now", "--dry-run")
    assert {first.data.key, data_1} <= set(planned["removed"])
    assert fourth.data.key in planned["removed"] and fifth.data.key not in planned["removed"]


def test_dry_run_deletes_nothing_and_reports_the_bytes_gc_then_frees(store_runs):
    db, objects, *_ = store_runs
    before = objects.listing().sizes
    planned = _gc(db, "--keep-data", "1", "--dry-run")
    assert planned["dry_run"] is True and planned["freed_objects"] == 3
    assert objects.listing().sizes == before
    text = beamline(db, "gc", "--keep-data", "1", "--dry-run").output
    assert f"objects: would free 3 object(s), {planned['freed_bytes']:,} bytes" in text, text
    done = _gc(db, "--keep-data", "1")
    assert done["dry_run"] is False
    assert (done["removed"], done["freed_bytes"]) == (planned["removed"], planned["freed_bytes"])
    after = objects.listing().sizes
    assert sum(before.values()) - sum(after.values()) == planned["freed_bytes"]


def _live(db: Store, run_id: str) -> None:
    """Stamps run `run_id` running, by this (live) process, as the runner stamps its runs."""
    ctx = db.store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    for key, value in {rc.STATE: rc.RunState.RUNNING, rc.RUNNER_PID: str(os.getpid()),
                       rc.RUNNER_HOST: socket.gethostname(),
                       rc.RUNNER_START: process_start(os.getpid())}.items():
        ctx.custom_properties[key].string_value = value
    db.store.put_contexts([ctx])


def test_the_versions_a_live_run_reads_are_kept(store_runs):
    db, objects, fourth, *_ = store_runs
    _live(db, "run-4")
    done = _gc(db, "--keep-data", "1")
    assert fourth.data.key not in done["removed"] and _sound(objects, fourth)
    assert "run-4" not in done["dropped_runs"]


def test_gc_leaves_the_store_alone_while_a_run_keeps_its_versions(store_runs):
    db, objects, _, _, orphan = store_runs
    with objects.locked():  # what keep_run holds from the first object to the naming
        done = _gc(db)
        assert done["freed_objects"] == 0 and "in use" in done["skipped"]
        assert objects.has(orphan)
        text = beamline(db, "gc").output
        assert "objects: nothing deleted: The object store" in text, text
    assert _gc(db)["removed"] == [orphan]


def test_a_symlink_in_the_store_is_refused_never_followed(store_runs, tmp_path):
    db, objects, *_ = store_runs
    victim = _write(tmp_path / "outside" / "victim.csv", b"not the store's")
    name = "ab" + "c" * 62
    (objects.directory / "ab").mkdir(exist_ok=True)
    (objects.directory / "ab" / name[2:]).symlink_to(victim)
    (objects.directory / "cd").symlink_to(victim.parent, target_is_directory=True)
    done = _gc(db)
    assert len(done["refused"]) == 2 and all("symlink" in r for r in done["refused"])
    assert victim.read_bytes() == b"not the store's"
    assert (objects.directory / "ab" / name[2:]).is_symlink()
    with pytest.raises(Exception, match="symlink"):
        objects.remove(name)
    assert victim.exists()


def test_a_forged_key_on_a_kept_run_stops_gc_deleting_anything(store_runs):
    db, objects, _, _, orphan = store_runs
    ctx = db.store.get_context_by_type_and_name(rc.RUN_CONTEXT, "run-5")
    ctx.custom_properties[rc.DATA_VERSION].string_value = "../../../etc/passwd"
    db.store.put_contexts([ctx])
    done = _gc(db)
    assert done["freed_objects"] == 0 and objects.has(orphan)
    assert "run run-5" in done["skipped"] and "not a store key" in done["skipped"]


def test_du_says_where_the_bytes_go_and_what_gc_would_free(store_runs, runs):  # noqa: F811
    db, objects, fourth, fifth, orphan = store_runs
    _, (first, _, third) = runs
    result = beamline(db, "data", "du", PIPELINE, "--keep-data", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    sizes = objects.listing().sizes
    assert (report["objects"], report["bytes"]) == (len(sizes), sum(sizes.values()))
    rows = {r["data_version"]: r for r in report["data_versions"]}
    assert list(rows) == [first.data.key, third.data.key, fourth.data.key, fifth.data.key]
    old, new = rows[first.data.key], rows[third.data.key]
    # extra.csv is in both; span-1/rows.csv and the manifest are each one's own.
    extra = len(b"x,y\n9,9\n")
    assert old["shared_bytes"] == new["shared_bytes"] == extra
    assert old["unique_bytes"] == old["bytes"] - extra and old["runs"] == 2
    freed = rows[fourth.data.key]
    assert not freed["kept_by_gc"] and freed["gc_frees_bytes"] == freed["bytes"]
    assert freed["unique_bytes"] == freed["bytes"]
    assert report["named_by_no_run"] == {"objects": 1, "bytes": len(ORPHAN)}
    assert report["code_bytes"] == sum(r["bytes"] for r in report["code_versions"])
    planned = _gc(db, "--keep-data", "1", "--pipeline", PIPELINE, "--dry-run")
    assert report["gc_would_free"]["bytes"] == planned["freed_bytes"]
    assert report["gc_command"] == f"beamline gc --pipeline {PIPELINE} --keep-data 1"
    text = beamline(db, "data", "du", "--keep-data", "1").output
    assert f"{fourth.data.key[:12]}" in text and "Code snapshots" in text, text
    assert "`beamline gc --keep-data 1` would free 3 object(s)" in text, text


def test_a_run_keeps_and_names_its_versions_only_while_gc_is_not_deleting(mlmd, tmp_path):  # noqa: F811
    """keep_run(..., name_on=...), as the runner calls it, waits for a gc holding the store's
    exclusive lock, then keeps and names its versions."""
    import threading

    from beamline.versions.record import keep_run

    mlmd.context(rc.RUN_CONTEXT, "run-live", **{rc.PIPELINE: PIPELINE})
    data = _write(tmp_path / "d" / "rows.csv", b"x,y\n1,1\n")
    objects = ObjectStore(mlmd.layout.objects_dir)
    done = threading.Event()

    def run() -> None:
        keep_run(mlmd.layout, data.parent, [data], [], name_on=(mlmd.store, "run-live"))
        done.set()

    with objects.locked(exclusive=True):  # what gc holds while it deletes
        writer = threading.Thread(target=run, daemon=True)
        writer.start()
        assert not done.wait(0.5), "the run wrote into the store while gc held it"
        assert objects.listing().sizes == {}
    assert done.wait(30)
    ctx = mlmd.store.get_context_by_type_and_name(rc.RUN_CONTEXT, "run-live")
    key = rc.properties_of(ctx)[rc.DATA_VERSION]
    assert objects.has(key) and objects.verify() == []
