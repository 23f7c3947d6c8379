"""The `beamline` command: a lazily loaded Click group.

Each subcommand lives in `beamline.commands.<module>` and is imported only when it runs, so
`beamline --help` never imports TensorFlow, TFX or Beam. To add a command, add one line to
`COMMANDS`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from beamline.commands.help import ExampleLast
from beamline.errors import BeamlineError, did_you_mean
from beamline.quiet import quiet_startup

# name -> "module:attribute" of a click.Command; short help shown without importing it.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("beamline.commands.run:run", "Run a pipeline locally on Beam, recording MLMD."),
    "pipelines": ("beamline.commands.pipelines:pipelines", "List the project's pipelines."),
    "serve": ("beamline.commands.serve:serve", "Serve pushed models (TF Serving REST + gRPC API)."),
    "compile": (
        "beamline.commands.compile:compile_command",
        "Compile for Kubeflow v2 / Vertex, or an Airflow DAG.",
    ),
    "submit": ("beamline.commands.submit:submit_command", "Submit a compiled pipeline to run."),
    "runs": ("beamline.commands.runs:runs", "List runs: state, duration, cache, blessing, push."),
    "experiments": (
        "beamline.commands.experiments:experiments",
        "Runs as a table: hyperparameters, trials, metrics, push; --where, --sort.",
    ),
    "lineage": ("beamline.commands.lineage:lineage", "Trace models to data, data to models."),
    "diff": ("beamline.commands.diff:diff", "What changed between two runs."),
    "why": ("beamline.commands.why:why", "Why a node ran instead of coming from the cache."),
    "monitor": (
        "beamline.commands.monitor:monitor",
        "Skew/drift of logged requests vs training data; exit 8 drift, 9 data quality.",
    ),
    "report": ("beamline.commands.report:report", "Write a self-contained HTML report of a run."),
    "gc": ("beamline.commands.gc:gc", "Clean up what killed runs left behind."),
    "ui": ("beamline.commands.ui:ui", "Web UI: runs (live), DAG, Gantt, lineage, models, loop."),
    "models": ("beamline.commands.models:models", "Model versions on disk: run, blessing, labels."),
    "promote": ("beamline.commands.promote:promote", "Give a version a label (stable, canary)."),
    "rollback": ("beamline.commands.promote:rollback", "Move a label back to its last version."),
    "labels": ("beamline.commands.labels:labels", "Which version held each label, now or then."),
    "data": (
        "beamline.commands.data:data",
        "Data and code versions runs kept: log, checkout (byte-identical), du, verify.",
    ),
    "reproduce": (
        "beamline.commands.reproduce:reproduce",
        "Train a model version again from its kept data and code; what differs.",
    ),
    "loop": (
        "beamline.commands.loop:loop",
        "Continuous training: monitor, decide, retrain on new spans, record why.",
    ),
    "init": ("beamline.commands.init:init_command", "Create a project of your own in DIR."),
    "schema": ("beamline.commands.schema:schema", "Infer a first schema.pbtxt from data."),
    "flink": ("beamline.commands.flink:flink", "A local Flink cluster for --beam flink."),
}


class LazyGroup(ExampleLast, click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        # Click's "No such command" names no alternative; a typo deserves the closest one.
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            hint = did_you_mean(name, COMMANDS) + "`beamline --help` lists the commands"
            if name == "help":
                hint += ", `beamline COMMAND --help` explains one"
            ctx.fail(f"No such command {name!r}. {hint}.")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from COMMANDS so that --help imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


OVERVIEW = """\
Beamline: end-to-end TFX pipelines on Apache Beam, with lineage and a TF Serving-compatible
model server.

Start:
  beamline init my-project    a project of your own: pipeline, module files, schema, data
  beamline pipelines          list the pipelines you can run
  beamline run penguin        run one locally; a blessed model (the Evaluator passed it) is pushed
  beamline serve              serve the pushed models (REST :8501, gRPC :8500); the ready line
                              gives a curl to paste

After a run:
  beamline runs               every run: state, duration, cache, blessing, pushed version
  beamline why Trainer        why a node ran instead of coming from the cache
  beamline lineage stable     the served version back to its source files
  beamline ui                 runs, their DAGs, lineage and models in a browser

Every command: beamline --help; one command: beamline COMMAND --help (ends with an example).
"""


def _use_project(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--project DIR: checked now, then handed to every command (and child process) through
    $BEAMLINE_PROJECT, which beamline.project.current() reads."""
    if value is not None:
        from beamline import project

        found = project.load(Path(value), source="--project")
        os.environ[project.PROJECT_ENV] = str(found.root)
    return value


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="beamline-tfx")
@click.option("--project", metavar="DIR", default=None, callback=_use_project, expose_value=False,
              is_eager=True, help="The Beamline project to work in (a directory whose "
              "pyproject.toml has [tool.beamline]) [default: $BEAMLINE_PROJECT, else the "
              "nearest such pyproject.toml above the working directory, else the bundled "
              "examples].")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Beamline: end-to-end TFX pipelines on Apache Beam.

    Run `beamline` alone for a short overview with examples.

    Example:

    \b
        beamline run penguin
    """
    if ctx.invoked_subcommand is None:
        click.echo(OVERVIEW + _docs_line())


def _docs_line() -> str:
    from beamline.project import docs_index

    found = docs_index()
    if found is not None:
        return f"Docs: {found} (Markdown; `make docs` there builds the site)."
    # Installed from an index, or from a wheel whose checkout is not on this machine.
    return ("Docs: docs/index.md in a clone of Beamline's source repository (the one your wheel\n"
            "was built from; `make docs` there builds the site); the wheel holds none.")


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the group and turns BeamlineError into one readable paragraph."""
    quiet_startup()
    _finish(_exit_code(argv))


def _exit_code(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="beamline", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted.", err=True)
        return 130
    except click.ClickException as exc:
        _show_click_error(exc)
        return exc.exit_code
    except BeamlineError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("error: interrupted.", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one paragraph, traceback on request
        if os.environ.get("BEAMLINE_DEBUG"):
            raise
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc}. This is a bug in Beamline, "
            "not in your input; re-run with BEAMLINE_DEBUG=1 for the traceback and report it.",
            err=True,
        )
        return 70
    return 0


def _show_click_error(exc: click.ClickException) -> None:
    """Click's usage errors in Beamline's one style: usage, the help hint, `error: ...`."""
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        click.echo(ctx.get_usage(), err=True)
        names = ctx.help_option_names[0] if ctx.help_option_names else "--help"
        click.echo(f"Try '{ctx.command_path} {names}' for help.\n", err=True)
    click.echo(f"error: {exc.format_message()}", err=True)


def _finish(code: int) -> None:
    """Exits with `code`; returns on success, so Python callers of `main` carry on."""
    # A run's child process (beamline.runner.supervisor) leaves without interpreter teardown;
    # imported only if a run started, so other commands stay light.
    supervisor = sys.modules.get("beamline.runner.supervisor")
    if supervisor is not None:
        supervisor.exit_child_now(code)
    if code:
        sys.exit(code)
