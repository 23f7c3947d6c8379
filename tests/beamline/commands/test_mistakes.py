"""A newcomer's mistakes each get one paragraph and the exit code docs/reference/exit-codes.md
gives: a SQLite file passed to --metadata, a store that does not exist, a CSV without a header
row, a misspelled pipeline or command, `diff` with one run.

The store is a real SQLite MLMD holding one finished run of `penguin`, written with the MLMD
calls the runner makes (no pipeline runs)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from ml_metadata.metadata_store import metadata_store

from beamline.cli import main
from beamline.metadata.connection import sqlite_config
from beamline.settings import RootLayout
from tests.beamline.ui import writer

READERS = [
    ["runs"],
    ["lineage", "1"],
    ["diff"],
    ["why", "Trainer"],
    ["report"],
    ["labels", "penguin"],
    ["models", "penguin"],
]


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """A run root whose store holds one finished run of `penguin`: (root, run id)."""
    root = tmp_path_factory.mktemp("root")
    store = metadata_store.MetadataStore(sqlite_config(RootLayout(root).metadata_path))
    run_id, execution = writer.live_run(store, "penguin")
    writer.finish_run(store, run_id, execution)
    return root, run_id


def beamline(capsys, *args) -> tuple[int, str, str]:
    """`beamline ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(err: str) -> str:
    """The single `error: ` paragraph of `err` (no traceback, no internal error)."""
    assert "Traceback" not in err and "internal error" not in err, err
    [line] = [line for line in err.splitlines() if line.startswith("error: ")]
    return line


# --- --metadata: a SQLite file's path -------------------------------------------------------


def test_metadata_takes_the_absolute_path_of_a_sqlite_store(capsys, one_run):
    root, run_id = one_run
    code, out, err = beamline(capsys, "runs", "--metadata", RootLayout(root).metadata_path)
    assert code == 0, err
    assert run_id in out


def test_metadata_takes_a_relative_path_of_a_sqlite_store(capsys, one_run, monkeypatch):
    root, run_id = one_run
    monkeypatch.chdir(root.parent)
    code, out, err = beamline(capsys, "runs", "--metadata", f"{root.name}/metadata.sqlite")
    assert code == 0, err
    assert run_id in out


def test_a_metadata_config_file_naming_a_sqlite_store_still_works(capsys, one_run, tmp_path):
    root, run_id = one_run
    config = tmp_path / "metadata.ini"
    config.write_text(f"[metadata]\nuri = sqlite:///{RootLayout(root).metadata_path}\n")
    code, out, err = beamline(capsys, "runs", "--metadata", config)
    assert code == 0, err
    assert run_id in out


def test_a_binary_file_that_is_not_sqlite_is_a_usage_error_not_a_crash(capsys, tmp_path):
    junk = tmp_path / "model.bin"
    junk.write_bytes(b"\xf6\x00\x81binary" * 10)
    code, _, err = beamline(capsys, "runs", "--metadata", junk)
    assert code == 2
    line = one_error(err)
    assert str(junk) in line and "neither a SQLite store" in line and "sqlite:////" in line


def test_a_directory_given_as_metadata_points_at_root(capsys, one_run):
    root, _ = one_run
    code, _, err = beamline(capsys, "runs", "--metadata", root)
    assert code == 2
    assert f"use --root {root}" in one_error(err)


def test_every_metadata_help_says_an_absolute_sqlite_path_needs_four_slashes(capsys):
    code, out, _ = beamline(capsys, "runs", "--help")
    assert code == 0
    assert "sqlite:////abs" in " ".join(out.split())


# --- reading commands never create a store --------------------------------------------------


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
@pytest.mark.parametrize("spelling", ["uri", "path"])
def test_reading_commands_never_create_a_store(capsys, tmp_path, command, spelling):
    store = tmp_path / "new" / "x.sqlite"
    metadata = f"sqlite:///{store}" if spelling == "uri" else str(store)
    code, _, err = beamline(capsys, *command, "--metadata", metadata, "--root", tmp_path / "r")
    assert code == 5, err
    assert f"No metadata store at {store}" in one_error(err)
    assert not (tmp_path / "new").exists()


def test_a_missing_store_is_the_same_error_for_root_and_metadata(capsys, tmp_path):
    by_root = beamline(capsys, "runs", "--root", tmp_path)
    by_uri = beamline(capsys, "runs", "--metadata", f"sqlite:///{tmp_path}/metadata.sqlite")
    assert by_root[0] == by_uri[0] == 5
    assert one_error(by_root[2]) == one_error(by_uri[2])


def test_a_relative_sqlite_uri_says_an_absolute_path_needs_four_slashes(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, _, err = beamline(capsys, "runs", "--metadata", "sqlite:///scratch/none.sqlite")
    assert code == 5
    line = one_error(err)
    assert f"No metadata store at {tmp_path}/scratch/none.sqlite" in line
    assert "relative to the working directory" in line and "four slashes" in line
    assert not (tmp_path / "scratch").exists()


# --- a CSV without a header row -------------------------------------------------------------


def test_a_csv_whose_first_row_is_data_is_refused_naming_the_file(capsys, tmp_path):
    data = tmp_path / "noheader.csv"
    data.write_text("1,2.5,x\n3,4.5,y\n")
    out = tmp_path / "schema.pbtxt"
    code, _, err = beamline(
        capsys, "schema", "infer", "--data", data, "--label", "x", "--out", out
    )
    assert code == 3
    line = one_error(err)
    assert f"CSV file {data} has no header row" in line and "naming the columns" in line
    assert not out.exists()


# --- misspelled names -----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["labels", "models"])
def test_an_unknown_pipeline_is_exit_2_with_the_closest_name(capsys, one_run, command):
    root, _ = one_run
    code, _, err = beamline(capsys, command, "pengiun", "--root", root)
    assert code == 2
    line = one_error(err)
    assert "No runs of pipeline 'pengiun'" in line and "Did you mean 'penguin'?" in line


def test_labels_of_a_known_pipeline_without_labels_is_no_error(capsys, one_run):
    root, _ = one_run
    code, out, err = beamline(capsys, "labels", "penguin", "--root", root)
    assert code == 0, err
    assert "no label was ever recorded" in out


def test_a_misspelled_pipeline_to_run_names_the_closest(capsys):
    code, _, err = beamline(capsys, "run", "pengiun")
    assert code == 2
    assert "Did you mean 'penguin'?" in one_error(err)


@pytest.mark.parametrize("typo, meant", [("rn", "run"), ("Runs", "runs"), ("linage", "lineage")])
def test_a_misspelled_command_names_the_closest(capsys, typo, meant):
    code, _, err = beamline(capsys, typo)
    assert code == 2
    line = one_error(err)
    assert f"No such command '{typo}'. Did you mean '{meant}'?" in line
    assert "`beamline --help` lists the commands" in line


# --- diff with one run ----------------------------------------------------------------------


def test_diff_with_one_run_says_what_it_compared_and_what_to_do(capsys, one_run):
    root, run_id = one_run
    code, _, err = beamline(capsys, "diff", "--root", root)
    assert code == 2
    line = one_error(err)
    assert "Nothing to compare" in line and "(previous and latest)" in line
    assert run_id in line and "beamline run penguin" in line and "RUN_A RUN_B" in line
    assert "latest~1" not in line


def test_a_run_too_far_back_says_how_many_runs_there_are(capsys, one_run):
    root, _ = one_run
    code, _, err = beamline(capsys, "why", "Trainer", "--root", root, "--run", "latest~5")
    assert code == 2
    assert "holds only 1 run." in one_error(err)


# --- start-up noise -------------------------------------------------------------------------


def test_start_up_noise_is_filtered_and_real_errors_are_kept(tmp_path):
    """A module that writes what TensorFlow's import writes: the CUDA factory lines go, other
    fd-2 output stays, and the client libraries' FutureWarning is ignored."""
    (tmp_path / "noisy.py").write_text(textwrap.dedent("""
        import os, warnings
        os.write(2, b"E0000 cuda_fft.cc:479] Unable to register cuFFT factory: Attempting\\n")
        os.write(2, b"E0000 cuda_dnn.cc:10575] Unable to register cuDNN factory: Attempting\\n")
        os.write(2, b"a real error\\n")
        warnings.warn("You are using a non-supported Python version (3.10)", FutureWarning)
    """))
    code = (
        "from beamline import quiet\n"
        "quiet.quiet_startup('noisy')\n"
        "import noisy\n"
        "print(noisy.__loader__.__class__.__name__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "a real error\n"
    assert proc.stdout.strip() == "SourceFileLoader"  # the module keeps its real loader


# --- lineage of a label -----------------------------------------------------------------------


def test_lineage_of_a_label_no_version_holds_says_labels_are_accepted(capsys, one_run):
    root, _ = one_run
    code, _, err = beamline(capsys, "lineage", "canary", "--root", root)
    assert code == 2
    message = one_error(err)
    assert "'canary'" in message and "not a label a version holds now" in message
    assert "beamline labels PIPELINE" in message
