"""Where `beamline` alone says the docs are: this checkout's, or those of the checkout a wheel
or directory was installed from (PEP 610's direct_url.json names it)."""

from __future__ import annotations

from pathlib import Path

from beamline.project import docs_candidates, docs_index

REPO = Path(__file__).resolve().parents[2]


def test_a_wheel_built_in_a_checkout_points_at_that_checkout_s_docs(tmp_path):
    origin = {"url": f"file://{tmp_path}/beamline/dist/beamline_tfx-0.1.0-py3-none-any.whl",
              "archive_info": {}}
    assert docs_candidates(tmp_path / "site-packages", origin) == [
        tmp_path / "site-packages" / "docs" / "index.md",
        tmp_path / "beamline" / "docs" / "index.md",
    ]


def test_a_directory_install_points_at_its_docs_and_an_index_install_at_none(tmp_path):
    origin = {"url": f"file://{tmp_path}/src", "dir_info": {}}
    assert docs_candidates(tmp_path, origin)[1] == tmp_path / "src" / "docs" / "index.md"
    assert docs_candidates(tmp_path, None) == [tmp_path / "docs" / "index.md"]


def test_this_checkout_finds_its_own_docs():
    assert docs_index() == REPO / "docs" / "index.md"
