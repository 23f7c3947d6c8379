"""Help pages: one example section each, after the options."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from beamline.cli import COMMANDS, cli
from beamline.commands.help import EXAMPLE_HEADING


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_page_has_one_example_heading(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.count(EXAMPLE_HEADING) == 1, result.output
