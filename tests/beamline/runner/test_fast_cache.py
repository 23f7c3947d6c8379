import os

import pytest

from beamline.data.files import resolve_data
from beamline.runner.fast_cache import FRAMEWORK_FILES, fingerprint


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    for d in ("pipelines", "components", "schemas"):
        (root / d).mkdir(parents=True)
    (root / "pipelines" / "p.py").write_text("x = 1\n")
    (root / "components" / "m.py").write_text("y = 1\n")
    (root / "schemas" / "s.pbtxt").write_text("feature {}\n")
    for f in FRAMEWORK_FILES:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("")
    (root / "requirements.lock").write_text("tfx==1.16.0\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n")
    return root, data


def _digest(project, settings=None):
    root, data = project
    dirs = [root / d for d in ("pipelines", "components", "schemas")]
    return fingerprint(
        "p", resolve_data(data), dirs, settings or {"tune": True}, root, root / "requirements.lock"
    )


def test_same_inputs_same_digest(project):
    assert _digest(project) == _digest(project)


@pytest.mark.parametrize(
    "change",
    [
        lambda root, data: (data / "a.csv").write_text("x\n2\n"),
        lambda root, data: os.utime(data / "a.csv", ns=(1, 1)),
        lambda root, data: (root / "components" / "m.py").write_text("y = 2\n"),
        lambda root, data: (root / "schemas" / "s.pbtxt").write_text("feature {name: 'f'}\n"),
        lambda root, data: (root / "beamline" / "beam.py").write_text("# profiles\n"),
    ],
)
def test_any_input_change_changes_digest(project, change):
    before = _digest(project)
    change(*project)
    assert _digest(project) != before


def test_settings_are_part_of_the_digest(project):
    assert _digest(project, {"tune": True}) != _digest(project, {"tune": False})


def test_cli_and_server_code_do_not_invalidate(project):
    root, _ = project
    before = _digest(project)
    (root / "beamline" / "cli.py").write_text("# a new command\n")
    assert _digest(project) == before
