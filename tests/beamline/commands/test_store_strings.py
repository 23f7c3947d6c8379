"""Strings another user of a shared store wrote (a promote --reason, a run's trigger) reach the
terminal of whoever lists them: control characters are shown as escapes, never sent raw."""

from __future__ import annotations

import socket
import subprocess
import sys

from beamline.lineage.format import printable, table
from beamline.metadata import labels
from beamline.metadata.connection import open_store, sqlite_config
from beamline.metadata.run_claim import claim_run_id
from beamline.settings import RootLayout

# Retitles the terminal, clears the screen, then an 8-bit CSI and a right-to-left override.
HOSTILE = "ok\x1b]0;owned\x07\x1b[2J\x9b31m\u202e"
SHOWN = "ok\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202e"


def test_printable_escapes_control_characters_and_keeps_other_text():
    assert printable(HOSTILE) == SHOWN
    assert printable("tab\there\nnext\x7f") == "tab\\there\\nnext\\x7f"
    assert printable("plain text, é, 日本, 3") == "plain text, é, 日本, 3"
    assert printable(42) == "42"
    assert table(["A", "B"], [[HOSTILE, 1]]).splitlines()[1] == f"{SHOWN}  1"


def _beamline(root, *args) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _hostile_root(tmp_path) -> RootLayout:
    layout = RootLayout(tmp_path)
    store = open_store(sqlite_config(layout.metadata_path))
    claim_run_id(store, "tiny", trigger=HOSTILE)
    labels.record_change(store, "tiny", "stable", 7, "promote", reason=HOSTILE)
    labels.record_change(store, "tiny", HOSTILE, 7, "promote")
    version = layout.serving_dir("tiny") / "7"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    return layout


def _escaped(output: str) -> bool:
    raw = any(c in output for c in ("\x1b", "\x9b", "\u202e"))
    return not raw and SHOWN in output


def test_runs_shows_a_hostile_trigger_escaped(tmp_path):
    output = _beamline(_hostile_root(tmp_path).root, "runs")
    assert _escaped(output), output


def test_labels_shows_a_hostile_reason_and_label_escaped(tmp_path):
    output = _beamline(_hostile_root(tmp_path).root, "labels", "tiny", "--history")
    assert _escaped(output) and output.count(SHOWN) == 4, output


def test_models_shows_a_hostile_label_name_escaped(tmp_path):
    with socket.socket() as closed:  # a port nothing listens on: no server to ask
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    output = _beamline(_hostile_root(tmp_path).root, "models", "tiny", "--rest-port", str(port))
    assert _escaped(output), output
