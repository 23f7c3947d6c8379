"""One run root, one TF environment, one URI test: the shared pieces in beamline.settings."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from beamline.commands.options import root_option
from beamline.settings import (
    DEFAULT_ROOT_ENV,
    TF_ENVIRONMENT,
    RootLayout,
    apply_tf_environment,
    is_uri,
    resolve_root,
)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("gs://bucket/x", True),
        ("s3://b", True),
        ("sqlite:////tmp/m.sqlite", True),
        ("mysql://u@h:3306/db", True),
        ("/abs/path", False),
        ("relative/dir", False),
        ("C:\\models", False),
        ("", False),
        (None, False),
        ("no-scheme:/x", False),
    ],
)
def test_is_uri(location, expected):
    assert is_uri(location) is expected


def test_apply_tf_environment_keeps_what_is_set():
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    out = apply_tf_environment(env)
    assert out is env
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert env["TF_USE_LEGACY_KERAS"] == TF_ENVIRONMENT["TF_USE_LEGACY_KERAS"]


def test_layout_keeps_logs_reports_and_temp_under_the_root(tmp_path):
    layout = RootLayout(tmp_path)
    log = layout.log_path("penguin", "2026-11-26T10:00:00.123456")
    assert log.parent == tmp_path / "logs" and ":" not in log.name
    assert log != layout.log_path("penguin", "2026-11-26T10:00:00.123457")
    assert layout.report_path("penguin", "r/1").parent == tmp_path / "reports"
    assert layout.tmp_root.parent == tmp_path


def _root_command():
    @click.command()
    @root_option()
    def show(root):
        click.echo(str(root))

    return show


def test_root_option_resolves_once_from_flag_env_or_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    monkeypatch.delenv(DEFAULT_ROOT_ENV, raising=False)
    assert runner.invoke(_root_command(), []).output.strip() == str(tmp_path / "beamline_runs")
    monkeypatch.setenv(DEFAULT_ROOT_ENV, "from_env")
    assert runner.invoke(_root_command(), []).output.strip() == str(tmp_path / "from_env")
    out = runner.invoke(_root_command(), ["--root", "flag"]).output.strip()
    assert out == str(tmp_path / "flag")
    assert Path(out).is_absolute() and resolve_root(Path(out)) == Path(out)
