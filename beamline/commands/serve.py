"""`beamline serve`: the TensorFlow Serving-compatible model server (REST + gRPC), as a command.

A thin adapter: the server declares its flags (TF Serving's names and meanings, and Beamline's
own) in beamline_serving.core.flags and makes every check there; this command turns that table
into Click options and adds what only the framework knows: --root, whose serving directory is
served when no model flag is given (following the labels and routing files `beamline promote`
writes there), and the recovery of half-done pushes before serving it. Like every other Beamline
command's flags they may also be spelled with dashes (--rest-api-port), and boolean flags work
bare (--enable_batching) or with =true/=false. TensorFlow is imported only when the command runs.
The same server starts without the framework as `python -m beamline_serving`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from beamline.commands.help import Command
from beamline.commands.options import root_option
from beamline.errors import ConfigError
from beamline.settings import RootLayout, apply_tf_environment, resolve_root
from beamline_serving.core.flags import FLAGS, Flag, underscored

_CLICK_TYPES = {
    bool: click.BOOL,
    int: click.INT,
    float: click.FLOAT,
    str: click.STRING,
    Path: click.Path(path_type=Path),
}
_RANGES = {int: click.IntRange, float: click.FloatRange}


def server_flags(func):
    """The server's own flags (beamline_serving.core.flags.FLAGS) as Click options, in order."""
    for flag in reversed(FLAGS):
        func = click.option(flag.option, flag.name, **_click_settings(flag))(func)
    return func


def _click_settings(flag: Flag) -> dict:
    settings: dict = {"help": flag.help, "hidden": flag.hidden}
    if flag.choices:
        settings["type"] = click.Choice(flag.choices)
    elif flag.bounds is not None:
        settings["type"] = _RANGES[flag.type](*flag.bounds)
    else:
        settings["type"] = _CLICK_TYPES[flag.type]
    if flag.repeatable:
        settings["multiple"] = True
    else:
        settings["default"] = flag.default
    if flag.type is bool:  # TF Serving's bool flags: bare, or =true / =false
        settings.update(is_flag=False, flag_value=True, metavar="[=true|false]")
    if flag.metavar:
        settings["metavar"] = flag.metavar
    if flag.default_text is not None:
        settings["show_default"] = flag.default_text
    return settings


@click.command(
    cls=Command,
    context_settings={"show_default": True, "token_normalize_func": underscored},
)
@server_flags
@root_option("Run root whose serving/<model>/ directories are served without model flags.")
def serve(root: Path | None, **flags) -> None:
    """Serve pushed models with TensorFlow Serving's REST and gRPC APIs.

    With no model flags, serves every model the Pusher delivered under
    `<root>/serving/<model>/<version>/` (latest version of each), picking up new pushes as they
    land. TF Serving's flags keep their names and meanings (docs/reference/serving-flags.md);
    dashed spellings (--rest-api-port) work too. Once the models are AVAILABLE, a ready line
    says where the ports answer and gives a curl to paste (a pipeline's SAMPLE_INSTANCE).

    Example:

    \b
        beamline serve --model_name=penguin --model_base_path=beamline_runs/serving/penguin
        curl -d '{"instances": [...]}' localhost:8501/v1/models/penguin:predict
    """
    apply_tf_environment()
    from beamline_serving.errors import ConfigError as ServerConfigError

    try:
        options = build_options(root, **flags)
        if options.serving_root is not None:
            recover_pushes(options.serving_root.parent)
        from beamline_serving.server import run

        run(options, ready_hint=try_predict)
    except ServerConfigError as exc:  # the server's own error, as this CLI's usage error
        raise ConfigError(str(exc)) from exc


def try_predict(rest_url: str, models: list[str]) -> str | None:
    """For the ready line: the curl of the first served model whose pipeline (of the same name,
    in this project) has a SAMPLE_INSTANCE, as the run summary prints it; None if none has."""
    from beamline.runner.summary import predict_curl

    for name in models:
        sample = _sample_instance(name)
        if sample:
            return predict_curl(name, sample, rest_url)
    return None


def _sample_instance(pipeline: str) -> dict | None:
    from beamline import registry

    try:
        return getattr(registry.load_module(pipeline), "SAMPLE_INSTANCE", None)
    except Exception:  # only a hint: a model with no importable pipeline here gets none
        return None


def build_options(root: Path | None, **flags):
    """The server's options for these flags, with the run root's serving directory as what to
    serve without model flags (no TensorFlow needed; the server makes every check)."""
    from beamline_serving.core.flags import options_from_flags

    # The --root option hands over an absolute path; direct callers may pass None.
    serving_root = RootLayout(resolve_root(root)).serving_root
    return options_from_flags(
        flags, serving_root=serving_root, launch_command=_launch_command(sys.argv)
    )


def _launch_command(argv: list[str]) -> tuple[str, ...]:
    """This `beamline serve` command line, run again with this interpreter (REST workers);
    empty when the command was not started from one (e.g. called in-process)."""
    if "serve" not in argv:
        return ()
    return (sys.executable, "-m", "beamline", "serve", *argv[argv.index("serve") + 1 :])


def recover_pushes(root: Path) -> None:
    """Before serving a run root: finish or undo the pushes killed runs left half-done, and
    bring models.config in line with the label history (beamline.runner.push). Pipelines with
    a live run are left to it; a store that cannot be read is reported, not fatal."""
    from beamline.errors import BeamlineError, RunInProgress

    layout = RootLayout(root)
    if not layout.metadata_path.is_file() or not layout.serving_root.is_dir():
        return
    from beamline.metadata.connection import open_existing
    from beamline.runner.push import recover
    from beamline.runner.run_lock import PipelineLock

    try:
        store = open_existing(None, layout.metadata_path)
        for model_dir in sorted(p for p in layout.serving_root.iterdir() if p.is_dir()):
            if model_dir.name.startswith("."):
                continue
            try:
                with PipelineLock(layout, model_dir.name, "serve"):
                    for line in recover(store, layout, model_dir.name).describe():
                        click.echo(f"beamline serve: {model_dir.name}: {line}", err=True)
            except RunInProgress:
                continue
    except BeamlineError as exc:
        click.echo(f"beamline serve: pushes not checked against the record: {exc}", err=True)

