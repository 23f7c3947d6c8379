"""Remote inputs are listed, not kept, with what identifies them: a `gs://` object's generation
and ETag read by the Cloud Storage client from a real emulator on 127.0.0.1
(gcp-storage-emulator), another scheme's size and time through TFX's file system API; `data
log`, `lineage` and `data checkout` say so. Over a real SQLite MLMD store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from beamline.errors import DataError
from beamline.versions import manifest as mf
from beamline.versions.record import keep_run, name_on_run
from beamline.versions.store import ObjectStore
from tests.beamline.models.conftest import PIPELINE, Store, mlmd  # noqa: F401 - fixture
from tests.beamline.ui import writer
from tests.beamline.versions.test_data_commands import beamline

BUCKET = "beamline-data"
URI = f"gs://{BUCKET}/spans/span-1/rows.csv"


@pytest.fixture(scope="module")
def gcs():
    """The emulator's bucket, through the client pointed at it as a user would
    (STORAGE_EMULATOR_HOST)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emulator = Path(sys.executable).with_name("gcp-storage-emulator")
    process = subprocess.Popen(
        [str(emulator), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
         f"--default-bucket={BUCKET}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    before = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        writer.wait_for(lambda: _answers(port), what="the Cloud Storage emulator")
        from google.cloud import storage

        yield storage.Client(project="test").bucket(BUCKET)
    finally:
        if before is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = before
        process.terminate()
        process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def keep(db: Store, run_id: str, data_dir: Path, remote: str):  # noqa: F811
    """A run that read one local file and one remote one, recorded as the runner records it."""
    from beamline.metadata import run_context as rc

    db.context(rc.RUN_CONTEXT, run_id, **{rc.PIPELINE: PIPELINE})
    kept = keep_run(db.layout, data_dir, [data_dir / "local.csv", remote], [])
    name_on_run(db.store, run_id, kept)
    return kept


def test_a_gs_input_is_identified_by_generation_and_etag_and_a_rewrite_is_a_new_version(
        gcs, mlmd, tmp_path):  # noqa: F811
    (tmp_path / "local.csv").write_bytes(b"x\n1\n")
    gcs.blob("spans/span-1/rows.csv").upload_from_string(b"x,y\n1,2\n")
    blob = gcs.get_blob("spans/span-1/rows.csv")
    first = keep(mlmd, "run-1", tmp_path, URI)
    [local, remote] = sorted(first.data.manifest.files, key=lambda e: e.remote)
    assert (remote.path, remote.sha256, remote.bytes, remote.remote) == (URI, None, None, True)
    assert remote.identity["read_by"] == "gcs"
    assert (remote.identity["generation"], remote.identity["etag"]) == (
        str(blob.generation), blob.etag)
    assert remote.identity["bytes"] == 8 and remote.identity["md5"] == blob.md5_hash
    # Read back from the store, checked: the identity is part of the version.
    loaded = mf.load(ObjectStore(mlmd.layout.objects_dir), first.data.key, mf.DATA_KIND)
    assert [e.identity for e in loaded.files if e.remote] == [remote.identity]
    # Unchanged, the same version; rewritten in place (a new generation), a new one.
    again = keep(mlmd, "run-2", tmp_path, URI)
    assert again.data.key == first.data.key and again.data.added_bytes == 0
    gcs.blob("spans/span-1/rows.csv").upload_from_string(b"x,y\n5,6\n")
    third = keep(mlmd, "run-3", tmp_path, URI)
    assert third.data.key != first.data.key
    [rewritten] = [e for e in third.data.manifest.files if e.remote]
    assert rewritten.identity["generation"] != remote.identity["generation"]

    mlmd.push("run-1", 100)
    text = beamline(mlmd, "data", "log", PIPELINE).output
    assert f"{URI}  remote, not kept: generation {blob.generation}, ETag {blob.etag}, 8 bytes" \
        in text, text
    rows = json.loads(beamline(mlmd, "data", "log", PIPELINE, "--json").output)
    [entry] = [f for f in rows["data_versions"][0]["files"] if f.get("remote")]
    assert entry["identity"]["generation"] == str(blob.generation)
    lineage = beamline(mlmd, "lineage", "100").output
    assert f"remote input, not kept: {URI} (generation {blob.generation}, ETag" in lineage, \
        lineage
    restored = beamline(mlmd, "data", "checkout", "--run", "run-1", "--to",
                        str(tmp_path / "out"))
    assert restored.exit_code == 0 and f"not kept (remote input): {URI}" in restored.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["local.csv"]


def test_a_missing_object_is_recorded_as_unidentified_and_the_run_keeps_the_rest(
        gcs, mlmd, tmp_path):  # noqa: F811
    (tmp_path / "local.csv").write_bytes(b"x\n1\n")
    kept = keep(mlmd, "run-1", tmp_path, f"gs://{BUCKET}/no/such.csv")
    [remote] = [e for e in kept.data.manifest.files if e.remote]
    assert remote.identity["read_by"] is None
    assert "no object gs://beamline-data/no/such.csv" in remote.identity["error"]
    assert "could not be identified" in beamline(mlmd, "data", "log", PIPELINE).output


def test_another_scheme_is_identified_through_tfx_s_file_system_api(tmp_path):
    from beamline.versions.remote import describe, identify

    path = tmp_path / "rows.csv"
    path.write_bytes(b"x,y\n1,2\n3,4\n")
    identity = identify(f"file://{path}")
    assert identity["read_by"] == "fileio" and identity["bytes"] == 12
    assert identity["mtime_ns"] // 10**9 == int(path.stat().st_mtime)
    assert describe(identity).startswith("12 bytes, modified ")
    gone = identify(f"file://{tmp_path}/gone.csv")
    assert gone["read_by"] is None and "TFX file system" in gone["error"]


@pytest.mark.parametrize("identity", [["x"], {"path": "/etc"}, {"bytes": True},
                                      {"etag": {"nested": 1}}])
def test_a_manifest_with_a_forged_identity_is_refused(tmp_path, identity):
    store = ObjectStore(tmp_path / "objects")
    raw = json.dumps({"kind": mf.DATA_KIND, "format": mf.FORMAT, "span": None,
                      "extra_spans": [], "files": [{"path": URI, "sha256": None,
                                                    "bytes": None, "remote": True,
                                                    "identity": identity}]}).encode()
    key = store.put_bytes(raw).key
    with pytest.raises(DataError, match="not a readable"):
        mf.load(store, key, mf.DATA_KIND)
