"""The wheel as a user gets it: built with `uv build`, installed with `uv pip` into a fresh venv
outside the repository (the lock as constraints), then `init`, `run` and `serve` from there.

Slow (one install and one pipeline run, shared by every test here through module fixtures).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "guides" / "your-own-project.md"
SERVE_READY_SECONDS = 300


def _uv() -> str:
    local = REPO / ".tools" / "bin" / "uv"
    found = str(local) if local.is_file() else shutil.which("uv")
    assert found, "uv is needed to build and install the wheel (scripts/bootstrap.sh installs it)"
    return found


def _clean_env(venv: Path | None = None) -> dict[str, str]:
    """The environment of a user's shell: none of this checkout's paths or Beamline settings."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("BEAMLINE_", "PYTHON", "VIRTUAL_ENV", "UV_PROJECT"))
    }
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv)
    return env


def _check(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 1800):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


@dataclass
class Installed:
    dist: Path
    wheel: Path
    sdist: Path
    venv: Path
    work: Path  # a directory outside the repository, the user's

    @property
    def beamline(self) -> str:
        return str(self.venv / "bin" / "beamline")

    def env(self) -> dict[str, str]:
        return _clean_env(self.venv)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    assert REPO not in base.parents
    dist = base / "dist"
    _check([_uv(), "build", "--python", sys.executable, "--out-dir", str(dist), str(REPO)],
           base, _clean_env(), timeout=900)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    venv = base / "venv"
    _check([_uv(), "venv", "--python", sys.executable, str(venv)], base, _clean_env())
    _check(
        [_uv(), "pip", "install", "--python", str(venv / "bin" / "python"),
         "-c", str(REPO / "requirements.lock"), str(wheel)],
        base, _clean_env(), timeout=1800,
    )
    work = base / "work"
    work.mkdir()
    return Installed(dist, wheel, sdist, venv, work)


