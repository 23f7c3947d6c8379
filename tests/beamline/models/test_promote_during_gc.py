"""Promote and `gc --keep-versions` at once never leave a label on a version gc removed.

Both sides check and act under the labels lock. The tests hold that lock themselves, wait
(bounded poll of /proc/locks) until the other side is blocked on it, change the world as the
interleaving would, then let go.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

from beamline.errors import PromoteRefused
from beamline.metadata import labels as history
from beamline.metadata import labels_file
from beamline.metadata import records as r
from beamline.models.changes import promote
from tests.beamline.models.conftest import PIPELINE

HANG_GUARD_S = 120


def _someone_waits_for_labels_lock(layout) -> bool:
    """True when a process or thread is blocked on `<root>/locks/labels.lock` (a `->` line)."""
    inode = str(os.stat(layout.locks_dir / labels_file.LABELS_LOCK).st_ino)
    with open("/proc/locks", encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 6 and fields[1] == "->" and fields[6].rsplit(":", 1)[-1] == inode:
                return True
    return False


def _wait_until_blocked(layout, still_running) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not _someone_waits_for_labels_lock(layout):
        assert still_running(), "it finished without waiting for the labels lock"
        assert time.monotonic() < deadline, "nothing waited for the labels lock"
        time.sleep(0.01)


def test_gc_waits_for_a_promote_and_keeps_the_version_it_labelled(mlmd):
    layout = mlmd.layout
    old = mlmd.push("r1", 1)
    mlmd.push("r2", 2)
    with labels_file.labels_lock(layout):
        gc = subprocess.Popen(
            [sys.executable, "-m", "beamline", "gc", "--root", str(layout.root),
             "--keep-versions", "1", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            _wait_until_blocked(layout, lambda: gc.poll() is None)
            # What promote does under the lock, while gc waits for it.
            before = labels_file.current_labels(mlmd.store)
            history.record_change(mlmd.store, PIPELINE, "stable", 1, r.LabelAction.PROMOTE,
                                  pushed_model_id=old)
            labels_file.apply_change(mlmd.store, layout, before, rest_port=None)
        except BaseException:
            gc.kill()
            raise
    out, err = gc.communicate(timeout=HANG_GUARD_S)
    assert gc.returncode == 0, err
    [entry] = json.loads(out)["pipelines"]
    version_1 = layout.serving_dir(PIPELINE) / "1"
    assert version_1.is_dir()
    assert [k["version"] for k in entry["kept"]] == [str(version_1)]
    assert str(version_1) not in entry["removed"]


def test_promote_checks_the_version_again_under_the_lock_gc_removes_it_under(mlmd):
    from ml_metadata.metadata_store import metadata_store

    from beamline.metadata.connection import sqlite_config

    layout = mlmd.layout
    mlmd.push("r1", 1)
    graph = mlmd.graph()
    outcome: dict = {}

    def promoting() -> None:
        store = metadata_store.MetadataStore(sqlite_config(layout.metadata_path))
        try:
            outcome["done"] = promote(store, graph, layout, PIPELINE, 1, "stable", rest_port=None)
        except PromoteRefused as refused:
            outcome["refused"] = refused

    with labels_file.labels_lock(layout):
        thread = threading.Thread(target=promoting, daemon=True)
        thread.start()
        _wait_until_blocked(layout, thread.is_alive)
        shutil.rmtree(layout.serving_dir(PIPELINE) / "1")  # what gc does under the lock
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive()
    assert "done" not in outcome
    assert "is not on disk" in str(outcome["refused"])
    assert history.history(mlmd.store, PIPELINE) == []
    assert labels_file.current_labels(mlmd.store).get(PIPELINE, {}) == {}

