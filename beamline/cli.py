"""The `beamline` command: a lazily loaded Click group.

Each subcommand lives in `beamline.commands.<module>` and is imported only when it runs, so
`beamline --help` never imports TensorFlow, TFX or Beam. To add a command, add one line to
`COMMANDS`.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from beamline.errors import BeamlineError

# name -> "module:attribute" of a click.Command; short help shown without importing it.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("beamline.commands.run:run", "Run a pipeline locally on Beam, recording MLMD."),
    "pipelines": ("beamline.commands.pipelines:pipelines", "List the pipelines in pipelines/."),
    "serve": ("beamline.commands.serve:serve", "Serve pushed models (TF Serving REST + gRPC API)."),
    "compile": ("beamline.commands.compile:compile_command", "Compile for Kubeflow v2 / Vertex."),
    "submit": ("beamline.commands.submit:submit_command", "Submit a compiled pipeline to run."),
    "runs": ("beamline.commands.runs:runs", "List runs: state, duration, cache, blessing, push."),
    "lineage": ("beamline.commands.lineage:lineage", "Trace models to data, data to models."),
    "diff": ("beamline.commands.diff:diff", "What changed between two runs."),
    "why": ("beamline.commands.why:why", "Why a node ran instead of coming from the cache."),
    "monitor": (
        "beamline.commands.monitor:monitor",
        "Skew/drift of logged requests vs training data; exit 6 past a threshold.",
    ),
    "report": ("beamline.commands.report:report", "Write a self-contained HTML report of a run."),
    "gc": ("beamline.commands.gc:gc", "Clean up what killed runs left behind."),
    "flink": ("beamline.commands.flink:flink", "A local Flink cluster for --beam flink."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from COMMANDS so that --help imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="beamline-tfx")
def cli() -> None:
    """Beamline: end-to-end TFX pipelines on Apache Beam."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the group and turns BeamlineError into one readable paragraph."""
    _finish(_exit_code(argv))


def _exit_code(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="beamline", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BeamlineError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one paragraph, traceback on request
        if os.environ.get("BEAMLINE_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in Beamline, not in "
            "your input; re-run with BEAMLINE_DEBUG=1 for the traceback and report it.",
            err=True,
        )
        return 70
    return 0


def _finish(code: int) -> None:
    """Exits with `code`; returns on success, so Python callers of `main` carry on."""
    # A run's child process (beamline.runner.supervisor) leaves without interpreter teardown;
    # imported only if a run started, so other commands stay light.
    supervisor = sys.modules.get("beamline.runner.supervisor")
    if supervisor is not None:
        supervisor.exit_child_now(code)
    if code:
        sys.exit(code)
