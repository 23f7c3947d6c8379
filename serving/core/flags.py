"""The model server's command-line flags, declared once as data, and the options built from them.

`FLAGS` lists TF Serving's flags (names, types, defaults and meanings kept, so a command line
written for `tensorflow_model_server` works unchanged) and Beamline's own: each flag's type,
default, help, the `ServerOptions` field it sets and its bounds. `options_from_flags` turns
parsed values into `ServerOptions`, and every check of a command line lives there, raising the
server's ConfigError. The front doors only parse: `python -m beamline_serving` through
`argument_parser()` (argparse, no dependency), `beamline serve` through Click options the
framework generates from the same table (adding what only the framework knows: the run root).

Both parsers read TF Serving's syntax (`--flag=value` or `--flag value`), the dashed spelling
Beamline's other commands use (`--rest-api-port`), and bool flags bare or as `=true`/`=false`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from beamline_serving.core.config import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_REST_PORT,
    BatchingOptions,
    ModelSpec,
    ServerOptions,
    read_batching_parameters,
    read_monitoring_config,
)
from beamline_serving.core.serving_root import LABELS_FILE_NAME, ROUTING_FILE_NAME, check_percent
from beamline_serving.core.storage import is_uri
from beamline_serving.errors import ConfigError
from beamline_serving.request_log.config import (
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MIN_FREE_BYTES,
    LogBudget,
    settings_from_flags,
)

# How Python starts the server on its own (serving/__main__.py), before its flags.
STANDALONE_COMMAND = ("-m", "beamline_serving")
# What bool flags accept after `=` (Click's BOOL reads the same words).
TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "off")


@dataclass(frozen=True)
class Flag:
    """One command-line flag: `--<name>`, parsed as `type` (bool flags work bare)."""

    name: str  # TF Serving's spelling, underscores
    type: type  # bool, int, float, str or Path
    default: object
    help: str
    # The ServerOptions field set from the value (after `convert`); None: options_from_flags
    # reads the flag itself (flags that combine, or depend on others).
    field: str | None = None
    convert: Callable[[object], object] | None = None
    # Inclusive (low, high); None on a side: unbounded. Checked here; parsers may show them.
    bounds: tuple[float | None, float | None] | None = None
    # The server's own rule for the value, given the flag's name for its message.
    check: Callable[[object, str], object] | None = None
    choices: tuple[str, ...] = ()
    repeatable: bool = False
    metavar: str | None = None
    default_text: str | None = None  # said in help instead of the default value
    hidden: bool = False  # set by the server itself (a REST worker's state directory)

    @property
    def option(self) -> str:
        return f"--{self.name}"


def _absolute(path: Path | None) -> Path | None:
    return Path(path).resolve() if path is not None else None


def _names(items: Sequence[str]) -> tuple[str, ...]:
    """Repeated and comma-separated names, as one tuple."""
    return tuple(name for item in items for name in item.split(",") if name)


def _auto_or_bool(value: str) -> bool | None:
    return {"auto": None, "true": True, "false": False}[value]


FLAGS: tuple[Flag, ...] = (
    Flag("port", int, DEFAULT_GRPC_PORT, "gRPC port (0 disables gRPC).", field="grpc_port"),
    Flag(
        "rest_api_port", int, DEFAULT_REST_PORT, "REST port (0 disables REST).",
        field="rest_port",
    ),
    Flag(
        "host", str, "127.0.0.1",
        "Address to bind (Beamline; TF Serving binds all interfaces). Use 0.0.0.0 to accept "
        "remote clients.",
        field="host",
    ),
    Flag(
        "allow_reload_config", str, "auto",
        "Beamline: take gRPC HandleReloadConfigRequest calls (neither port authenticates "
        "clients); auto: only when --host is loopback.",
        field="allow_reload_config", convert=_auto_or_bool, choices=("auto", "true", "false"),
    ),
    Flag(
        "model_name", str, "default",
        "Name of the model served from --model_base_path (ignored with --model_config_file).",
    ),
    Flag(
        "model_base_path", str, None,
        "Directory of <version>/ SavedModel directories (ignored with --model_config_file).",
    ),
    Flag(
        "model_config_file", Path, None,
        "Text ModelServerConfig: several models, version policies, version labels.",
    ),
    Flag(
        "model_config_file_poll_wait_seconds", float, 0,
        "Re-read --model_config_file this often (0: read once).",
        field="model_config_file_poll_wait_seconds",
    ),
    Flag(
        "file_system_poll_wait_seconds", float, 1,
        "Look for new versions this often (0: once at start-up).",
        field="file_system_poll_wait_seconds",
    ),
    Flag("enable_batching", bool, False, "Batch concurrent requests together."),
    Flag(
        "batching_parameters_file", Path, None,
        "Text BatchingParameters (max_batch_size, batch_timeout_micros, ...).",
    ),
    Flag(
        "enable_per_model_batching_parameters", bool, False,
        "Use <version>/batching_params.pbtxt when a model has one.",
    ),
    Flag(
        "monitoring_config_file", Path, None,
        "Text MonitoringConfig; prometheus_config { enable: true } exposes "
        "/monitoring/prometheus/metrics on the REST port.",
    ),
    Flag(
        "enable_model_warmup", bool, True,
        "Replay assets.extra/tf_serving_warmup_requests at load.",
        field="enable_model_warmup",
    ),
    Flag(
        "num_request_iterations_for_warmup", int, 1, "Times each warm-up request is replayed.",
        field="num_request_iterations_for_warmup",
    ),
    Flag(
        "allow_version_labels_for_unavailable_models", bool, False,
        "Allow labels that point at versions not loaded yet.",
        field="allow_version_labels_for_unavailable_models",
    ),
    Flag(
        "canary_percent", float, 0,
        "Beamline: percent of unversioned requests sent to the model's `canary` label "
        "(by X-Beamline-Request-Key when the client sends one, else at random); routing.json's "
        "per-model canary_percent overrides it.",
        field="canary_percent", check=check_percent,
    ),
    Flag(
        "unversioned_to_stable", bool, None,
        "Beamline: send requests without a version or label to the `stable` label's version "
        "when the model has one.",
        default_text="true with --root, false with model flags (TF Serving: the latest version)",
    ),
    Flag(
        "routing_file", Path, None,
        f"Beamline: per-model canary percentages, JSON (default with --root: "
        f"<root>/serving/{ROUTING_FILE_NAME}); re-read while serving.",
    ),
    Flag(
        "enable_signature_method_name_check", bool, False,
        "Require classify/regress method names on Classify/Regress signatures.",
        field="enable_signature_method_name_check",
    ),
    Flag(
        "rest_api_num_threads", int, 0, "Threads running unbatched requests (0: 8).",
        field="rest_api_num_threads",
    ),
    Flag(
        "rest_api_workers", int, 1,
        "Beamline: processes serving REST on the same port (SO_REUSEPORT), each with its own "
        "copy of the models; the first also serves gRPC. More than one pays off with batching "
        "and many clients (2 on 2 cores: ~2x the REST rate).",
        field="rest_api_workers", bounds=(1, 64),
    ),
    Flag(
        "rest_worker_state_dir", Path, None, "A REST worker's shared state directory.",
        field="rest_worker_state_dir", hidden=True,
    ),
    Flag("rest_api_enable_cors_support", bool, False, "Add CORS headers.", field="cors"),
    Flag(
        "grpc_max_threads", int, 0, "Most gRPC calls served at once (0: no limit).",
        field="grpc_max_threads",
    ),
    Flag(
        "tensorflow_inter_op_parallelism", int, 1,
        "Threads running a model's ops in parallel (0: TensorFlow's default, one per core).",
        field="inter_op_threads",
    ),
    Flag(
        "tensorflow_intra_op_parallelism", int, 0,
        "Threads inside one op (0: TensorFlow's default).",
        field="intra_op_threads",
    ),
    Flag(
        "max_request_bytes", int, DEFAULT_MAX_REQUEST_BYTES,
        "Largest request body / message accepted (Beamline; larger: HTTP 413).",
        field="max_request_bytes", bounds=(1024, None),
    ),
    Flag(
        "schema_file", str, None,
        "Validate requests against this TFMD schema.pbtxt (Beamline; repeatable; without "
        "MODEL= it applies to every model).",
        repeatable=True, metavar="[MODEL=]PATH",
    ),
    Flag(
        "request_log_dir", Path, None,
        "Log sampled requests of every model as PredictionLog TFRecords under "
        "DIR/<model>-*.tfrecord (Beamline; a model config's logging_config does the same per "
        "model).",
        field="request_log_dir", convert=_absolute,
    ),
    Flag(
        "request_log_sample_rate", float, 1.0,
        "Fraction of requests logged with --request_log_dir.",
        field="request_log_sample_rate",
    ),
    Flag(
        "request_log_exclude", str, None,
        "Never log this input, example feature or output (repeatable; e.g. a sensitive field).",
        field="request_log_exclude", convert=_names, repeatable=True, metavar="NAME",
    ),
    Flag(
        "request_log_max_bytes", int, DEFAULT_MAX_LOG_BYTES,
        "Disk each request log (one model's files) may take; its oldest files are deleted to "
        "stay under it (Beamline; 0: no limit).",
    ),
    Flag(
        "request_log_max_files", int, 0,
        "Files each request log may keep, oldest deleted first (Beamline; 0: no limit).",
    ),
    Flag(
        "request_log_min_free_bytes", int, DEFAULT_MIN_FREE_BYTES,
        "Stop writing request logs while their filesystem has less free space than this; "
        "records are dropped and counted (Beamline; 0: no floor).",
    ),
)


# ---------------------------------------------------------------------------------------------
# Parsed values -> ServerOptions
# ---------------------------------------------------------------------------------------------


def options_from_flags(
    values: Mapping[str, object],
    *,
    serving_root: Path | None = None,
    launch_command: Sequence[str] = (),
) -> ServerOptions:
    """ServerOptions from parsed flag values (one per flag of FLAGS, by name), every check made.

    `serving_root`: what to serve when no model flag is given: every `<serving_root>/<model>/`,
    following the labels and routing files `beamline promote` writes there (the framework passes
    its run root's). `launch_command`: the command line that started this server with these
    flags, which REST workers are started from. No TensorFlow is imported.
    """
    for flag in FLAGS:
        _check_value(flag, values[flag.name])
    options = ServerOptions(
        **{
            flag.field: flag.convert(values[flag.name]) if flag.convert else values[flag.name]
            for flag in FLAGS
            if flag.field is not None
        },
        request_log_budget=LogBudget(
            values["request_log_max_bytes"],
            values["request_log_max_files"],
            values["request_log_min_free_bytes"],
        ),
        routing_file=_absolute(values["routing_file"]),
        launch_command=tuple(launch_command),
    )
    _check_ports(options)
    # The request log's own rules, applied now: before TensorFlow loads, not after.
    settings_from_flags(
        options.request_log_dir,
        options.request_log_sample_rate,
        exclude_fields=options.request_log_exclude,
        budget=options.request_log_budget,
    )
    _set_models(options, values, serving_root)
    unversioned = values["unversioned_to_stable"]
    options.unversioned_to_stable = (
        options.labels_file is not None if unversioned is None else unversioned
    )
    if values["enable_batching"]:
        params = values["batching_parameters_file"]
        options.batching = (
            read_batching_parameters(params) if params is not None else BatchingOptions()
        )
        options.per_model_batching = values["enable_per_model_batching_parameters"]
    if values["monitoring_config_file"] is not None:
        options.prometheus_path = read_monitoring_config(values["monitoring_config_file"])
    options.schema_files = _schema_files(values["schema_file"])
    return options


def _check_value(flag: Flag, value: object) -> None:
    if flag.check is not None:
        flag.check(value, flag.option)
    if flag.bounds is None or value is None:
        return
    low, high = flag.bounds
    # `not >=` rather than `<`: NaN compares false with everything, and is outside.
    if (low is not None and not value >= low) or (high is not None and not value <= high):
        wanted = (
            f"from {low} to {high}" if low is not None and high is not None
            else f"at least {low}" if low is not None else f"at most {high}"
        )
        raise ConfigError(f"{flag.option} must be {wanted}, got {value}.")


def _check_ports(options: ServerOptions) -> None:
    if options.rest_api_workers > 1 and not options.rest_port:
        raise ConfigError("--rest_api_workers needs REST: --rest_api_port is 0.")
    if options.grpc_port and options.grpc_port == options.rest_port:
        raise ConfigError(
            f"--port and --rest_api_port are both {options.grpc_port}; gRPC and REST need "
            "different ports (0 disables one of them)."
        )
    if not options.grpc_port and not options.rest_port:
        raise ConfigError("Both --port and --rest_api_port are 0: nothing would be served.")


def _set_models(
    options: ServerOptions, values: Mapping[str, object], serving_root: Path | None
) -> None:
    """What to serve: --model_config_file, else --model_base_path, else the serving root."""
    if values["model_config_file"] is not None:
        path = Path(values["model_config_file"]).resolve()
        if not path.is_file():
            raise ConfigError(
                f"--model_config_file {path} does not exist. Point it at a text "
                "ModelServerConfig file."
            )
        options.model_config_file = path
    elif values["model_base_path"] is not None:
        name = values["model_name"]
        if not name or "/" in name or ":" in name:
            raise ConfigError(
                f"--model_name {name!r} cannot be used: a model name must be non-empty and "
                "contain no '/' or ':' (they would not fit in REST paths)."
            )
        base_path = values["model_base_path"]
        if not is_uri(base_path):
            base_path = str(Path(base_path).resolve())
        options.models = [ModelSpec(name, base_path)]
    elif serving_root is not None:
        options.serving_root = serving_root
        # What `beamline promote` writes: followed while serving, absent until the first one.
        options.labels_file = serving_root / LABELS_FILE_NAME
        if options.routing_file is None:
            options.routing_file = serving_root / ROUTING_FILE_NAME
    else:
        raise ConfigError(
            "No model to serve: give --model_base_path (and --model_name) for one model, or "
            "--model_config_file for several."
        )


def _schema_files(items: Sequence[str]) -> dict[str, Path]:
    """--schema_file [MODEL=]PATH values: model name ("" = every model) -> schema path."""
    schemas: dict[str, Path] = {}
    for item in items:
        model, _, path = item.partition("=") if "=" in item else ("", "", item)
        schema_path = Path(path).resolve()
        if not schema_path.is_file():
            raise ConfigError(
                f"--schema_file {item}: {schema_path} does not exist. Give a TFMD schema.pbtxt, "
                "optionally as MODEL=PATH to apply it to one model."
            )
        schemas[model] = schema_path
    return schemas


# ---------------------------------------------------------------------------------------------
# The server's own parser (`python -m beamline_serving`)
# ---------------------------------------------------------------------------------------------

def argument_parser() -> argparse.ArgumentParser:
    """An argparse parser of FLAGS (abbreviations off: TF Serving and Click take none)."""
    parser = argparse.ArgumentParser(
        prog=" ".join(("python", *STANDALONE_COMMAND)),
        usage="%(prog)s [--FLAG=VALUE ...]",
        description="Serve TensorFlow SavedModels with TensorFlow Serving's REST and gRPC APIs "
        "and its flags.",
        allow_abbrev=False,
    )
    for flag in FLAGS:
        parser.add_argument(flag.option, dest=flag.name, **_argparse_settings(flag))
    return parser


_METAVARS = {int: "INTEGER", float: "FLOAT", str: "TEXT", Path: "PATH"}


def _argparse_settings(flag: Flag) -> dict:
    settings: dict = {"help": argparse.SUPPRESS if flag.hidden else _help_with_default(flag)}
    if flag.repeatable:
        settings.update(action="append", type=flag.type)
    elif flag.type is bool:
        settings.update(nargs="?", const=True, type=boolean, default=flag.default)
        settings["metavar"] = "true|false"
    else:
        settings.update(type=flag.type, default=flag.default)
    if flag.type is not bool and not flag.choices:
        settings["metavar"] = _METAVARS[flag.type]
    if flag.choices:
        settings["choices"] = flag.choices
    if flag.metavar:
        settings["metavar"] = flag.metavar
    return settings


def _help_with_default(flag: Flag) -> str:
    shown = flag.default_text if flag.default_text is not None else flag.default
    text = flag.help if shown is None else f"{flag.help} [default: {shown}]"
    return text.replace("%", "%%")  # argparse formats help with %


def boolean(text: str) -> bool:
    """A bool flag's `=value`, read as Click's BOOL reads it."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean: use true or false")


