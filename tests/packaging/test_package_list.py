"""Every package in the source tree is in the wheel's package list (pyproject.toml lists them by
hand, under their installed names): a new package left off would be missing only once installed,
long after the tests here passed against the checkout."""

from __future__ import annotations

from pathlib import Path

import tomli

PROJECT = Path(__file__).resolve().parents[2]


def _installed_names() -> dict[str, str]:
    """source directory -> installed import name, from [tool.setuptools.package-dir]."""
    config = tomli.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = {"beamline": "beamline"}
    mapping.update({source: name for name, source in config["package-dir"].items()})
    return mapping


def test_every_source_package_is_listed_for_the_wheel():
    config = tomli.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for source, name in _installed_names().items():
        for init in (PROJECT / source).rglob("__init__.py"):
            relative = init.parent.relative_to(PROJECT / source)
            found.add(".".join((name, *relative.parts)))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
