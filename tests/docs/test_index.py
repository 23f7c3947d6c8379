"""The site's front page and the README link every guide, so none is found only by chance."""

from __future__ import annotations

import pytest

from tests.docs.commands import ROOT

GUIDES = sorted(p.name for p in (ROOT / "docs" / "guides").glob("*.md"))


@pytest.mark.parametrize(
    ("page", "prefix"), [("docs/index.md", "guides/"), ("README.md", "docs/guides/")]
)
def test_every_guide_is_linked_from_the_front_pages(page, prefix):
    text = (ROOT / page).read_text(encoding="utf-8")
    missing = [name for name in GUIDES if f"]({prefix}{name})" not in text]
    assert not missing, f"{page} links no {missing}"
