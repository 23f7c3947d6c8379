"""Request-logging settings: TF Serving's `logging_config`, or Beamline's flags.

TF Serving declares `ModelConfig.logging_config { sampling_config { sampling_rate }
log_collector_config { type filename_prefix } }` but registers no log collector, so a config
carrying one fails to load there ("No request-logger-creator provided"). Beamline registers one
collector type, `tfrecord` (an empty type means the same): PredictionLog records in rotated
TFRecord files named `<filename_prefix>-<UTC time>-<pid>-<n>.tfrecord`.

One log (one filename prefix, its PredictionLog and outcome files together) keeps to a budget
(`LogBudget`): a total size and file count, the oldest files deleted first, and a free-space
floor below which nothing is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from beamline_serving.errors import ConfigError

COLLECTOR_TYPES = ("tfrecord", "")
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FILE_SECONDS = 600.0
DEFAULT_QUEUE_RECORDS = 10_000
# What the records waiting for the writer may hold (their requests' decoded arrays and answers).
DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024
FILE_SUFFIX = ".tfrecord"
# One log's files together, and the free space the log leaves on its filesystem.
DEFAULT_MAX_LOG_BYTES = 1024 * 1024 * 1024
DEFAULT_MIN_FREE_BYTES = 512 * 1024 * 1024
# A file is at most this fraction of the budget: old records are deleted a file at a time, so a
# budget holding only a couple of files would lose half the log at each rotation.
FILES_PER_BUDGET = 8
# The smallest --request_log_max_bytes / --request_log_max_files that leave room for the files
# being written (a PredictionLog and an outcome file per server process) and some old ones.
MIN_MAX_LOG_BYTES = 1024 * 1024
MIN_MAX_LOG_FILES = 4


class RequestLogConfigError(ConfigError):
    """A logging_config or request-log flag that cannot be honoured (message names the fix)."""


@dataclass(frozen=True)
class LogBudget:
    """The disk one log (one filename prefix) may take: before a new file is opened, the oldest
    closed files of the log are deleted until every file, the new one and those still being
    written counted at their full size, fit in `max_bytes` and `max_files`. Nothing is written
    while the filesystem has less than `min_free_bytes` free. 0 turns a limit off."""

    max_bytes: int = DEFAULT_MAX_LOG_BYTES
    max_files: int = 0
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES

    def check(self) -> None:
        """Refuses limits that leave no room for the files being written."""
        if self.max_bytes < 0 or 0 < self.max_bytes < MIN_MAX_LOG_BYTES:
            raise RequestLogConfigError(
                f"--request_log_max_bytes {self.max_bytes} is too small: the request log needs "
                f"at least {MIN_MAX_LOG_BYTES} bytes (1 MiB) for the files being written and "
                "the recent ones; give a larger budget, or 0 for no total limit."
            )
        if self.max_files < 0 or 0 < self.max_files < MIN_MAX_LOG_FILES:
            raise RequestLogConfigError(
                f"--request_log_max_files {self.max_files} is too small: each server process "
                "writes a PredictionLog file and an outcome file at once, and old files need "
                f"room too; give at least {MIN_MAX_LOG_FILES}, or 0 for no count limit."
            )
        if self.min_free_bytes < 0:
            raise RequestLogConfigError(
                f"--request_log_min_free_bytes {self.min_free_bytes} is negative; give the "
                "free space (bytes) below which the request log stops writing, or 0 for none."
            )


@dataclass(frozen=True)
class RequestLogConfig:
    """Where and how much of one model's traffic to log."""

    filename_prefix: str
    sampling_rate: float = 1.0
    sampling_attributes: int = 0
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_file_seconds: float = DEFAULT_MAX_FILE_SECONDS
    queue_records: int = DEFAULT_QUEUE_RECORDS
    exclude_fields: tuple[str, ...] = ()  # request inputs / example features / outputs never logged
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    budget: LogBudget = LogBudget()

    @property
    def file_bytes(self) -> int:
        """Where a file rotates by size: `max_file_bytes`, or less under a small budget."""
        if self.budget.max_bytes:
            return max(1, min(self.max_file_bytes, self.budget.max_bytes // FILES_PER_BUDGET))
        return self.max_file_bytes

    def with_exclusions(self, names: tuple[str, ...]) -> RequestLogConfig:
        return replace(self, exclude_fields=tuple(sorted(set(self.exclude_fields) | set(names))))


def _check_rate(rate: float, where: str) -> None:
    if not 0.0 <= rate <= 1.0:
        raise RequestLogConfigError(
            f"{where}: sampling_rate {rate} is outside [0, 1]; give the fraction of requests to "
            "log, e.g. 0.1 for one in ten."
        )


def from_logging_config(proto, model_name: str, source: str) -> RequestLogConfig | None:
    """The settings a ModelConfig's `logging_config` asks for, or None when it has none."""
    collector = proto.log_collector_config
    where = f"{source}: model {model_name}'s logging_config"
    if not proto.HasField("log_collector_config"):
        if proto.HasField("sampling_config"):
            raise RequestLogConfigError(
                f"{where} has a sampling_config but no log_collector_config; add "
                "log_collector_config { type: 'tfrecord' filename_prefix: '/path/requests' }."
            )
        return None
    if collector.type not in COLLECTOR_TYPES:
        raise RequestLogConfigError(
            f"{where} asks for log collector type {collector.type!r}, which is not registered; "
            "Beamline registers 'tfrecord' (PredictionLog records in TFRecord files)."
        )
    if not collector.filename_prefix:
        raise RequestLogConfigError(
            f"{where} has no log_collector_config.filename_prefix; give the path prefix of the "
            "log files, e.g. '/var/log/beamline/requests/penguin'."
        )
    rate = proto.sampling_config.sampling_rate
    _check_rate(rate, where)
    return RequestLogConfig(
        filename_prefix=collector.filename_prefix,
        sampling_rate=rate,
        sampling_attributes=proto.sampling_config.attributes,
    )


def configs_from_model_server_config(config, source: str) -> dict[str, RequestLogConfig]:
    """Model name -> settings, for the models of a ModelServerConfig that carry logging_config."""
    found: dict[str, RequestLogConfig] = {}
    if config.WhichOneof("config") != "model_config_list":
        return found
    for entry in config.model_config_list.config:
        if entry.HasField("logging_config"):
            settings = from_logging_config(entry.logging_config, entry.name, source)
            if settings is not None:
                found[entry.name] = settings
    return found


def check_prefixes_inside(
    per_model: dict[str, RequestLogConfig], directory: str | os.PathLike, source: str
) -> None:
    """Refuses any filename_prefix whose files would land outside `directory` (--request_log_dir):
    the server creates the prefix's directories and files, so a prefix from a config (or from a
    client's ReloadConfigRequest) must not reach other places. Checked on resolved paths, so `..`
    and symlinks count where they lead."""
    real_dir = os.path.realpath(directory)
    for name, config in sorted(per_model.items()):
        # Files are `<prefix>-<UTC>-...`: they go in the prefix's directory part.
        parent = os.path.realpath(os.path.dirname(config.filename_prefix + "-") or ".")
        if os.path.commonpath([real_dir, parent]) != real_dir:
            raise RequestLogConfigError(
                f"{source}: model {name}'s logging_config filename_prefix "
                f"{config.filename_prefix!r} would write files in {parent}, outside "
                f"--request_log_dir {real_dir}; request logs are written only under that "
                f"directory. Give a prefix inside it, e.g. '{os.path.join(real_dir, name)}'."
            )


def parse_model_config_text(text: str, source: str) -> dict[str, RequestLogConfig]:
    """Model name -> settings from a text ModelServerConfig (as --model_config_file holds)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise RequestLogConfigError(f"Cannot parse the model config file {source}: {exc}.") from exc
    return configs_from_model_server_config(config, source)


@dataclass(frozen=True)
class RequestLogSettings:
    """Which models log where: `logging_config` entries, else the `--request_log_dir` default."""

    per_model: dict[str, RequestLogConfig] = field(default_factory=dict)
    directory: str | None = None  # --request_log_dir: DIR/<model name>-*.tfrecord
    sample_rate: float = 1.0
    exclude_fields: tuple[str, ...] = ()
    budget: LogBudget = LogBudget()  # every log's, logging_config entries' too

    @property
    def enabled(self) -> bool:
        return bool(self.per_model) or self.directory is not None

    def for_model(self, name: str) -> RequestLogConfig | None:
        config = self.per_model.get(name)
        if config is None and self.directory is not None:
            config = RequestLogConfig(
                os.path.join(self.directory, name), sampling_rate=self.sample_rate
            )
        if config is not None and self.exclude_fields:
            config = config.with_exclusions(self.exclude_fields)
        if config is not None:
            config = replace(config, budget=self.budget)
        return config


def settings_from_flags(
    request_log_dir: str | os.PathLike | None,
    sample_rate: float = 1.0,
    model_config_text: str | None = None,
    model_config_source: str = "<model config>",
    exclude_fields: tuple[str, ...] = (),
    budget: LogBudget = LogBudget(),
) -> RequestLogSettings:
    """Settings from `--model_config_file`'s logging_config entries and the flags
    `--request_log_dir DIR [--request_log_sample_rate R] [--request_log_exclude NAME,...]` and
    `--request_log_max_bytes / _max_files / _min_free_bytes` (the budget)."""
    _check_rate(sample_rate, "--request_log_sample_rate")
    budget.check()
    per_model = (
        parse_model_config_text(model_config_text, model_config_source)
        if model_config_text is not None
        else {}
    )
    directory = None
    if request_log_dir is not None:
        directory = os.fspath(request_log_dir)
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise RequestLogConfigError(
                f"--request_log_dir {directory} exists and is not a directory; give a "
                "directory for the request log files."
            )
        check_prefixes_inside(per_model, directory, model_config_source)
    return RequestLogSettings(per_model, directory, sample_rate, tuple(exclude_fields), budget)
