"""Server options and the text-proto files TF Serving reads, parsed with TF Serving's meanings.

- `--model_config_file`: a text `ModelServerConfig` (tensorflow_serving.config).
- `--batching_parameters_file`: a text `BatchingParameters`.
- `--monitoring_config_file`: a text `MonitoringConfig`.
The last two messages are not shipped in the tensorflow-serving-api wheel, so their descriptors
are declared here (same package, names, field numbers) in a private pool and parsed with
protobuf's own text-format parser: files written for TF Serving parse identically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from beamline_serving.errors import ConfigError
from beamline_serving.request_log.config import LogBudget

DEFAULT_GRPC_PORT = 8500
DEFAULT_REST_PORT = 8501
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
PROMETHEUS_DEFAULT_PATH = "/monitoring/prometheus/metrics"
ROOT_FILES_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: `latest` (num_versions), `all`, or `specific`."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> set[int]:
        """The versions to serve out of the complete versions on disk."""
        if self.kind == "all":
            return set(available)
        if self.kind == "specific":
            return set(self.versions) & set(available)
        return set(sorted(available)[-max(self.num_versions, 1) :])


@dataclass(frozen=True)
class ModelSpec:
    """One served model: where its versions live and which of them to serve."""

    name: str
    base_path: str  # a local path or a URI (gs://...), as TF Serving accepts
    policy: VersionPolicy = VersionPolicy()
    labels: tuple[tuple[str, int], ...] = ()

    @property
    def label_map(self) -> dict[str, int]:
        return dict(self.labels)


@dataclass(frozen=True)
class BatchingOptions:
    """BatchingParameters with TF Serving's defaults (shared_batch_scheduler QueueOptions)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False


@dataclass(frozen=True)
class RestLimits:
    """What the REST server grants each client, so that slow or flooding clients cannot hold it:
    deadlines on reading a request, caps on connections and on bytes held (per REST process)."""

    # A keep-alive connection with no request in progress is closed after this.
    idle_timeout: float = 60.0
    # From a request's first byte to the end of its headers (408 and closed after).
    header_timeout: float = 10.0
    # From the end of the headers to the end of the body: this many seconds, plus one more per
    # `min_body_bytes_per_second` bytes received (a large body sent steadily always completes).
    body_timeout: float = 30.0
    min_body_bytes_per_second: int = 256 * 1024
    # Connections beyond this are answered 503 and closed at once.
    max_connections: int = 512
    # Request bytes held across all connections (read, not yet answered); the connection whose
    # bytes cross it is answered 503 and closed. Never below one largest request.
    max_buffered_bytes: int = 256 * 1024 * 1024
    # Chunk trailer fields after a chunked body, in total (431 beyond).
    max_trailer_bytes: int = 16 * 1024
    # JSON bodies this large are decoded in a small thread pool rather than on the event loop
    # that REST and gRPC share; bodies being decoded there hold at most `max_decoding_bytes`
    # (503 beyond; one body is always let through).
    decode_in_pool_bytes: int = 1024 * 1024
    decode_threads: int = 2
    max_decoding_bytes: int = 64 * 1024 * 1024


@dataclass
class ServerOptions:
    """Everything `beamline serve` was told (TF Serving's flag names and meanings)."""

    models: list[ModelSpec] = field(default_factory=list)
    # Serve every `<serving_root>/<model>/` found (no flags): re-scanned on every poll.
    serving_root: Path | None = None
    model_config_file: Path | None = None
    model_config_file_poll_wait_seconds: float = 0
    host: str = "127.0.0.1"
    grpc_port: int = DEFAULT_GRPC_PORT
    rest_port: int = DEFAULT_REST_PORT
    file_system_poll_wait_seconds: float = 1
    batching: BatchingOptions | None = None
    per_model_batching: bool = False
    prometheus_path: str | None = None
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    allow_version_labels_for_unavailable_models: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    rest_api_num_threads: int = 0
    grpc_max_threads: int = 0
    schema_files: dict[str, Path] = field(default_factory=dict)  # model name ("" = all) -> path
    enable_signature_method_name_check: bool = False
    cors: bool = False
    inter_op_threads: int = 1  # 0: TensorFlow's default
    intra_op_threads: int = 0
    # Beamline: the labels file and routing file a run root's promotes write (polled; absent
    # means discovery only), unversioned requests to `stable`, and the canary share.
    labels_file: Path | None = None
    routing_file: Path | None = None
    root_files_poll_seconds: float = ROOT_FILES_POLL_SECONDS
    unversioned_to_stable: bool = False
    canary_percent: float = 0.0
    # Request logging (Beamline): --request_log_dir for every model, and logging_config entries.
    request_log_dir: Path | None = None
    request_log_sample_rate: float = 1.0
    request_log_exclude: tuple[str, ...] = ()
    # --request_log_max_bytes / _max_files / _min_free_bytes: each log's disk budget.
    request_log_budget: LogBudget = LogBudget()
    # Beamline: REST server processes sharing the REST port (serving/workers.py); a worker is
    # started with the primary's shared state directory.
    rest_api_workers: int = 1
    rest_worker_state_dir: Path | None = None
    # The command line that started this server with its flags (set by the front door that
    # parsed them: `beamline serve`, `python -m beamline_serving`); workers run it again.
    launch_command: tuple[str, ...] = ()
    # Beamline: deadlines and caps of the REST server (defaults; no flags yet).
    rest_limits: RestLimits = field(default_factory=RestLimits)
    # Beamline: whether gRPC clients may HandleReloadConfigRequest (neither port authenticates
    # its clients); None means only while the server listens on loopback alone.
    allow_reload_config: bool | None = None

    def reloads_allowed(self) -> bool:
        if self.allow_reload_config is not None:
            return self.allow_reload_config
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether binding `host` reaches this machine's own clients only (an unknown name: no)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------
# ModelServerConfig
# ---------------------------------------------------------------------------------------------


