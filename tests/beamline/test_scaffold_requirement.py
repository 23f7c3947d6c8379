"""The project `beamline init` writes depends on Beamline where it can be resolved: beamline-tfx
is not on PyPI, so a bare `==VERSION` pin resolves only where it is already installed."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import Requirement

from beamline.scaffold import beamline_requirement, init

REPO = Path(__file__).resolve().parents[2]
WHEEL = "file:///home/me/dist/beamline_tfx-0.1.0-py3-none-any.whl"


def test_a_wheel_install_makes_the_project_depend_on_that_wheel():
    requirement, comment = beamline_requirement({"url": WHEEL, "archive_info": {}})
    assert Requirement(requirement).url == WHEEL
    assert "wheel this Beamline was installed from" in comment


def test_a_git_install_makes_the_project_depend_on_that_commit():
    direct = {"url": "https://example.org/beamline.git",
              "vcs_info": {"vcs": "git", "commit_id": "0123abc"}}
    requirement, _ = beamline_requirement(direct)
    assert Requirement(requirement).url == "git+https://example.org/beamline.git@0123abc"


def test_an_index_install_keeps_the_version_pin():
    assert beamline_requirement(None, "0.1.0")[0] == "beamline-tfx==0.1.0"


def test_the_project_from_this_checkout_depends_on_it_by_path(tmp_path):
    root = init(tmp_path / "mine", "penguin")
    text = (root / "pyproject.toml").read_text()
    [line] = re.findall(r'^dependencies = \["(.+)"\]$', text, flags=re.MULTILINE)
    requirement = Requirement(line)
    assert requirement.name == "beamline-tfx" and requirement.url, line
    # This venv holds the checkout, editable: the project resolves Beamline from it.
    assert Path(urlparse(requirement.url).path) == REPO
    assert 'name = "beamline-tfx"' in (REPO / "pyproject.toml").read_text()


def test_the_readme_commands_line_up_with_their_comments(tmp_path):
    readme = (init(tmp_path / "mine", "penguin") / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("    beamline ")]
    assert len(commands) == 3
    assert len({line.index(" #") for line in commands}) == 1, commands
