"""The content-addressed object store: atomic, deduplicated, corruption named, paths refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamline.errors import ConfigError
from beamline.faults import FAULT_ENV
from beamline.versions.store import (
    FAULT_BEFORE_RENAME,
    TMP_DIR_NAME,
    BadKey,
    CorruptObject,
    ObjectStore,
    check_key,
)


def stored_files(store: ObjectStore) -> list[Path]:
    return sorted(p for p in store.directory.rglob("*") if p.is_file())


def test_a_file_is_kept_under_its_sha256_and_read_back(tmp_path):
    source = tmp_path / "a.csv"
    source.write_bytes(b"x,y\n1,2\n")
    store = ObjectStore(tmp_path / "objects")
    stored = store.put_file(source)
    assert stored.key == hashlib.sha256(b"x,y\n1,2\n").hexdigest()
    assert (stored.bytes, stored.added) == (8, True)
    assert store.read_bytes(stored.key) == b"x,y\n1,2\n"
    assert list(store.keys()) == [stored.key]


def test_the_same_content_is_kept_once(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    (tmp_path / "a.csv").write_bytes(b"same")
    (tmp_path / "b.csv").write_bytes(b"same")
    first = store.put_file(tmp_path / "a.csv")
    second = store.put_file(tmp_path / "b.csv")
    again = store.put_bytes(b"same")
    assert first.key == second.key == again.key
    assert (first.added, second.added, again.added) == (True, False, False)
    assert len(stored_files(store)) == 1


def test_removing_the_last_object_of_a_fan_directory_removes_the_directory(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    by_fan: dict[str, list[bytes]] = {}
    i = 0
    while not any(len(contents) == 2 for contents in by_fan.values()):
        content = f"row {i}".encode()
        by_fan.setdefault(hashlib.sha256(content).hexdigest()[:2], []).append(content)
        i += 1
    [(fan, (first, second))] = [(f, c) for f, c in by_fan.items() if len(c) == 2]
    keys = [store.put_bytes(first).key, store.put_bytes(second).key]
    assert store.remove(keys[0]) == len(first)
    assert (store.directory / fan).is_dir()  # the other object is still in it
    assert store.remove(keys[1]) == len(second)
    assert not (store.directory / fan).exists()
    assert list(store.keys()) == []


def test_rewriting_the_input_in_place_leaves_the_object_alone(tmp_path):
    """pandas' to_csv and a shell `>` truncate the input's inode: a hard link would follow."""
    source = tmp_path / "a.csv"
    source.write_bytes(b"old rows\n")
    store = ObjectStore(tmp_path / "objects")
    key = store.put_file(source).key
    with open(source, "w") as handle:  # truncates and writes the same inode
        handle.write("new rows\n")
    assert store.read_bytes(key) == b"old rows\n"
    assert os.stat(store.path_of(key)).st_ino != os.stat(source).st_ino


def test_objects_are_read_only(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    key = store.put_bytes(b"kept").key
    assert os.stat(store.path_of(key)).st_mode & 0o222 == 0


def test_a_corrupted_object_is_named_by_verify_and_refused_on_read(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    good = store.put_bytes(b"good").key
    bad = store.put_bytes(b"bad").key
    path = store.path_of(bad)
    path.chmod(0o644)
    path.write_bytes(b"flipped")
    assert store.verify() == [bad]
    with pytest.raises(CorruptObject, match=bad):
        store.read_bytes(bad)
    target = tmp_path / "out"
    with pytest.raises(CorruptObject, match=bad):
        store.copy_out(bad, target)
    assert not target.exists()  # no file with the wrong bytes is left behind
    store.copy_out(good, target)
    assert target.read_bytes() == b"good"


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "A" * 64, "0" * 63, "0" * 65, "g" * 64, "/" + "0" * 63, "",
     "0" * 62 + "/."],
)
def test_a_key_that_is_not_a_sha256_is_refused(tmp_path, key):
    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(BadKey, match="64 lower-case hex"):
        store.path_of(key)
    assert issubclass(BadKey, ConfigError)  # exit 2: a bad record, named


def test_a_symlink_in_the_store_pointing_outside_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    store = ObjectStore(tmp_path / "objects")
    store.directory.mkdir()
    key = "ab" + "0" * 62
    (store.directory / "ab").symlink_to(outside)
    with pytest.raises(BadKey, match="outside the store"):
        store.path_of(key)


@given(st.binary(max_size=4096))
def test_any_content_round_trips_and_is_named_by_its_hash(tmp_path_factory, data):
    store = ObjectStore(tmp_path_factory.mktemp("objects"))
    stored = store.put_bytes(data)
    assert stored.key == check_key(hashlib.sha256(data).hexdigest())
    assert store.read_bytes(stored.key) == data
    assert store.verify() == []


KILLED_WRITER = """
import sys
from pathlib import Path
from beamline.versions.store import ObjectStore
ObjectStore(Path(sys.argv[1])).put_file(Path(sys.argv[2]))
"""


def test_a_writer_killed_mid_write_leaves_only_a_temp_file_that_is_removed(tmp_path):
    source = tmp_path / "big.csv"
    source.write_bytes(b"row\n" * 100_000)
    store = ObjectStore(tmp_path / "objects")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(store.directory), str(source)],
        env={**os.environ, FAULT_ENV: FAULT_BEFORE_RENAME}, capture_output=True,
    )
    assert proc.returncode == -9, proc.stderr
    assert list(store.keys()) == []  # no object under any name
    [temp] = stored_files(store)
    assert temp.parent.name == TMP_DIR_NAME
    assert store.remove_dead_temp_files() == [temp]
    assert stored_files(store) == []
    # A later writer keeps the same content whole.
    stored = store.put_file(source)
    assert store.verify() == [] and stored.added


def test_a_temp_file_a_live_writer_holds_is_kept(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    with store._temp() as (_, temp):
        assert store.remove_dead_temp_files() == []
        assert temp.exists()
