"""The monitoring guide's exit-code table lists every code `beamline monitor` can end with, each
as the reference page gives it: the errors its sources raise, read from the code."""

from __future__ import annotations

import ast

from tests.docs.commands import ROOT
from tests.docs.test_reference_tables import beamline_errors

GUIDE = ROOT / "docs" / "guides" / "monitoring.md"
MONITOR_SOURCES = [*sorted((ROOT / "beamline" / "monitor").rglob("*.py")),
                   ROOT / "beamline" / "commands" / "monitor.py"]
# Not raised in monitor's own sources: success, click's usage errors, and the store's opening
# (every command that reads MLMD shares it).
SHARED = {0, 2, 5}


def raised_codes() -> set[int]:
    errors = beamline_errors()
    names = {
        ast.unparse(node.exc.func if isinstance(node.exc, ast.Call) else node.exc)
        for path in MONITOR_SOURCES
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Raise) and node.exc is not None
    }
    return {errors[name][0] for name in names if name in errors}


def guide_table() -> dict[int, str]:
    section = GUIDE.read_text(encoding="utf-8").split("### Exit codes", 1)[1].split("\n#", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines()
            if line.startswith("|") and line.split("|")[1].strip().isdigit()]
    return {int(code): meaning.strip() for code, meaning in rows}


def test_the_monitoring_guide_lists_every_exit_code_monitor_can_end_with():
    raised = raised_codes()
    assert {3, 8, 9, 11} <= raised  # the reader above still finds monitor's own verdicts
    assert set(guide_table()) == raised | SHARED
