"""`beamline init`: a project of the user's own, from a bundled example; never over their files."""

from __future__ import annotations

import ast
import csv
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

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


def _run_project_tests(root: Path, report: Path) -> dict[str, str]:
    """pytest over the project's own tests, as its README says (`pytest` at the project root)
    with the environment's python: test name -> "" when it passed, else its failure report
    (from pytest's JUnit XML)."""
    env = {k: v for k, v in os.environ.items() if k not in (project.PROJECT_ENV, "PYTHONPATH")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junitxml={report}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )
    assert report.is_file(), proc.stdout + proc.stderr
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        problems = [*case.iter("failure"), *case.iter("error"), *case.iter("skipped")]
        outcomes[case.get("name")] = "".join(p.get("message", "") + (p.text or "")
                                             for p in problems)
    assert proc.returncode == (1 if any(outcomes.values()) else 0), proc.stdout + proc.stderr
    return outcomes


# Two Python processes importing TensorFlow, TFX and TFDV (no pipeline runs): about a minute.
@pytest.mark.slow
def test_the_new_projects_own_tests_pass_and_catch_a_broken_module_and_sample(tmp_path):
    root = init(tmp_path / "p", "penguin")
    assert _run_project_tests(root, tmp_path / "ok.xml") == {
        "test_pipeline_builds_through_pusher[penguin]": "",
        "test_data_sample_has_the_schema_columns[penguin]": "",
    }
    # A syntax error in the model module file, and a sample that lost a column the schema
    # names: each of the two tests catches one.
    model_module = root / "components" / "penguin" / "model" / "module.py"
    model_module.write_text(model_module.read_text() + "\ndef run_fn(fn_args)\n")
    sample = root / "data" / "penguin" / "penguin.csv"
    with sample.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with sample.open("w", newline="") as f:
        writer = csv.DictWriter(f, [c for c in rows[0] if c != "island"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    broken = _run_project_tests(root, tmp_path / "broken.xml")
    assert set(broken) == {"test_pipeline_builds_through_pusher[penguin]",
                           "test_data_sample_has_the_schema_columns[penguin]"}
    built = broken["test_pipeline_builds_through_pusher[penguin]"]
    assert "SyntaxError" in built and str(model_module) in built, built
    sampled = broken["test_data_sample_has_the_schema_columns[penguin]"]
    assert "AssertionError" in sampled and "island" in sampled, sampled