def documented_import_names() -> set[str]:
    """The top-level import names the guide's "Import names" table lists."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Import names", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))


def test_wheel_holds_the_documented_packages_and_no_run_output(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == documented_import_names() == {
        "beamline", "beamline_serving", "beamline_components", "beamline_pipelines"
    }
    assert not [n for n in names if "beamline_runs" in n or "/tests/" in n or "test_" in n]
    data = sorted(n for n in names if not n.endswith(".py") and ".dist-info/" not in n)
    # The schemas, and the web UI's own assets (it serves every asset itself).
    ui_assets = sorted(
        f"beamline/ui/static/{p.name}" for p in (REPO / "beamline" / "ui" / "static").iterdir()
        if p.is_file()
    )
    assert ui_assets and data == sorted([
        "beamline_pipelines/schemas/penguin/schema.pbtxt",
        "beamline_pipelines/schemas/taxi/schema.pbtxt",
        *ui_assets,
    ])
    # Module files of both examples ship too.
    for example in ("penguin", "taxi"):
        for part in ("transform", "model"):
            assert f"beamline_components/{example}/{part}/module.py" in names


def test_metadata_states_license_and_python(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        [meta] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        text = wheel.read(meta).decode()
    assert "License-Expression: Apache-2.0" in text
    assert "Requires-Python: <3.11,>=3.10" in text


def test_twine_check_passes(installed):
    uvx = str(Path(_uv()).with_name("uvx"))
    proc = _check([uvx, "twine", "check", str(installed.wheel), str(installed.sdist)],
                  installed.work, _clean_env(), timeout=600)
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_version(installed):
    proc = _check([installed.beamline, "--version"], installed.work, installed.env(), timeout=120)
    assert "0.1.0" in proc.stdout


def test_outside_a_project_the_bundled_examples_are_listed(installed):
    proc = _check([installed.beamline, "pipelines"], installed.work, installed.env(), timeout=120)
    assert {"penguin", "taxi"} <= {line.split()[0] for line in proc.stdout.splitlines()}
    assert "bundled with Beamline" in proc.stderr
    assert str(installed.venv) in proc.stderr  # the installed copy, not this checkout


def test_beamline_alone_says_where_the_docs_are(installed):
    def docs_line() -> str:
        proc = _check([installed.beamline], installed.work, installed.env(), timeout=120)
        [line] = [x for x in proc.stdout.splitlines() if x.startswith("Docs: ")]
        return line

    # The wheel holds no docs, and no checkout sits above its dist/ directory: say so.
    assert "a clone of Beamline's source repository" in docs_line()
    # A wheel `make wheel` built sits in its checkout's dist/: that checkout's docs.
    index = installed.dist.parent / "docs" / "index.md"
    index.parent.mkdir()
    index.write_text("# Beamline\n")
    try:
        assert docs_line().startswith(f"Docs: {index} ")
    finally:
        shutil.rmtree(index.parent)


def test_a_new_project_s_tests_pass_with_what_its_readme_installs(installed):
    project = installed.work / "tested-project"
    _check([installed.beamline, "init", str(project)], installed.work, installed.env(), 120)
    assert "pip install pytest && pytest" in (project / "README.md").read_text()
    # What `pip install pytest` does (uv's venv has no pip), pinned as the lock pins it.
    _check([_uv(), "pip", "install", "--python", str(installed.venv / "bin" / "python"),
            "-c", str(REPO / "requirements.lock"), "pytest"], installed.work, _clean_env(), 600)
    proc = _check([str(installed.venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"],
                  project, installed.env(), timeout=900)
    assert re.search(r"\b[1-9]\d* passed\b", proc.stdout), proc.stdout  # tests ran, none failed


@pytest.fixture(scope="module")
def project_run(installed):
    project = installed.work / "my-project"
    _check([installed.beamline, "init", str(project)], installed.work, installed.env(), 120)
    # From a subdirectory: the project is found by walking up.
    run = _check([installed.beamline, "run", "penguin", "--no-tune"], project / "pipelines",
                 installed.env())
    return project, run


def test_run_inside_the_new_project_pushes_a_blessed_model(project_run):
    project, run = project_run
    assert "pushed: version" in run.stdout, run.stdout
    assert "model blessed: yes" in run.stdout, run.stdout
    [version] = list((project / "beamline_runs" / "serving" / "penguin").iterdir())
    assert (version / "saved_model.pb").is_file()
    # The run used the project's own module files (found through its components/ directory).
    log = next((project / "beamline_runs" / "logs").glob("penguin-*.log")).read_text()
    assert "'module_path': 'components.penguin.transform.module'" in log


def test_the_new_project_depends_on_the_wheel_it_was_made_with(installed, project_run):
    # beamline-tfx is not on PyPI: a `==0.1.0` pin would resolve nowhere else.
    project, _ = project_run
    text = (project / "pyproject.toml").read_text()
    assert f'dependencies = ["beamline-tfx @ {installed.wheel.as_uri()}"]' in text, text


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def test_serve_answers_a_predict_for_the_pushed_model(installed, project_run):
    project, _ = project_run
    for _attempt in range(3):  # a port taken between choosing and binding: pick another
        port = _free_port()
        log = (project / f"serve-{port}.log").open("w")
        server = subprocess.Popen(
            [installed.beamline, "serve", "--port", "0", "--rest_api_port", str(port)],
            cwd=project, env=installed.env(), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + SERVE_READY_SECONDS
            status = None
            while server.poll() is None and time.monotonic() < deadline:
                status = _get(f"http://127.0.0.1:{port}/v1/models/penguin")
                if status and status["model_version_status"][0]["state"] == "AVAILABLE":
                    break
                time.sleep(0.5)  # poll interval of a bounded wait, not a synchronization
            if server.poll() is not None:
                text = (project / f"serve-{port}.log").read_text()
                if "in use" in text:
                    continue
                pytest.fail(f"beamline serve exited {server.returncode}:\n{text}")
            assert status and status["model_version_status"][0]["state"] == "AVAILABLE"
            sample = _sample_instance(installed)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/models/penguin:predict",
                data=json.dumps({"instances": [sample]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as resp:
                [prediction] = json.loads(resp.read())["predictions"]
            assert abs(sum(prediction["scores"]) - 1.0) < 1e-4
            assert set(prediction["classes"]) == {"Adelie", "Chinstrap", "Gentoo"}
            return
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()
    pytest.fail("no free port for beamline serve in 3 attempts")


def _sample_instance(installed) -> dict:
    code = (
        "import json; from beamline_pipelines import penguin; "
        "print(json.dumps(penguin.SAMPLE_INSTANCE))"
    )
    proc = _check([str(installed.venv / "bin" / "python"), "-c", code], installed.work,
                  installed.env(), timeout=120)
    return json.loads(proc.stdout)
