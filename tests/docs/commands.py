"""The `beamline ...` command lines shown in README.md and docs/, as argument lists."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Shell blocks hold commands to type; `console` blocks show a prompt (`$ `) before them.
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w-]*)")
OPERATORS = {"&&", "||", "|", ";", "&"}
REDIRECTS = {">", ">>", "<"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PROGRAMS = {"beamline", ".venv/bin/beamline"}


@dataclass(frozen=True)
class Shown:
    """One `beamline` command line shown in a document."""

    path: Path
    line: int
    args: tuple[str, ...]  # what follows `beamline`

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: beamline {shlex.join(self.args)}"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def shell_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, language, logical line) of every line inside fenced shell blocks; lines
    continued with a trailing backslash, or inside an open quote, are joined."""
    out: list[tuple[int, str, str]] = []
    fence = lang = None
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        match = FENCE.match(raw)
        if fence is None:
            if match:
                fence, lang = match["fence"], match["lang"].lower()
            continue
        if match and match["fence"].startswith(fence[0] * len(fence)) and not match["lang"]:
            fence = None
            continue
        if lang not in SHELL_LANGUAGES:
            continue
        line = raw.strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        if not _complete(pending + line):  # a quoted string goes on on the next line
            pending += line + "\n"
            continue
        out.append((start, lang, pending + line))
        pending = ""
    return out


def _complete(line: str) -> bool:
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return False
    return True


def commands_in(line: str, lang: str) -> list[list[str]]:
    """The simple commands of one shell line (comments, redirections, env prefixes removed)."""
    if lang == "console":
        if not line.startswith("$ "):
            return []  # output, not a command
        line = line[2:]
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current, skip = [], [], False
    for token in lexer:
        if skip:
            skip = False
        elif token in OPERATORS:
            commands.append(current)
            current = []
        elif token in REDIRECTS:
            skip = True
        elif not current and ASSIGNMENT.match(token):
            continue
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def shown_commands() -> list[Shown]:
    found = []
    for path in documents():
        for number, lang, line in shell_lines(path.read_text(encoding="utf-8")):
            for command in commands_in(line, lang):
                if command[0] in PROGRAMS:
                    found.append(Shown(path, number, tuple(command[1:])))
    return found


@dataclass(frozen=True)
class Sample:
    """A `beamline` command shown with its output (the lines after `$ beamline ...` in a
    `console` block, up to the next prompt or the block's end)."""

    shown: Shown
    output: tuple[str, ...]

    @property
    def header(self) -> str:
        return normalized(self.output[0])


# What differs from one run root to another: times and run ids, paths, numbers (ports, ids,
# versions, durations). Replaced in the order given.
DYNAMIC = (
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?"), "<TIME>"),
    (re.compile(r"(?<![\w/])/[^\s;,)]*"), "<PATH>"),
    (re.compile(r"\d+"), "<N>"),
)


def normalized(line: str) -> str:
    """An output line with what changes between run roots replaced, spaces collapsed."""
    for pattern, placeholder in DYNAMIC:
        line = pattern.sub(placeholder, line)
    return " ".join(line.split())


def samples() -> list[Sample]:
    found = []
    for path in documents():
        found += samples_in(path, path.read_text(encoding="utf-8"))
    return found


def samples_in(path: Path, text: str) -> list[Sample]:
    found: list[Sample] = []
    fence = None
    command: tuple[int, list[str]] | None = None
    output: list[str] = []

    def close() -> None:
        if command is not None and output and command[1][0] in PROGRAMS:
            found.append(Sample(Shown(path, command[0], tuple(command[1][1:])), tuple(output)))

    for number, raw in enumerate(text.splitlines(), 1):
        match = FENCE.match(raw)
        if fence is None:
            if match and match["lang"].lower() == "console":
                fence, command, output = match["fence"], None, []
            continue
        if match and match["fence"].startswith(fence[0] * len(fence)) and not match["lang"]:
            close()
            fence = None
        elif raw.startswith("$ "):
            close()
            command, output = (number, shlex.split(raw[2:], comments=True)), []
        elif command is not None:
            output.append(raw)
    return found
