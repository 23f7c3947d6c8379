"""A newcomer's session, scripted: a `git clone` of this repository, the README's first-screen
commands exactly as printed (read from the README, so this breaks when they change) in a fresh
login shell, down to `make serve`'s ready line; its curl pasted into another fresh shell gets a
prediction, `beamline runs` there (after the README's activate line) shows the run, and Ctrl-C
stops the server cleanly, leaving nothing running.

What is not a newcomer's, and why:
- the clone's `.venv` is this checkout's (a symlink; its bootstrap stamp kept newer than the
  clone's lock file so make does not sync it again): a second 3 GB install would cost minutes
  (benchmarks/first_answer.py measures a cold one);
- the clone's run root starts as a copy of the session's penguin runs and the make shell names
  this checkout as the project (BEAMLINE_PROJECT): the editable .venv runs this checkout's code, and
  with the same project files TFX's cache answers `make run` for every node but the Pusher (a
  minute on a loaded machine, not another training run for the suite);
- `make serve` gets free ports through SERVE_ARGS (other servers may hold 8500 and 8501).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_docs_against_a_run import _ready_curl  # the ready line's curl, waited for
from tests.serving.support import free_port

REPO = Path(__file__).resolve().parents[2]
STAMP_INPUTS = ("requirements.lock", "pyproject.toml", "scripts/bootstrap.sh")


def first_screen() -> list[str]:
    """The README's first code block, line by line, as printed."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert block, "README.md has no ```bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def through_make_serve(lines: list[str]) -> list[str]:
    """The first screen up to its `make serve`, the command that answers requests."""
    [at] = [i for i, line in enumerate(lines) if line.split("#")[0].split() == ["make", "serve"]]
    return lines[: at + 1]


def activate_line(lines: list[str]) -> str:
    [line] = [line for line in lines if ".venv/bin/activate" in line.split("#")[0]]
    return line


def fresh_shell_env(extra: dict[str, str]) -> dict[str, str]:
    """A new login shell's environment: nothing of this test's venv, Python or Beamline."""
    keep = ("HOME", "USER", "LANG", "LC_ALL", "TERM", "TMPDIR")
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if "/.venv/" not in p + "/" and not p.endswith("/.venv/bin")
    )
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "PATH": path, **extra}


@pytest.fixture
def clone(tmp_path, penguin_run) -> Path:
    stamp = REPO / ".venv" / ".bootstrapped"
    assert stamp.is_file(), "this checkout's .venv was not made by scripts/bootstrap.sh"
    target = tmp_path / "beamline"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True,
                   capture_output=True, timeout=300)
    (target / ".venv").symlink_to(REPO / ".venv")
    before = stamp.stat().st_mtime - 60
    for name in STAMP_INPUTS:
        os.utime(target / name, (before, before))
    shutil.copytree(penguin_run.root, target / "beamline_runs", symlinks=True)
    return target


def test_the_readme_first_screen_from_a_fresh_clone_to_a_prediction(clone):
    lines = first_screen()
    session = through_make_serve(lines)
    assert len(session) < len(lines)  # make test, after it, is the suite itself
    rest, grpc = free_port(), free_port()
    env = fresh_shell_env({})
    make_env = {**env, "BEAMLINE_PROJECT": str(REPO),
                "SERVE_ARGS": f"--rest_api_port {rest} --port {grpc}"}
    log = clone / "session.log"
    with log.open("w") as out:
        shell = subprocess.Popen(
            ["bash", "-lc", "set -e\n" + "\n".join(session)], cwd=clone, env=make_env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        curl = _ready_curl(shell, log)
        assert f"http://127.0.0.1:{rest}/v1/models/penguin:predict" in curl
        answer = subprocess.run(["bash", "-lc", curl], cwd=clone, env=env, capture_output=True,
                                text=True, timeout=60)
        assert answer.returncode == 0, answer.stderr
        [prediction] = json.loads(answer.stdout)["predictions"]
        assert set(prediction["classes"]) == {"Adelie", "Chinstrap", "Gentoo"}

        runs = subprocess.run(["bash", "-lc", f"{activate_line(lines)}\nbeamline runs"],
                              cwd=clone, env=env, capture_output=True, text=True, timeout=120)
        assert runs.returncode == 0, runs.stdout + runs.stderr
        header, *rows = runs.stdout.splitlines()
        assert header.split()[:2] == ["RUN", "PIPELINE"]
        ran = re.search(r"^Run (\S+) of 'penguin': succeeded", log.read_text(), re.MULTILINE)
        assert ran, log.read_text()  # make run's own summary
        assert any(row.split()[0] == ran.group(1) for row in rows), runs.stdout
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it to the group
        code = shell.wait(120)
    # The server stops cleanly; make, told of Ctrl-C too, ends by SIGINT as make does.
    text = log.read_text()
    assert code in (0, -signal.SIGINT), text
    assert "Shutting down" in text and "Traceback" not in text and "error:" not in text, text
    with pytest.raises(ProcessLookupError):
        os.killpg(shell.pid, 0)  # nothing of the session is left running
    assert (clone / "beamline_runs" / "requests").is_dir()  # make serve logs requests

