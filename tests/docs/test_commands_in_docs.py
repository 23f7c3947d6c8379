"""Every `beamline ...` command shown in README.md and docs/ parses with the real CLI.

Each command line is resolved through the lazy group (a name missing from COMMANDS fails) and
parsed with click's `make_context`, resilient parsing off: options must exist, choices must be
valid, required options present. Nothing runs. Placeholders such as VERSION or RUN_ID are
fine where an argument is expected.
"""

from __future__ import annotations

import click
import pytest

from beamline.cli import COMMANDS, cli
from tests.docs.commands import Shown, commands_in, shell_lines, shown_commands

SHOWN = shown_commands()


def parse(args: tuple[str, ...]) -> None:
    """Parses `beamline ARGS` as the CLI would, without invoking any command."""
    if not args or args[0].startswith("-"):
        # `beamline`, `beamline --help`: the group alone (it has no options of its own).
        cli.make_context("beamline", list(args), resilient_parsing=False)
        return
    group_ctx = click.Context(cli, info_name="beamline")
    name, *rest = args
    if name not in COMMANDS:
        raise click.UsageError(f"No such command {name!r} (not in beamline.cli.COMMANDS).")
    command = cli.get_command(group_ctx, name)
    with command.make_context(name, rest, parent=group_ctx, resilient_parsing=False):
        pass


def test_the_docs_show_every_command():
    assert len(SHOWN) > 40, "the extractor found too few commands: is it broken?"
    shown = {s.args[0] for s in SHOWN if s.args and not s.args[0].startswith("-")}
    assert set(COMMANDS) <= shown, f"never shown in a shell block: {set(COMMANDS) - shown}"


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_a_command_in_the_docs_parses(shown: Shown):
    try:
        parse(shown.args)
    except click.exceptions.Exit as done:  # --help, --version
        assert done.exit_code == 0, str(shown)
    except click.ClickException as exc:
        pytest.fail(f"{shown}\n  does not parse: {exc.format_message()}")


@pytest.mark.parametrize(
    "args",
    [
        ("run", "penguin", "--no-such-flag"),
        ("run", "penguin", "--beam", "warp-drive"),
        ("no-such-command",),
        ("monitor", "penguin"),  # --requests is required
    ],
)
def test_a_wrong_command_does_not_parse(args):
    with pytest.raises(click.UsageError):
        parse(args)


def test_the_extractor_reads_shell_blocks_only():
    text = "\n".join(
        [
            "```bash",
            "beamline run penguin \\",
            "    --no-tune   # a comment",
            "X=1 beamline runs --json > runs.json && beamline why Trainer",
            "```",
            "```text",
            "beamline run penguin [--data DIR]",
            "```",
            "```console",
            "$ beamline runs",
            "beamline output, not a command",
            "```",
            "    ```bash",
            "    beamline gc --dry-run",
            "    ```",
        ]
    )
    commands = [c for n, lang, line in shell_lines(text) for c in commands_in(line, lang)]
    assert commands == [
        ["beamline", "run", "penguin", "--no-tune"],
        ["beamline", "runs", "--json"],
        ["beamline", "why", "Trainer"],
        ["beamline", "runs"],
        ["beamline", "gc", "--dry-run"],
    ]


def test_command_help_renders_as_markdown_without_raw_tags():
    """The CLI page renders each docstring as Markdown: a bare `<root>` would vanish as HTML."""
    import re

    for name in COMMANDS:
        text = cli.get_command(None, name).help or ""
        bare = [m for m in re.findall(r"`[^`]*`|<[A-Za-z][^>]*>", text) if m[0] == "<"]
        assert not bare, f"`beamline {name}` help has {bare}: put paths in backticks"
