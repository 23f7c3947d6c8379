"""Typed configuration: Beamline's defaults live here (Apache Flink's pins and cluster sizes in
beamline/flink/settings.py, the Beam profiles' flags in beamline/beam.py).

Pure data, no heavy imports. `RootLayout` says where a run root keeps everything;
`PipelineSettings` is what a `create_pipeline()` receives (paths resolved, Beam args chosen).
`apply_tf_environment()` is the one place the process environment for TensorFlow is set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# Environment variables: TF_USE_LEGACY_KERAS=1 is the project's Keras story (tf_keras 2.16
# everywhere: KerasTuner 1.3.5, Trainer, TFMA, RunInference, serving). Set before TF loads.
TF_ENVIRONMENT = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}

# CSV cells that mean "no value" (read as absent features, as TFX reads an empty cell).
CSV_NULL_VALUES = ("NA", "N/A", "NaN", "nan", "null", "NULL")

DEFAULT_ROOT_ENV = "BEAMLINE_ROOT"
DEFAULT_ROOT = Path("beamline_runs")

# Up to this many input bytes, Beam runs in-process; above, multi-processing. Where the curves
# cross, measured with benchmarks/scale.py (taxi, 2 cores, quiet, 2026-11-26): in-memory won at
# 300k rows / 34 MiB (167 vs 180 s), multi-processing at 1M rows / 114 MiB (334 vs 431 s); the
# linear interpolation of the difference crosses at ~44 MiB. In-memory always used less memory
# (every worker loads TensorFlow): 1.6 vs 4.3 GiB at 300k, 3.3 vs 5.3 GiB at 1M.
IN_MEMORY_MAX_BYTES = 48 * 1024 * 1024
# The memory guard (beamline/runner/memory_guard.py): how often it samples the run's process
# tree, and how much must stay available to the machine/cgroup (the larger of the two) before it
# stops the run itself rather than let the kernel's out-of-memory killer end it without a word.
# Measured in a 2.5 GiB cgroup (taxi 1M rows, in-memory): usage grew ~120 MiB/s, then ~500 MiB
# in under a second when TFX's WriteSplit shuffled, while the in-memory runner's long C calls
# held the GIL and the guard thread sampled only every 1-3 s: the kernel killed the run first.
# A larger reserve and shorter interval narrowed that gap without closing it; `beamline run`
# therefore also has a watchdog process outside the runner's GIL (beamline.runner.supervisor).
MEMORY_SAMPLE_SECONDS = 0.25
# The watchdog's interval: it holds no GIL that a run needs; each sample costs ~2 ms of CPU.
WATCHDOG_SAMPLE_SECONDS = 0.1
MEMORY_RESERVE_FRACTION = 0.10
MEMORY_RESERVE_MIN_BYTES = 512 * 1024 * 1024
# An upper bound for the run's process tree, like `beamline run --memory-limit` (e.g. 6GiB, 80%).
MEMORY_LIMIT_ENV = "BEAMLINE_MEMORY_LIMIT"
# Independent nodes that may run at once. Two cores: more threads only add contention.
DEFAULT_MAX_PARALLEL = 3
# TFX packages module files into wheels at compile time unless this is set; Beamline imports
# module files in place (their content digest is in custom_config, see run_context).
NO_USER_MODULE_WHEELS = "UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES"
# A push is copied to `<serving dir>/<prefix><version>-<pid>/`, then renamed to `<version>/`.
PUSH_INCOMING_PREFIX = ".incoming-"
# TF Serving's REST port, which `beamline serve` also listens on by default.
DEFAULT_REST_PORT = 8501
# A run root's serving directory: <root>/serving/<pipeline>/<version>/ (and its labels files).
SERVING_DIR_NAME = "serving"
# Where `models`, `promote` and a push look for a live server (its REST port), if not 8501.
REST_PORT_ENV = "BEAMLINE_REST_PORT"
# Set by Beamline's runner while it runs nodes: the atomic Pusher then only stages the version
# (`.incoming-*`) and the runner renames it into place once TFX has recorded the push.
DEFERRED_PUSH_ENV = "BEAMLINE_DEFERRED_PUSH"


class PushPolicy:
    """What a blessed push does to the labels (docs/guides/model-versions.md, "Push policy").

    A pipeline module sets `PUSH_POLICY = "canary"`; `beamline run --push-policy` overrides it.
    """

    LIVE = "live"  # the push takes `stable`: unversioned requests get it at once
    CANARY = "canary"  # the push takes `canary`; `stable` stays until promoted
    ALL = (LIVE, CANARY)


DEFAULT_PUSH_POLICY = PushPolicy.LIVE


def rest_port(value: int | None = None) -> int:
    """The REST port of the local server: `value`, else $BEAMLINE_REST_PORT, else 8501."""
    if value is not None:
        return value
    env = os.environ.get(REST_PORT_ENV, "")
    return int(env) if env.isdigit() else DEFAULT_REST_PORT


def apply_tf_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Sets TF_ENVIRONMENT's variables not already set (in os.environ, or `environ`).

    Must run before TensorFlow is first imported. Returns the mapping it updated, so a caller
    building a child process's environment can write `apply_tf_environment(dict(os.environ))`.
    """
    target = os.environ if environ is None else environ
    for key, value in TF_ENVIRONMENT.items():
        target.setdefault(key, value)
    return target


def default_root() -> Path:
    """The run root: $BEAMLINE_ROOT or ./beamline_runs."""
    return Path(os.environ.get(DEFAULT_ROOT_ENV, str(DEFAULT_ROOT)))