def parse_model_config_text(text: str, source: str = "<model config>") -> list[ModelSpec]:
    """Model specs from a text ModelServerConfig; raises ConfigError naming the file and problem."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise ConfigError(
            f"Cannot parse the model config file {source}: {exc}. It must be a text "
            "ModelServerConfig, e.g. model_config_list { config { name: 'm' base_path: '/models/m' "
            "model_platform: 'tensorflow' } }."
        ) from exc
    return model_specs_from_proto(config, source)


def model_specs_from_proto(config, source: str = "<model config>") -> list[ModelSpec]:
    """Model specs from a ModelServerConfig proto, validated as TF Serving validates them."""
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(
            f"{source}: only model_config_list is supported (custom_model_config is not); "
            "list the models as model_config_list { config { ... } }."
        )
    specs: list[ModelSpec] = []
    seen: set[str] = set()
    for entry in config.model_config_list.config:
        if not entry.name:
            raise ConfigError(f"{source}: a model config has no name; give each model a name.")
        if entry.name in seen:
            raise ConfigError(f"Illegal to list model {entry.name} multiple times in config list")
        seen.add(entry.name)
        if "/" in entry.name or ":" in entry.name:
            raise ConfigError(
                f"{source}: model name {entry.name!r} contains '/' or ':', which REST paths "
                "cannot carry; rename the model."
            )
        platform = entry.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise ConfigError(
                f"{source}: model {entry.name} has model_platform {platform!r}; this server "
                "serves TensorFlow SavedModels only (model_platform: 'tensorflow')."
            )
        if not entry.base_path or not (os.path.isabs(entry.base_path) or "://" in entry.base_path):
            raise ConfigError(
                f"Expected model {entry.name} to have an absolute path or URI; got "
                f"base_path()={entry.base_path} (in {source}; TF Serving requires absolute "
                "base paths too)."
            )
        specs.append(
            ModelSpec(
                name=entry.name,
                base_path=entry.base_path,
                policy=_policy_from_proto(entry.model_version_policy),
                labels=tuple(sorted(entry.version_labels.items())),
            )
        )
    return specs


def _policy_from_proto(policy) -> VersionPolicy:
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy("all")
    if which == "specific":
        return VersionPolicy("specific", versions=tuple(policy.specific.versions))
    if which == "latest":
        return VersionPolicy("latest", num_versions=policy.latest.num_versions or 1)
    return VersionPolicy()


def read_model_config_file(path: Path) -> list[ModelSpec]:
    text = _read_config_file(path, "model config", "--model_config_file")
    return parse_model_config_text(text, str(path))


# ---------------------------------------------------------------------------------------------
# BatchingParameters and MonitoringConfig (descriptors declared here)
# ---------------------------------------------------------------------------------------------

_MESSAGES: dict[str, type] = {}


def _message_classes() -> dict[str, type]:
    if _MESSAGES:
        return _MESSAGES
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers_file = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers_file)
    pool.Add(wrappers_file)

    proto = descriptor_pb2.FileDescriptorProto(
        name="beamline_serving/tf_serving_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    F = descriptor_pb2.FieldDescriptorProto
    batching = proto.message_type.add(name="BatchingParameters")
    for name, number, wrapper in (
        ("max_batch_size", 1, "Int64Value"),
        ("batch_timeout_micros", 2, "Int64Value"),
        ("max_enqueued_batches", 3, "Int64Value"),
        ("num_batch_threads", 4, "Int64Value"),
        ("thread_pool_name", 5, "StringValue"),
        ("enable_large_batch_splitting", 8, "BoolValue"),
        ("max_execution_batch_size", 9, "Int64Value"),
    ):
        batching.field.add(
            name=name,
            number=number,
            label=F.LABEL_OPTIONAL,
            type=F.TYPE_MESSAGE,
            type_name=f".google.protobuf.{wrapper}",
        )
    batching.field.add(
        name="allowed_batch_sizes", number=6, label=F.LABEL_REPEATED, type=F.TYPE_INT64
    )
    batching.field.add(
        name="pad_variable_length_inputs", number=7, label=F.LABEL_OPTIONAL, type=F.TYPE_BOOL
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_BOOL)
    prometheus.field.add(name="path", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_STRING)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        label=F.LABEL_OPTIONAL,
        type=F.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    pool.Add(proto)
    factory = message_factory.MessageFactory(pool)
    for name in ("BatchingParameters", "MonitoringConfig"):
        _MESSAGES[name] = factory.GetPrototype(
            pool.FindMessageTypeByName(f"tensorflow.serving.{name}")
        )
    return _MESSAGES


def _parse_text(kind: str, text: str, source: str, flag: str):
    from google.protobuf import text_format

    message = _message_classes()[kind]()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigError(f"Cannot parse {source} as a text {kind}: {exc}. Check {flag}.") from exc
    return message


def parse_batching_parameters(text: str, source: str = "<batching parameters>") -> BatchingOptions:
    """BatchingOptions from a text BatchingParameters; unset fields keep TF Serving's defaults."""
    params = _parse_text("BatchingParameters", text, source, "--batching_parameters_file")
    defaults = BatchingOptions()

    def value(name: str, default: int) -> int:
        return getattr(params, name).value if params.HasField(name) else default

    options = BatchingOptions(
        max_batch_size=value("max_batch_size", defaults.max_batch_size),
        batch_timeout_micros=value("batch_timeout_micros", defaults.batch_timeout_micros),
        max_enqueued_batches=value("max_enqueued_batches", defaults.max_enqueued_batches),
        num_batch_threads=value("num_batch_threads", defaults.num_batch_threads),
        allowed_batch_sizes=tuple(params.allowed_batch_sizes),
        pad_variable_length_inputs=params.pad_variable_length_inputs,
    )
    problems = []
    if options.max_batch_size < 1:
        problems.append("max_batch_size must be at least 1")
    if options.max_enqueued_batches < 1:
        problems.append("max_enqueued_batches must be at least 1")
    if options.num_batch_threads < 1:
        problems.append("num_batch_threads must be at least 1")
    if options.batch_timeout_micros < 0:
        problems.append("batch_timeout_micros must not be negative")
    sizes = options.allowed_batch_sizes
    if sizes:
        if list(sizes) != sorted(set(sizes)):
            problems.append("allowed_batch_sizes must be strictly increasing")
        if sizes[-1] != options.max_batch_size:
            problems.append(
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{sizes[-1]}; expected {options.max_batch_size}"
            )
    if problems:
        raise ConfigError(f"Invalid batching parameters in {source}: {'; '.join(problems)}.")
    return options


def _read_config_file(path: Path, what: str, flag: str) -> str:
    """A config file's text, or a ConfigError naming the file and the flag that chose it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the {what} file {path}: {exc.strerror}. Check {flag}."
        ) from exc


def read_batching_parameters(path: Path) -> BatchingOptions:
    text = _read_config_file(path, "batching parameters", "--batching_parameters_file")
    return parse_batching_parameters(text, str(path))


def read_monitoring_config(path: Path) -> str | None:
    """The Prometheus path if the MonitoringConfig file enables it, else None."""
    text = _read_config_file(path, "monitoring config", "--monitoring_config_file")
    config = _parse_text("MonitoringConfig", text, str(path), "--monitoring_config_file")
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or PROMETHEUS_DEFAULT_PATH


def discover_models(serving_root: Path) -> list[ModelSpec]:
    """One ModelSpec (latest version) per subdirectory of `serving_root`: the Pusher's layout."""
    try:
        entries = sorted(os.scandir(serving_root), key=lambda e: e.name)
    except OSError:
        return []
    return [
        ModelSpec(name=e.name, base_path=e.path)
        for e in entries
        if e.is_dir() and not e.name.startswith(".") and ":" not in e.name
    ]
