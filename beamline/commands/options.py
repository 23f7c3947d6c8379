"""Options several commands share, defined once (the run root above all)."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.beam import AUTO, profile_names
from beamline.settings import DEFAULT_ROOT, DEFAULT_ROOT_ENV, PushPolicy, resolve_root


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
        help="MLMD store: a SQLite file's path (e.g. beamline_runs/metadata.sqlite), "
        "sqlite:///PATH (PATH relative; an absolute one needs four slashes: "
        "sqlite:////abs/metadata.sqlite), mysql://USER@HOST:PORT/DB (password from "
        "$BEAMLINE_MYSQL_PASSWORD or $BEAMLINE_MYSQL_PASSWORD_FILE) or a config file "
        "[default: SQLite under the run root]. Commands that only read never create a store.",
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


def beam_option(default: str = AUTO, help_text: str | None = None):
    """--beam PROFILE: the Beam runner profile, one checked choice for every command."""
    return click.option(
        "--beam",
        "beam_profile",
        type=click.Choice(profile_names()),
        default=default,
        show_default=True,
        help=help_text
        or "Beam runner profile; auto = in-process for small data, multi-processing for large "
        "(docs/guides/beam-profiles.md).",
    )


def deprecated_alias(old: str, new: str, *, is_flag: bool = False, **attrs):
    """A hidden option `old` that still works as `new` and says so on stderr.

    The command receives it as the parameter `<new>_deprecated` and merges it with `new`
    (`new_or_deprecated`); the note tells the user the one name to use from now on.
    """

    def note(ctx: click.Context, param: click.Parameter, value):
        if value not in (None, False, ()):
            click.echo(f"warning: {old} is deprecated; use {new}.", err=True)
        return value

    dest = new.lstrip("-").replace("-", "_") + "_deprecated"
    return click.option(
        old, dest, is_flag=is_flag, hidden=True, expose_value=True, callback=note,
        default=False if is_flag else None, **attrs,
    )


def new_or_deprecated(value, deprecated, default=None):
    """The value given with the current name, else with the deprecated one, else `default`."""
    if value not in (None, False, default):
        return value
    if deprecated not in (None, False):
        return deprecated
    return value


def threshold_options(max_invalid_default: float, note: str = ""):
    """--threshold FEATURE=VALUE (repeatable) and --max-invalid-fraction: the monitoring
    thresholds of `monitor`, `loop` and `compile --loop`, defined once. The default comes from
    beamline.monitor.quality (passed in: that module reaches TFDV, off the start-up path)."""

    def decorate(func):
        func = click.option(
            "--max-invalid-fraction",
            type=click.FloatRange(0.0, 1.0),
            default=max_invalid_default,
            show_default=True,
            help=f"{note}Share of request rows that may violate the schema (out of range, "
            "unknown category, missing/extra feature, wrong type) before the verdict is `data "
            "quality`.",
        )(func)
        return click.option(
            "--threshold",
            "thresholds",
            multiple=True,
            metavar="FEATURE=VALUE",
            help=f"{note}Override one feature's skew/drift threshold (repeatable; "
            "`prediction=V` for the predictions: classes, or a regression model's numbers).",
        )(func)

    return decorate


class RetrainPolicy(click.Choice):
    """--retrain-on: the policies by their names, and their first names with one warning."""

    def __init__(self) -> None:
        from beamline.loop.policy import POLICIES

        super().__init__(POLICIES)

    def convert(self, value, param, ctx):
        from beamline.loop.policy import DEPRECATED, deprecation_warning

        if value in DEPRECATED:
            click.echo(deprecation_warning(value), err=True)
            return DEPRECATED[value]
        return super().convert(value, param, ctx)


def loop_watch_options(required: bool = True, note: str = ""):
    """--data, --requests, --retrain-on and --push-policy: what a loop step watches, decides by
    and delivers with, for `loop` and `compile --loop` (same names, same meaning)."""
    from beamline.loop.policy import (
        DEFAULT_POLICY,
        NEW_SPAN,
        NEW_SPAN_IF_DRIFT,
        NEW_SPAN_IGNORE_DRIFT,
    )

    def decorate(func):
        func = click.option(
            "--push-policy", type=click.Choice(PushPolicy.ALL), default=PushPolicy.LIVE,
            show_default=True,
            help=f"{note}live: a blessed push takes `stable` and serves; canary: it takes "
            "`canary`, and a later step promotes it once its traffic is healthy.",
        )(func)
        func = click.option(
            "--retrain-on", "policy", type=RetrainPolicy(), default=DEFAULT_POLICY,
            show_default=True, help=f"{note}Which new spans retrain (a retrain always needs a "
            f"span newer than the served model's): {NEW_SPAN}: every one, and drift with no "
            f"new span is an alert; {NEW_SPAN_IF_DRIFT}: one only when the window drifted "
            f"(drift with no new span is an alert); {NEW_SPAN_IGNORE_DRIFT}: every one, and "
            "drift is only reported.",
        )(func)
        func = click.option(
            "--requests", "requests_dir", required=required, type=click.Path(path_type=Path),
            help=f"{note}Request log directory of the server "
            "(`beamline serve --request_log_dir`).",
        )(func)
        return click.option(
            "--data", required=required, type=click.Path(path_type=Path),
            help=f"{note}The data directory new spans land in (span-N/ or the SPAN_PATTERN).",
        )(func)

    return decorate
