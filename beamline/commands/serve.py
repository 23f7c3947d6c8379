"""`beamline serve`: a TensorFlow Serving-compatible model server (REST + gRPC).

Flags are TF Serving's own names with TF Serving's meanings, so a command line written for
`tensorflow_model_server` works unchanged; Beamline adds --host, --root, --schema_file,
--max_request_bytes and the version routing flags (--canary_percent, --unversioned_to_stable,
--routing_file). With --root (no model flags) the server follows the labels `beamline promote`
writes to <root>/serving/models.config and routing.json. Like every other Beamline command's
flags they may also be spelled with dashes (--rest-api-port), and boolean flags work bare
(--enable_batching) or with =true/=false. TensorFlow is imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.help import Command
from beamline.commands.options import root_option
from beamline.errors import ConfigError
from beamline.settings import RootLayout, apply_tf_environment, is_uri, resolve_root
from beamline_serving.core.config import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_REST_PORT,
    LABELS_FILE_NAME,
    ROUTING_FILE_NAME,
)

# TF Serving bool flags accept both `--flag` and `--flag=true|false`.
BOOL_FLAG = {
    "type": click.BOOL,
    "is_flag": False,
    "flag_value": True,
    "default": False,
    "metavar": "[=true|false]",
}


def dashes_as_underscores(token: str) -> str:
    """Option names as click matches them: `--rest-api-port` is `--rest_api_port`.

    TF Serving's flags use underscores (clients and deploy files depend on them), Beamline's
    other commands use dashes; both spellings work here.
    """
    return token.replace("-", "_")
PATH = click.Path(path_type=Path)


@click.command(
    cls=Command,
    context_settings={"show_default": True, "token_normalize_func": dashes_as_underscores}
)
@click.option("--port", type=int, default=DEFAULT_GRPC_PORT, help="gRPC port (0 disables gRPC).")
@click.option(
    "--rest_api_port", type=int, default=DEFAULT_REST_PORT, help="REST port (0 disables REST)."
)
@click.option(
    "--host",
    default="127.0.0.1",
    help="Address to bind (Beamline; TF Serving binds "
    "all interfaces). Use 0.0.0.0 to accept remote clients.",
)
@click.option(
    "--model_name",
    default="default",
    help="Name of the model served from --model_base_path (ignored with --model_config_file).",
)
@click.option(
    "--model_base_path",
    default=None,
    help="Directory of <version>/ SavedModel directories (ignored with --model_config_file).",
)
@click.option(
    "--model_config_file",
    type=PATH,
    default=None,
    help="Text ModelServerConfig: several models, version policies, version labels.",
)
@click.option(
    "--model_config_file_poll_wait_seconds",
    type=float,
    default=0,
    help="Re-read --model_config_file this often (0: read once).",
)
@click.option(
    "--file_system_poll_wait_seconds",
    type=float,
    default=1,
    help="Look for new versions this often (0: once at start-up).",
)
@click.option("--enable_batching", **BOOL_FLAG, help="Batch concurrent requests together.")
@click.option(
    "--batching_parameters_file",
    type=PATH,
    default=None,
    help="Text BatchingParameters (max_batch_size, batch_timeout_micros, ...).",
)
@click.option(
    "--enable_per_model_batching_parameters",
    **BOOL_FLAG,
    help="Use <version>/batching_params.pbtxt when a model has one.",
)
@click.option(
    "--monitoring_config_file",
    type=PATH,
    default=None,
    help="Text MonitoringConfig; prometheus_config { enable: true } exposes "
    "/monitoring/prometheus/metrics on the REST port.",
)
@click.option(
    "--enable_model_warmup",
    **{**BOOL_FLAG, "default": True},
    help="Replay assets.extra/tf_serving_warmup_requests at load.",
)
@click.option(
    "--num_request_iterations_for_warmup",
    type=int,
    default=1,
    help="Times each warm-up request is replayed.",
)
@click.option(
    "--allow_version_labels_for_unavailable_models",
    **BOOL_FLAG,
    help="Allow labels that point at versions not loaded yet.",
)
@click.option(
    "--canary_percent",
    type=click.FloatRange(0, 100),
    default=0,
    help="Beamline: percent of unversioned requests sent to the model's `canary` label "
    "(by X-Beamline-Request-Key when the client sends one, else at random); routing.json's "
    "per-model canary_percent overrides it.",
)
@click.option(
    "--unversioned_to_stable",
    type=click.BOOL,
    is_flag=False,
    flag_value=True,
    default=None,
    show_default="true with --root, false with model flags (TF Serving: the latest version)",
    help="Beamline: send requests without a version or label to the `stable` label's version "
    "when the model has one.",
)
@click.option(
    "--routing_file",
    type=PATH,
    default=None,
    help=f"Beamline: per-model canary percentages, JSON (default with --root: "
    f"<root>/serving/{ROUTING_FILE_NAME}); re-read while serving.",
)
@click.option(
    "--enable_signature_method_name_check",
    **BOOL_FLAG,
    help="Require classify/regress method names on Classify/Regress signatures.",
)
@click.option(
    "--rest_api_num_threads", type=int, default=0, help="Threads running unbatched requests (0: 8)."
)
@click.option(
    "--rest_api_workers",
    type=click.IntRange(1, 64),
    default=1,
    help="Beamline: processes serving REST on the same port (SO_REUSEPORT), each with its own "
    "copy of the models; the first also serves gRPC. More than one pays off with batching and "
    "many clients (2 on 2 cores: ~2x the REST rate).",
)
@click.option("--rest_worker_state_dir", type=click.Path(path_type=Path), hidden=True)
@click.option("--rest_api_enable_cors_support", **BOOL_FLAG, help="Add CORS headers.")
@click.option(
    "--grpc_max_threads", type=int, default=0, help="Most gRPC calls served at once (0: no limit)."
)
@click.option(
    "--tensorflow_inter_op_parallelism",
    type=int,
    default=1,
    help="Threads running a model's ops in parallel (0: TensorFlow's default, one per core).",
)
@click.option(
    "--tensorflow_intra_op_parallelism",
    type=int,
    default=0,
    help="Threads inside one op (0: TensorFlow's default).",
)
@click.option(
    "--max_request_bytes",
    type=int,
    default=DEFAULT_MAX_REQUEST_BYTES,
    help="Largest request body / message accepted (Beamline; larger: HTTP 413).",
)
@click.option(
    "--schema_file",
    "schema_files",
    multiple=True,
    metavar="[MODEL=]PATH",
    help="Validate requests against this TFMD schema.pbtxt (Beamline; repeatable; "
    "without MODEL= it applies to every model).",
)
@click.option(
    "--request_log_dir",
    type=PATH,
    default=None,
    help="Log sampled requests of every model as PredictionLog TFRecords under "
    "DIR/<model>-*.tfrecord (Beamline; a model config's logging_config does the same per model).",
)
@click.option(
    "--request_log_sample_rate",
    type=float,
    default=1.0,
    show_default=True,
    help="Fraction of requests logged with --request_log_dir.",
)
@click.option(
    "--request_log_exclude",
    multiple=True,
    metavar="NAME",
    help="Never log this input, example feature or output (repeatable; e.g. a sensitive field).",
)
@root_option("Run root whose serving/<model>/ directories are served without model flags.")
def serve(**flags) -> None:
    """Serve pushed models with TensorFlow Serving's REST and gRPC APIs.

    With no model flags, serves every model the Pusher delivered under
    `<root>/serving/<model>/<version>/` (latest version of each), picking up new pushes as they
    land. TF Serving's flags keep their names and meanings (docs/reference/serving-flags.md);
    dashed spellings (--rest-api-port) work too.

    Example:

    \b
        beamline serve --model_name=penguin --model_base_path=beamline_runs/serving/penguin
        curl -d '{"instances": [...]}' localhost:8501/v1/models/penguin:predict
    """
    apply_tf_environment()
    from beamline_serving.core.errors import ConfigError as ServerConfigError

    try:
        options = build_options(**flags)
        if options.serving_root is not None:
            recover_pushes(options.serving_root.parent)
        from beamline_serving.server import run

        run(options)
    except ServerConfigError as exc:  # the server's own error, as this CLI's usage error
        raise ConfigError(str(exc)) from exc


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


def build_options(**flags):
    """ServerOptions from the command's flags (no TensorFlow needed)."""
    from beamline_serving.core.config import (
        ModelSpec,
        ServerOptions,
        read_batching_parameters,
        read_monitoring_config,
    )
    from beamline_serving.core.routing import check_percent

    options = ServerOptions(
        host=flags["host"],
        grpc_port=flags["port"],
        rest_port=flags["rest_api_port"],
        file_system_poll_wait_seconds=flags["file_system_poll_wait_seconds"],
        model_config_file_poll_wait_seconds=flags["model_config_file_poll_wait_seconds"],
        enable_model_warmup=flags["enable_model_warmup"],
        num_request_iterations_for_warmup=flags["num_request_iterations_for_warmup"],
        allow_version_labels_for_unavailable_models=flags[
            "allow_version_labels_for_unavailable_models"
        ],
        enable_signature_method_name_check=flags["enable_signature_method_name_check"],
        rest_api_num_threads=flags["rest_api_num_threads"],
        grpc_max_threads=flags["grpc_max_threads"],
        max_request_bytes=flags["max_request_bytes"],
        cors=flags["rest_api_enable_cors_support"],
        inter_op_threads=flags["tensorflow_inter_op_parallelism"],
        intra_op_threads=flags["tensorflow_intra_op_parallelism"],
        request_log_dir=flags["request_log_dir"].resolve() if flags["request_log_dir"] else None,
        request_log_sample_rate=flags["request_log_sample_rate"],
        request_log_exclude=tuple(
            name for item in flags["request_log_exclude"] for name in item.split(",") if name
        ),
        rest_api_workers=flags["rest_api_workers"],
        rest_worker_state_dir=flags["rest_worker_state_dir"],
        # FloatRange lets NaN through (every comparison with it is false).
        canary_percent=check_percent(flags["canary_percent"], "--canary_percent"),
    )
    if flags["routing_file"] is not None:
        options.routing_file = flags["routing_file"].resolve()
    if options.rest_api_workers > 1 and not options.rest_port:
        raise ConfigError("--rest_api_workers needs REST: --rest_api_port is 0.")
    if not 0.0 <= options.request_log_sample_rate <= 1.0:
        raise ConfigError(
            f"--request_log_sample_rate {options.request_log_sample_rate} is outside [0, 1]; "
            "give the fraction of requests to log, e.g. 0.1."
        )
    if options.grpc_port and options.grpc_port == options.rest_port:
        raise ConfigError(
            f"--port and --rest_api_port are both {options.grpc_port}; gRPC and REST need "
            "different ports (0 disables one of them)."
        )
    if not options.grpc_port and not options.rest_port:
        raise ConfigError("Both --port and --rest_api_port are 0: nothing would be served.")
    if options.max_request_bytes < 1024:
        raise ConfigError("--max_request_bytes must be at least 1024.")
    if flags["model_config_file"] is not None:
        path = flags["model_config_file"].resolve()
        if not path.is_file():
            raise ConfigError(
                f"--model_config_file {path} does not exist. Point it at a text "
                "ModelServerConfig file."
            )
        options.model_config_file = path
    elif flags["model_base_path"] is not None:
        name = flags["model_name"]
        if not name or "/" in name or ":" in name:
            raise ConfigError(
                f"--model_name {name!r} cannot be used: a model name must be non-empty and "
                "contain no '/' or ':' (they would not fit in REST paths)."
            )
        base_path = flags["model_base_path"]
        if not is_uri(base_path):
            base_path = str(Path(base_path).resolve())
        options.models = [ModelSpec(name, base_path)]
    else:
        # The --root option hands over an absolute path; direct callers may pass None.
        options.serving_root = RootLayout(resolve_root(flags["root"])).serving_root
        # What `beamline promote` writes: followed while serving, absent until the first one.
        options.labels_file = options.serving_root / LABELS_FILE_NAME
        if options.routing_file is None:
            options.routing_file = options.serving_root / ROUTING_FILE_NAME
    unversioned = flags["unversioned_to_stable"]
    options.unversioned_to_stable = (
        options.labels_file is not None if unversioned is None else unversioned
    )
    if flags["enable_batching"]:
        options.batching = (
            read_batching_parameters(flags["batching_parameters_file"])
            if flags["batching_parameters_file"] is not None
            else _default_batching()
        )
        options.per_model_batching = flags["enable_per_model_batching_parameters"]
    if flags["monitoring_config_file"] is not None:
        options.prometheus_path = read_monitoring_config(flags["monitoring_config_file"])
    for item in flags["schema_files"]:
        model, _, path = item.partition("=") if "=" in item else ("", "", item)
        schema_path = Path(path).resolve()
        if not schema_path.is_file():
            raise ConfigError(
                f"--schema_file {item}: {schema_path} does not exist. Give a TFMD schema.pbtxt, "
                "optionally as MODEL=PATH to apply it to one model."
            )
        options.schema_files[model] = schema_path
    return options


def _default_batching():
    from beamline_serving.core.config import BatchingOptions

    return BatchingOptions()
