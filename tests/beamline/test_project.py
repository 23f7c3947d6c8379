"""Projects: found from the nearest marked pyproject.toml, --project / $BEAMLINE_PROJECT, or the
bundled examples; the registry lists whichever project is current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beamline import project, registry
from beamline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _write_project(root: Path, table: str = "[tool.beamline]\n") -> Path:
    (root / "pipelines").mkdir(parents=True)
    (root / "pipelines" / "churn.py").write_text('"""Churn: who leaves."""\n')
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n{table}')
    return root


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(project.PROJECT_ENV, raising=False)


def test_nearest_marked_pyproject_from_a_subdirectory(tmp_path, monkeypatch, no_env):
    root = _write_project(tmp_path / "proj")
    (root / "pipelines" / "deep").mkdir()
    monkeypatch.chdir(root / "pipelines" / "deep")
    current = project.current()
    assert current.root == root.resolve() and not current.bundled
    assert current.runs_root == root.resolve() / "beamline_runs"
    assert current.schema_path("churn") == root.resolve() / "schemas" / "churn" / "schema.pbtxt"
    assert list(registry.discover()) == ["churn"]


def test_an_unmarked_pyproject_is_passed_over(tmp_path, monkeypatch, no_env):
    outer = _write_project(tmp_path / "outer")
    inner = outer / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "lib"\n')
    monkeypatch.chdir(inner)
    assert project.current().root == outer.resolve()


def test_table_keys_move_the_directories(tmp_path):
    root = _write_project(tmp_path / "p", '[tool.beamline]\nschemas = "contracts"\nruns = "out"\n')
    found = project.load(root)
    assert found.schemas_dir == root.resolve() / "contracts"
    assert found.runs_root == root.resolve() / "out"
    assert found.pipelines_dir == root.resolve() / "pipelines"


def test_bad_table_value_is_one_paragraph(tmp_path):
    root = _write_project(tmp_path / "p", "[tool.beamline]\nschemas = 3\n")
    with pytest.raises(ConfigError, match=r"\[tool.beamline\] schemas = 3 is not a path"):
        project.load(root)


def test_explicit_directory_without_marker_is_refused(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "lib"\n')
    with pytest.raises(ConfigError, match="without a \\[tool.beamline\\] table") as err:
        project.load(tmp_path)
    assert "beamline init DIR" in str(err.value)


def test_outside_any_project_the_bundled_examples_are_used(tmp_path, monkeypatch, no_env):
    monkeypatch.chdir(tmp_path)
    current = project.current()
    assert current.bundled
    assert {"penguin", "taxi"} <= set(registry.discover(current))
    assert current.schema_path("penguin").is_file()
    assert current.runs_root == tmp_path.resolve() / "beamline_runs"
    assert "bundled with Beamline" in current.describe()


def test_this_repository_is_a_project_like_any_other(monkeypatch, no_env):
    monkeypatch.chdir(REPO / "beamline")
    current = project.current()
    assert current.root == REPO and not current.bundled
    assert current.schemas_dir == REPO / "schemas"


def test_project_option_errors_in_one_paragraph(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "--project", str(tmp_path), "pipelines"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert f"--project {tmp_path.resolve()} is not a Beamline project" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_project_option_reaches_the_command(tmp_path):
    root = _write_project(tmp_path / "p")
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "--project", str(root), "pipelines"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["churn", "Churn:", "who", "leaves."]


def test_activate_puts_the_root_on_both_paths(tmp_path, monkeypatch):
    root = _write_project(tmp_path / "p")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    project.activate(project.load(root))
    assert sys.path[0] == str(root.resolve())
    assert os.environ["PYTHONPATH"] == f"{root.resolve()}:/elsewhere"
