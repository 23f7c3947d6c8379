"""docs/explanation/architecture.md says what the tree and pyproject.toml's import contracts say:
the layers exactly as the contracts list them, one row per room of the framework, the model
server and the components directory, and only files that exist."""

from __future__ import annotations

import re

import tomli

from tests.docs.commands import ROOT
from tests.docs.test_reference_tables import code_spans, table_rows

PAGE = ROOT / "docs" / "explanation" / "architecture.md"
# Directories whose every package and top-level module has a row on the page.
ROOM_DIRECTORIES = ("beamline", "serving", "components")
TOP_DIRECTORIES = (*ROOM_DIRECTORIES, "pipelines", "schemas", "deploy", "docs", "tests")
REPO_PATH = re.compile(rf"(?:{'|'.join(TOP_DIRECTORIES)})/[\w./-]*")
FILE_NAME = re.compile(r"\w+\.py")  # a bare file name: one inside the row's room


def contracts() -> list[dict]:
    pyproject = tomli.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["tool"]["importlinter"]["contracts"]


def page_lines() -> list[str]:
    return PAGE.read_text(encoding="utf-8").splitlines()


def block_under_heading(fragment: str) -> list[str]:
    """The lines of the first fenced block after the first heading that contains `fragment`."""
    lines = page_lines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and fragment in line)
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return lines[fence + 1 : end]


def room_rows() -> dict[str, list[str]]:
    """Room path (first code span of a table row, `beamline/runner/`) -> the row's cells."""
    rows = {}
    for row in table_rows(PAGE):
        spans = code_spans(row[0])
        if spans and spans[0].split("/")[0] in ROOM_DIRECTORIES and spans[0].count("/") > 0:
            rows[spans[0]] = row
    return {room: row for room, row in rows.items() if room.rstrip("/") not in ROOM_DIRECTORIES}


def rooms_on_disk(directory: str) -> set[str]:
    base = ROOT / directory
    packages = {f"{directory}/{p.name}/" for p in base.iterdir() if (p / "__init__.py").is_file()}
    modules = {f"{directory}/{p.name}" for p in base.glob("*.py") if p.name != "__init__.py"}
    return packages | modules


def test_each_layer_list_is_the_import_contracts_list_top_to_bottom():
    layered = [c for c in contracts() if c["type"] == "layers"]
    assert layered, "pyproject.toml has no layers contract"
    for contract in layered:
        for container in contract["containers"]:
            shown = block_under_heading(f"`{container}`")
            assert shown == contract["layers"], f"the page's {container} layers differ"


def test_every_room_has_one_row_and_every_row_is_a_room():
    on_page = set(room_rows())
    for directory in ROOM_DIRECTORIES:
        shown = {room for room in on_page if room.startswith(f"{directory}/")}
        assert shown == rooms_on_disk(directory), f"rooms of {directory}/ differ from the tree"


def test_the_files_a_room_row_names_are_in_that_room():
    for room, row in room_rows().items():
        if not room.endswith("/"):
            continue
        for name in filter(FILE_NAME.fullmatch, code_spans(row[1])):  # what the room holds
            assert (ROOT / room / name).is_file(), f"{room}{name} is named but does not exist"


def test_every_repository_path_on_the_page_exists():
    for line in page_lines():
        for span in filter(REPO_PATH.fullmatch, code_spans(line)):
            assert (ROOT / span).exists(), f"{span} is on the page but not in the tree"


def test_the_importers_of_the_server_and_the_light_start_up_path_are_named():
    shown = {span for line in page_lines() for span in code_spans(line)}
    for contract in contracts():
        for rule in contract.get("ignore_imports", ()):
            importer = rule.split("->")[0].strip().removesuffix(".**")
            assert importer in shown, f"{importer} may import the server; the page omits it"
        if set(contract.get("forbidden_modules", ())) >= {"tensorflow", "tfx"}:
            for module in contract["source_modules"]:
                assert module in shown, f"{module} is on the light start-up path; not on the page"
