"""Options several commands share, defined once (the run root above all)."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.settings import DEFAULT_ROOT, DEFAULT_ROOT_ENV, resolve_root


def _resolve_root(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    if value is None:
        from beamline import project

        return project.current().runs_root
    return resolve_root(value)


def root_option(help_text: str = "Run root: artifacts, MLMD, logs, reports, pushed models."):
    """--root (or $BEAMLINE_ROOT, else the project's run root), handed to the command absolute."""
    return click.option(
        "--root",
        type=click.Path(path_type=Path),
        envvar=DEFAULT_ROOT_ENV,
        default=None,
        callback=_resolve_root,
        show_envvar=True,
        help=f"{help_text} [default: ${DEFAULT_ROOT_ENV}, else the project's {DEFAULT_ROOT}/ "
        f"(outside a project: ./{DEFAULT_ROOT})]",
    )


def metadata_option(func):
    return click.option(
        "--metadata",
        default=None,
        help="MLMD store: sqlite:///PATH, mysql://USER@HOST:PORT/DB (password from "
        "$BEAMLINE_MYSQL_PASSWORD or $BEAMLINE_MYSQL_PASSWORD_FILE) or a config file "
        "[default: SQLite under the run root].",
    )(func)


def store_options(func):
    """--root, --metadata and --pipeline, as every command reading the store takes them."""
    func = click.option(
        "--pipeline", "-p", default=None, help="Only this pipeline's runs (default: all)."
    )(func)
    func = metadata_option(func)
    return root_option("Run root whose metadata.sqlite to read.")(func)


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(
        func
    )
