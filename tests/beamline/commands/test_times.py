"""Every time option of the CLI reads the same forms (beamline.timefmt): a bad time is a usage
error naming its option, every --help that takes a time says a time without an offset is UTC,
and a time `labels` prints can be given back to `labels --at` as is. The store is a real SQLite
MLMD with label changes written the way `promote` records them."""

from __future__ import annotations

import json

import pytest
from ml_metadata.metadata_store import metadata_store

from beamline.metadata.connection import sqlite_config
from beamline.settings import RootLayout
from beamline.timefmt import format_ms, parse_time, to_ms
from tests.beamline.commands.test_mistakes import beamline, one_error
from tests.beamline.ui import writer

CHANGE_MS = to_ms(parse_time("2020-12-01T14:30:00.250Z"))
TIME_OPTIONS = [
    ("labels", "--at", ["labels", "p"]),
    ("monitor", "--since", ["monitor", "p", "--requests", "logs"]),
    ("monitor", "--until", ["monitor", "p", "--requests", "logs"]),
    ("loop", "--until", ["loop", "p", "--once", "--data", "d", "--requests", "logs"]),
]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A run root where `stable` went to version 1 at CHANGE_MS and to 2 an hour later."""
    root = tmp_path_factory.mktemp("root")
    store = metadata_store.MetadataStore(sqlite_config(RootLayout(root).metadata_path))
    writer.label_change(store, "p", "stable", -1, 1, "push", at_ms=CHANGE_MS)
    writer.label_change(store, "p", "stable", 1, 2, "promote", at_ms=CHANGE_MS + 3_600_000)
    return root


@pytest.mark.parametrize(("command", "option", "args"), TIME_OPTIONS)
def test_a_bad_time_is_a_usage_error_naming_its_option(capsys, tmp_path, command, option, args):
    code, out, err = beamline(capsys, *args, option, "yesterday-ish", "--root", tmp_path)
    assert code == 2 and out == ""
    line = one_error(err)
    assert f"'{option}'" in line and "'yesterday-ish' is not a time" in line
    assert "2h ago" in line and "now" in line


@pytest.mark.parametrize(("command", "option", "args"), TIME_OPTIONS)
def test_every_help_that_takes_a_time_says_no_offset_means_utc(capsys, command, option, args):
    code, out, _ = beamline(capsys, command, "--help")
    assert code == 0
    help_of_option = out[out.index(f"  {option} TIME"):].split("\n  -")[0]
    assert "UTC when no offset" in " ".join(help_of_option.split())


def test_a_time_labels_prints_reads_back_in_labels_at(capsys, labelled):
    code, out, _ = beamline(capsys, "labels", "p", "--history", "--root", labelled)
    assert code == 0
    printed = format_ms(CHANGE_MS)
    assert printed == "2020-12-01T14:30:00.250Z" and f"  {printed}  stable" in out
    code, out, _ = beamline(capsys, "labels", "p", "--at", printed, "--json", "--root", labelled)
    assert code == 0
    held = json.loads(out)
    assert held["at_ms"] == CHANGE_MS and held["labels"] == {"stable": 1}


@pytest.mark.parametrize(("at", "held"), [
    ("2020-12-01T14:30:00", {}),  # UTC: 250 ms before the push
    ("2020-12-01T15:30:00.250", {"stable": 2}),
    ("2020-12-01T15:30:00.250+01:00", {"stable": 1}),
    ("now", {"stable": 2}),
    ("1h ago", {"stable": 2}),
])
def test_labels_at_reads_every_form_with_utc_for_no_offset(capsys, labelled, at, held):
    code, out, _ = beamline(capsys, "labels", "p", "--at", at, "--json", "--root", labelled)
    assert code == 0 and json.loads(out)["labels"] == held
