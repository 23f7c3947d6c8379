"""The Dockerfile cannot be built here (no Docker engine): check that it agrees with the lock and
with what compiled pipelines expect inside the image."""

from __future__ import annotations

import re
from pathlib import Path

from beamline.deploy.compile import IMAGE_PROJECT_ROOT

PROJECT_ROOT = Path(__file__).resolve().parents[3]

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
LOCK = (PROJECT_ROOT / "requirements.lock").read_text()


def _locked(package: str) -> str:
    return re.search(rf"^{package}==(\S+)$", LOCK, re.MULTILINE).group(1)


def test_base_images_match_the_lock():
    assert f"ARG TFX_VERSION={_locked('tfx')}" in DOCKERFILE
    assert f"ARG BEAM_VERSION={_locked('apache-beam')}" in DOCKERFILE
    assert "FROM tensorflow/tfx:${TFX_VERSION}" in DOCKERFILE
    assert "apache/beam_python3.10_sdk:${BEAM_VERSION}" in DOCKERFILE


def test_project_lands_where_compiled_pipelines_look_for_it():
    assert f"WORKDIR {IMAGE_PROJECT_ROOT}\n" in DOCKERFILE
    # Installed in place, so the beamline_* import names map onto these directories.
    assert "pip install --no-deps --no-build-isolation -e ." in DOCKERFILE
    assert "COPY pyproject.toml README.md LICENSE ./\n" in DOCKERFILE
    for directory in ("beamline", "serving", "pipelines", "components", "schemas"):
        assert f"COPY {directory} ./{directory}\n" in DOCKERFILE
    assert "TF_USE_LEGACY_KERAS=1" in DOCKERFILE
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "beamline" not in ignored