def underscored(name: str) -> str:
    """A flag's name as the table spells it: `rest-api-port` is `rest_api_port`.

    TF Serving's flags use underscores (clients and deploy files depend on them), Beamline's
    commands use dashes; both spellings work in both parsers.
    """
    return name.replace("-", "_")


def _underscored_token(token: str) -> str:
    """`--rest-api-port=1` as `--rest_api_port=1` (values and other words kept)."""
    if not token.startswith("--"):
        return token
    name, equals, value = token[2:].partition("=")
    return f"--{underscored(name)}{equals}{value}"


def parse_command_line(argv: Sequence[str]) -> dict[str, object]:
    """Flag values (one per flag of FLAGS) from `argv`; a bad flag exits 2 with argparse's
    usage message."""
    parsed = vars(argument_parser().parse_args([_underscored_token(t) for t in argv]))
    for flag in FLAGS:
        if flag.repeatable:
            parsed[flag.name] = tuple(parsed[flag.name] or ())
    return parsed


def standalone_options(argv: Sequence[str]) -> ServerOptions:
    """ServerOptions for `python -m beamline_serving ARGV` (workers are started the same way)."""
    return options_from_flags(
        parse_command_line(argv),
        launch_command=(sys.executable, *STANDALONE_COMMAND, *argv),
    )
