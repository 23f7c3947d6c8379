"""`beamline data log|checkout|verify` over a real SQLite MLMD store and object store: runs
recorded as the runner records them (versions kept, then named on the run context), pushes as
TFX's Pusher records them, labels through the label history."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from beamline.cli import cli
from beamline.errors import BeamlineError
from beamline.metadata import labels as history
from beamline.metadata import run_context as rc
from beamline.metadata.records import LabelAction
from beamline.versions import manifest as mf
from beamline.versions.record import keep_run, name_on_run
from beamline.versions.store import ObjectStore
from tests.beamline.models.conftest import PIPELINE, Store, mlmd  # noqa: F401 - fixture

FIRST_ROWS = b"x,y\n1,2\n3,4\n"
SECOND_ROWS = b"x,y\n5,6\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keep(mlmd: Store, run_id: str, data_dir: Path, code_dir: Path):  # noqa: F811
    """One run as the runner records it: its context claimed, versions kept, keys named."""
    mlmd.context(rc.RUN_CONTEXT, run_id, **{rc.PIPELINE: PIPELINE})
    files = sorted(p for p in data_dir.rglob("*.csv"))
    code = [(f"components/{p.name}", p) for p in sorted(code_dir.glob("*.py"))]
    kept = keep_run(mlmd.layout, data_dir, files, code, span=None)
    name_on_run(mlmd.store, run_id, kept)
    return kept


@pytest.fixture
def runs(mlmd, tmp_path):  # noqa: F811
    """run-1 pushed 100 (stable); run-2 re-read the same files; the CSV was then overwritten in
    place and run-3 pushed 300 (canary)."""
    data_dir, code_dir = tmp_path / "data", tmp_path / "code"
    (data_dir / "span-1").mkdir(parents=True)
    code_dir.mkdir()
    (data_dir / "span-1" / "rows.csv").write_bytes(FIRST_ROWS)
    (data_dir / "extra.csv").write_bytes(b"x,y\n9,9\n")
    (code_dir / "module.py").write_text("SCALE = 1\n")
    first = keep(mlmd, "run-1", data_dir, code_dir)
    mlmd.push("run-1", 100)
    second = keep(mlmd, "run-2", data_dir, code_dir)
    with open(data_dir / "span-1" / "rows.csv", "w") as handle:  # in place, as to_csv does
        handle.write(SECOND_ROWS.decode())
    (code_dir / "module.py").write_text("SCALE = 2\n")
    third = keep(mlmd, "run-3", data_dir, code_dir)
    mlmd.push("run-3", 300)
    history.record_change(mlmd.store, PIPELINE, "stable", 100, LabelAction.PROMOTE)
    history.record_change(mlmd.store, PIPELINE, "canary", 300, LabelAction.PROMOTE)
    return mlmd, (first, second, third)


@dataclass
class Result:
    exit_code: int
    output: str  # stdout, then the error paragraph as `beamline` prints it


def beamline(mlmd: Store, *args: str) -> Result:  # noqa: F811
    """The command through Click, its BeamlineError turned into an exit code as `main` does."""
    result = CliRunner().invoke(cli, [*args, "--root", str(mlmd.layout.root)])
    if isinstance(result.exception, BeamlineError):
        return Result(result.exception.exit_code, f"{result.output}error: {result.exception}")
    return Result(result.exit_code, result.output)


def test_an_unchanged_rerun_keeps_nothing_new_and_names_the_same_versions(runs):
    _, (first, second, third) = runs
    assert first.data.added_bytes > 0 and first.code.added_bytes > 0
    assert (second.data.key, second.code.key) == (first.data.key, first.code.key)
    assert second.data.added_bytes == second.code.added_bytes == 0
    # Only the changed file and the new manifests were added by run-3.
    assert third.data.key != first.data.key
    assert third.data.added_bytes == len(SECOND_ROWS) + len(third.data.manifest.to_bytes())


def test_data_log_lists_each_version_with_its_runs_files_and_models(runs):
    db, (first, _, third) = runs
    result = beamline(db, "data", "log", PIPELINE, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["data_versions"]
    assert [r["data_version"] for r in rows] == [first.data.key, third.data.key]
    old, new = rows
    assert (old["runs"], old["first_run"]["run_id"], old["last_run"]["run_id"]) == (
        2, "run-1", "run-2")
    assert {f["path"]: f["sha256"] for f in old["files"]}["span-1/rows.csv"] == sha(FIRST_ROWS)
    assert old["bytes"] == len(FIRST_ROWS) + len(b"x,y\n9,9\n")
    assert old["models"] == [{"version": 100, "labels": ["stable"]}]
    assert new["models"] == [{"version": 300, "labels": ["canary"]}]
    text = beamline(db, "data", "log", PIPELINE)
    assert text.exit_code == 0 and "100 (stable)" in text.output and "run-1" in text.output


def statistics(mlmd: Store, run_id: str, examples: dict[str, int]) -> None:  # noqa: F811
    """The run's StatisticsGen as TFX records it: an ExampleStatistics output whose
    `Split-*/FeatureStats.pb` counts `examples` per split."""
    from ml_metadata.proto import metadata_store_pb2 as pb
    from tensorflow_metadata.proto.v0 import statistics_pb2

    uri = mlmd.layout.root / "StatisticsGen" / run_id
    for split, count in examples.items():
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.datasets.add(num_examples=count)
        (uri / f"Split-{split}").mkdir(parents=True)
        (uri / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    artifact = pb.Artifact(type_id=mlmd._type("artifact", rc.STATISTICS_TYPE), uri=str(uri))
    event = pb.Event(type=pb.Event.OUTPUT)
    event.path.steps.add().key = "statistics"
    execution = pb.Execution(type_id=mlmd._type("execution", "StatisticsGen"),
                             last_known_state=pb.Execution.COMPLETE)
    mlmd.store.put_execution(execution, [(artifact, event)],
                             [mlmd.context(rc.RUN_CONTEXT, run_id)])


def test_data_log_counts_rows_from_the_recorded_statistics_not_the_files(runs):
    db, (first, _, third) = runs
    statistics(db, "run-2", {"train": 2, "eval": 1})
    result = beamline(db, "data", "log", PIPELINE, "--json")
    old, new = json.loads(result.output)["data_versions"]
    # run-1 recorded no statistics; run-2 read the same version and did: its count stands.
    assert (old["rows"], new["rows"]) == (3, None)
    # Counted from the statistics, not the files: the version's CSVs hold 3 rows too, so
    # change the statistics to tell the two apart.
    statistics(db, "run-3", {"train": 40})
    text = beamline(db, "data", "log", PIPELINE).output
    assert "3 rows" in text and "40 rows" in text, text


def test_checkout_by_label_restores_the_overwritten_file_byte_for_byte(runs, tmp_path):
    db, _ = runs
    target = tmp_path / "restored"
    result = beamline(db, "data", "checkout", "--label", "stable", "--pipeline", PIPELINE,
                      "--to", str(target), "--code")
    assert result.exit_code == 0, result.output
    assert (target / "span-1" / "rows.csv").read_bytes() == FIRST_ROWS
    assert (target / "extra.csv").read_bytes() == b"x,y\n9,9\n"
    assert (target / "code" / "components" / "module.py").read_text() == "SCALE = 1\n"


def test_checkout_by_model_and_by_run(runs, tmp_path):
    db, _ = runs
    by_model = beamline(db, "data", "checkout", "--model", "300", "-p", PIPELINE,
                        "--to", str(tmp_path / "m"), "--json")
    assert by_model.exit_code == 0, by_model.output
    assert json.loads(by_model.output)["run_id"] == "run-3"
    assert (tmp_path / "m" / "span-1" / "rows.csv").read_bytes() == SECOND_ROWS
    by_run = beamline(db, "data", "checkout", "--run", "run-2", "--to", str(tmp_path / "r"))
    assert by_run.exit_code == 0, by_run.output
    assert (tmp_path / "r" / "span-1" / "rows.csv").read_bytes() == FIRST_ROWS
    assert not (tmp_path / "r" / "code").exists()  # code only with --code


def test_checkout_refuses_a_non_empty_directory(runs, tmp_path):
    db, _ = runs
    target = tmp_path / "busy"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    result = beamline(db, "data", "checkout", "--run", "run-1", "--to", str(target))
    assert result.exit_code == 2
    assert "not an empty directory" in result.output and "\n\n" not in result.output.strip()
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]


@pytest.mark.parametrize(
    "args, says",
    [
        (("--run", "no-such-run"), "is not in this store"),
        (("--model", "999", "-p", PIPELINE), "pushed model version 999"),
        (("--label", "stable"), "pass --pipeline"),
        (("--label", "nope", "-p", PIPELINE), "held label 'nope'"),
        (("--run", "run-1", "--model", "100"), "exactly one of"),
    ],
)
def test_checkout_of_nothing_recorded_is_a_clear_error(runs, tmp_path, args, says):
    db, _ = runs
    result = beamline(db, "data", "checkout", *args, "--to", str(tmp_path / "t"))
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_a_forged_key_on_a_run_is_refused_not_followed(runs, tmp_path):
    db, _ = runs
    ctx = db.store.get_context_by_type_and_name(rc.RUN_CONTEXT, "run-1")
    ctx.custom_properties[rc.DATA_VERSION].string_value = "../../../etc/passwd"
    db.store.put_contexts([ctx])
    result = beamline(db, "data", "checkout", "--run", "run-1", "--to", str(tmp_path / "t"))
    assert result.exit_code == 2 and "not a store key" in result.output


@pytest.mark.parametrize("path", ["../escape.csv", "/etc/passwd", "a/../../b", "", "a//b"])
def test_a_manifest_naming_a_path_outside_the_checkout_is_refused(tmp_path, path):
    store = ObjectStore(tmp_path / "objects")
    key = store.put_bytes(b"rows").key
    forged = json.dumps({"kind": mf.DATA_KIND, "files": [
        {"path": path, "sha256": key, "bytes": 4}]}).encode()
    with pytest.raises(Exception, match="not a relative path below"):
        mf.load(store, store.put_bytes(forged).key, mf.DATA_KIND)


def test_verify_names_a_corrupted_object(runs):
    db, (first, _, _) = runs
    store = ObjectStore(db.layout.objects_dir)
    assert beamline(db, "data", "verify").exit_code == 0
    rows_key = first.data.manifest.files[1].sha256  # span-1/rows.csv (sorted after extra.csv)
    path = store.path_of(rows_key)
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    result = beamline(db, "data", "verify")
    assert result.exit_code == 3 and str(path) in result.output


def test_gc_removes_the_temporary_file_a_killed_writer_left(runs, tmp_path):
    db, _ = runs
    store = ObjectStore(db.layout.objects_dir)
    (store.directory / "tmp").mkdir(exist_ok=True)
    dead = store.directory / "tmp" / ".put-killed"
    dead.write_bytes(b"half an object")  # no writer holds its lock: the writer died
    dry = beamline(db, "gc", "--dry-run")
    assert dry.exit_code == 0 and f"objects: would remove {dead}" in dry.output
    assert dead.exists()
    done = beamline(db, "gc")
    assert done.exit_code == 0 and f"objects: removed {dead}" in done.output
    assert not dead.exists() and store.verify() == []
