"""The reference tables in docs/ say what the code does: exit codes, environment variables,
`beamline serve`'s flags. Each is read from the page and compared with the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from beamline.cli import cli
from tests.docs.commands import ROOT

REFERENCE = ROOT / "docs" / "reference"
PACKAGES = ("beamline", "serving", "components", "pipelines")
ENV_NAME = re.compile(r"(BEAMLINE|TF)_[A-Z0-9_]+")


def table_rows(page: Path) -> list[list[str]]:
    """The cells of every Markdown table row on `page` (header and rule lines skipped)."""
    rows = []
    for line in page.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [r for r in rows if r[0] not in ("code", "variable", "flag")]


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def sources(packages: tuple[str, ...] = PACKAGES) -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(encoding="utf-8")))
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def beamline_errors() -> dict[str, tuple[int, bool]]:
    """Every BeamlineError subclass in beamline/: name -> (exit code, defines its own code).

    (The model server stands alone and has errors of its own, which map to gRPC/HTTP statuses.)
    """
    bases: dict[str, list[str]] = {}
    own: dict[str, int] = {}
    for _, tree in sources(("beamline",)):
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases[node.name] = [ast.unparse(b) for b in node.bases]  # click.Command stays dotted
            for stmt in node.body:
                targets = (
                    stmt.targets if isinstance(stmt, ast.Assign)
                    else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                )
                if [getattr(t, "id", None) for t in targets] == ["exit_code"] and isinstance(
                    stmt.value, ast.Constant
                ):
                    own[node.name] = stmt.value.value

    def code(name: str) -> int | None:
        if name in own:
            return own[name]
        return next((c for b in bases.get(name, ()) if (c := code(b)) is not None), None)

    def is_error(name: str) -> bool:
        return name == "BeamlineError" or any(is_error(b) for b in bases.get(name, ()))

    return {n: (code(n), n in own) for n in bases if is_error(n)}


def test_the_exit_code_table_lists_every_code_and_error_class():
    rows = {int(r[0]): code_spans(r[2]) for r in table_rows(REFERENCE / "exit-codes.md")}
    errors = beamline_errors()
    assert errors["ThresholdCrossed"] == (8, True) and errors["RunInProgress"] == (6, True)
    cli_source = (ROOT / "beamline" / "cli.py").read_text()
    assert "return 70" in cli_source and "return 130" in cli_source
    expected = {code for code, _ in errors.values()} | {0, 70, 130}
    assert set(rows) == expected, "the table's codes differ from the code's"
    for name, (code, defines_code) in errors.items():
        if defines_code:
            assert name in rows[code], f"{name} (exit {code}) is not in the table's row {code}"
    for code, names in rows.items():
        for name in names:
            if name[0].isupper() and name in errors:
                assert errors[name][0] == code, f"{name} is listed under {code}"


def test_the_environment_table_lists_every_variable_the_code_reads():
    listed = {code_spans(r[0])[0] for r in table_rows(REFERENCE / "environment.md")}
    in_code = {
        node.value
        for _, tree in sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and ENV_NAME.fullmatch(node.value)
        and node.value != "TF_ENVIRONMENT"  # a Python constant's name, not a variable
    }
    assert {n for n in listed if ENV_NAME.fullmatch(n)} == in_code
    text = "\n".join(p.read_text(encoding="utf-8") for p, _ in sources())
    for other in listed - in_code:
        assert other in text, f"{other} is listed but nothing reads it"


def test_the_serving_flag_table_lists_every_serve_option():
    listed = {code_spans(r[0])[0] for r in table_rows(REFERENCE / "serving-flags.md")}
    serve = cli.get_command(None, "serve")
    options = {p.opts[0] for p in serve.params if not p.hidden and p.opts[0].startswith("--")}
    assert listed == options
