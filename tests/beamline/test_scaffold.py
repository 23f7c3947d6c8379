"""`beamline init`: a project of the user's own, from a bundled example; never over their files."""

from __future__ import annotations

import ast
import csv
import subprocess
import sys

import pytest

from beamline import project, registry
from beamline.errors import ConfigError
from beamline.scaffold import TEMPLATES, init


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_init_writes_a_project_beamline_finds(tmp_path, template):
    root = init(tmp_path / "my-proj", template)
    found = project.load(root)
    assert list(registry.discover(found)) == [template]
    assert found.schema_path(template).read_text() == (
        registry.get(template, project.bundled()).schema_path.read_text()
    )
    for part in ("transform", "model"):
        assert (found.components_dir / template / part / "module.py").is_file()
    source = (found.pipelines_dir / f"{template}.py").read_text()
    ast.parse(source)
    assert f'Path(settings.components_dir) / "{template}"' in source
    assert "package_path" not in source  # nothing read from the installed examples
    with (root / "data" / template / f"{template}.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert 300 <= len(rows) - 1 <= TEMPLATES[template].rows
    text = (root / "pyproject.toml").read_text()
    assert "[tool.beamline]" in text and '"beamline-tfx' in text
    assert (root / "tests" / "test_pipelines.py").is_file() and (root / "README.md").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name != "my-proj"]  # no staging left


def test_init_into_an_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    assert (init(tmp_path / "empty", "penguin") / "pyproject.toml").is_file()


def test_init_refuses_a_non_empty_directory_in_one_paragraph(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match="is not empty, so `beamline init` wrote nothing"):
        init(tmp_path, "penguin")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "init", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_new_projects_pipeline_reads_its_own_data_sample(tmp_path, monkeypatch):
    root = init(tmp_path / "p", "penguin")
    monkeypatch.delenv(project.PROJECT_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_module puts the root on both paths
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.chdir(root / "components")
    module = registry.load_module("penguin")
    assert module.default_data_root() == str(root / "data" / "penguin")
    assert module.__name__ == "pipelines.penguin"  # the project root is on sys.path
    for name in [n for n in sys.modules if n.split(".")[0] == "pipelines"]:
        del sys.modules[name]