def resolve_root(root: Path | str | None) -> Path:
    """The run root as an absolute path (`None`: the default); resolved once, by the CLI."""
    return Path(root if root is not None else default_root()).expanduser().resolve()


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(location: str | None) -> bool:
    """True for `scheme://...` locations (gs://, s3://, sqlite:///, mysql://), not for paths."""
    return bool(location) and _URI.match(location) is not None


def file_safe(text: str) -> str:
    """`text` usable as one file name (run ids hold colons)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


@dataclass(frozen=True)
class RootLayout:
    """Where everything a run writes lives, under one root directory."""

    root: Path

    @property
    def metadata_path(self) -> Path:
        return self.root / "metadata.sqlite"

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    def pipeline_root(self, pipeline_name: str) -> Path:
        return self.pipelines_dir / pipeline_name

    @property
    def serving_root(self) -> Path:
        """Pusher writes `<serving_root>/<pipeline name>/<unix-time version>/`."""
        return self.root / SERVING_DIR_NAME

    def serving_dir(self, pipeline_name: str) -> Path:
        return self.serving_root / pipeline_name

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log_path(self, pipeline_name: str, run_id: str) -> Path:
        """One log file per run, named by the run id (unique per run)."""
        return self.logs_dir / f"{pipeline_name}-{file_safe(run_id)}.log"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def report_path(self, pipeline_name: str, run_id: str) -> Path:
        return self.reports_dir / f"{pipeline_name}-{file_safe(run_id)}.html"

    @property
    def monitoring_dir(self) -> Path:
        """`beamline monitor`'s windows: <pipeline>/<model>-<version>-<first request>-<time>/."""
        return self.root / "monitoring"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def tmp_root(self) -> Path:
        """Per-run temporary directories (TMPDIR of a run) live here, removed after the run."""
        return self.root / "tmp"

    @property
    def objects_dir(self) -> Path:
        """The data and code versions runs read: a content-addressed store (beamline.versions)."""
        return self.root / "objects"


# Where a pipeline's Evaluator finds its baseline model (PipelineSettings.baseline_source), by
# what the orchestrator can run:
# - BASELINE_BEFORE_CANDIDATE: Beamline's resolver, the latest blessed model older than the
#   candidate (TFX's own launchers run any resolver: local runs, Airflow);
# - BASELINE_LATEST_BLESSED: TFX's LatestBlessedModelStrategy resolver, the one blessed-model
#   resolver TFX compiles for Vertex AI Pipelines;
# - BASELINE_SERVING_DIR: a container task copies the newest version pushed to serving_dir
#   (open-source Kubeflow Pipelines runs no resolver).
BASELINE_BEFORE_CANDIDATE = "before_candidate"
BASELINE_LATEST_BLESSED = "latest_blessed"
BASELINE_SERVING_DIR = "serving_dir"


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a `create_pipeline()` needs; runner-agnostic (local, Kubeflow, Vertex)."""

    pipeline_name: str
    pipeline_root: str
    data_root: str
    serving_dir: str
    schema_path: str
    # Glob of the CSV files under data_root, relative to it; may hold a TFX span spec
    # ({SPAN}, {YYYY}{MM}{DD}), read with `span` (None: ExampleGen takes the latest span).
    data_pattern: str = "*.csv"
    # What the files under data_root are: "csv", "tfrecord" (tf.Example) or "parquet".
    data_format: str = "csv"
    span: int | None = None
    # The earlier spans of a --span-range, (span, data_pattern filled in), read with `span`.
    extra_spans: tuple[tuple[int, str], ...] = ()
    enable_tuning: bool = True
    # An earlier Tuner's best_hyperparameters directory: the Trainer reuses it (through an
    # Importer) instead of a new search (beamline.runner.tuned decides when that is safe).
    hyperparameters_uri: str | None = None
    beam_pipeline_args: tuple[str, ...] = ()
    # A tfx/mlmd ConnectionConfig for local runs; None when the orchestrator provides one.
    metadata_connection_config: object | None = None
    # The project's components directory (its module files), absolute; "" when the caller
    # has no project (the bundled examples find theirs inside beamline_components).
    components_dir: str = ""
    # Where the Evaluator's baseline model comes from (the BASELINE_* values above).
    baseline_source: str = BASELINE_BEFORE_CANDIDATE
    # Keep the run's input files and code in the run root's object store, by content, and name
    # them on the run's record (beamline.versions); False keeps nothing and records no version.
    keep_versions: bool = True
    # `beamline run --set NAME=VALUE` pairs, values as typed (int, float, bool, str): TabularSpec
    # fields and model hyperparameters for this run (beamline/experiments/overrides.py). A
    # pipeline that applies them marks its Pipeline with OVERRIDES_APPLIED; the runner refuses
    # overrides that a pipeline would silently ignore.
    overrides: tuple[tuple[str, object], ...] = ()
    # False: no Pusher (a sweep's variants push nothing; `beamline run --push best` then runs
    # the best one again with its Pusher, every other node from the cache).
    push: bool = True
    # `beamline run --experiment NAME`: the Evaluator's baseline is the newest blessed model
    # trained outside this experiment, so its variants are judged against the same model.
    experiment: str | None = None


# The attribute tabular_pipeline sets (True) on a Pipeline built with PipelineSettings.overrides.
OVERRIDES_APPLIED = "beamline_overrides_applied"
