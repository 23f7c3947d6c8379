"""Beamline is not on PyPI: every install the docs, the README and the projects `beamline init`
writes give a user names the wheel (or a path), never the bare distribution name an index would
have to resolve."""

from __future__ import annotations

import re

from tests.docs.commands import ROOT

# `pip install beamline-tfx`, `uv pip install 'beamline-tfx[airflow]'`: an index lookup.
FROM_AN_INDEX = re.compile(r"install\s+['\"]?beamline-tfx(?=[\s\['\"`]|$)")
# The one place that says so on purpose.
SAYS_IT_FINDS_NOTHING = "`pip install beamline-tfx` finds nothing"


def pages():
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").rglob("*.md"))
    yield ROOT / "beamline" / "scaffold.py"  # the READMEs init writes


def test_no_install_line_asks_an_index_for_beamline():
    found = [
        f"{page.relative_to(ROOT)}:{n}: {line.strip()}"
        for page in pages()
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if FROM_AN_INDEX.search(line.replace(SAYS_IT_FINDS_NOTHING, ""))
    ]
    assert found == [], "install the wheel (make wheel) instead:\n" + "\n".join(found)


def test_the_pattern_catches_an_index_install():
    assert FROM_AN_INDEX.search("pip install 'beamline-tfx[airflow]'")
    assert FROM_AN_INDEX.search("uv pip install beamline-tfx")
    assert not FROM_AN_INDEX.search("pip install 'dist/beamline_tfx-0.1.0-py3-none-any.whl[x]'")
