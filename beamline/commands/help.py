"""Help pages that end with an example.

A command's docstring ends with an `Example:` section (the docs site renders the docstring
whole); on the terminal that section is printed last, after the options, where a reader
looking for what to type finds it.
"""

from __future__ import annotations

import inspect

import click

EXAMPLE_HEADING = "Example:"


def split_example(help_text: str | None) -> tuple[str, str]:
    """(the help before `Example:`, the example section with its heading; "" if none)."""
    text = inspect.cleandoc(help_text or "").partition("\f")[0]
    head, sep, example = text.partition("\n" + EXAMPLE_HEADING)
    return head.rstrip(), (EXAMPLE_HEADING + example).rstrip() if sep else ""


class ExampleLast:
    """Mixin for click commands and groups: the docstring's example goes after the options."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        head, _ = split_example(self.help)
        if head:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(head)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _, example = split_example(self.help)
        if example:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(example)
        super().format_epilog(ctx, formatter)


class Command(ExampleLast, click.Command):
    """Every `beamline` subcommand: `@click.command(cls=Command)`."""


class Group(ExampleLast, click.Group):
    """A `beamline` command with subcommands: `@click.group(cls=Group)`."""
