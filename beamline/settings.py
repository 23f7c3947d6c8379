"""Typed configuration: every default Beamline uses lives here, nowhere else.

Pure data, no heavy imports. `RunSettings` is what a user controls from the CLI;
`PipelineSettings` is what a `create_pipeline()` receives (paths resolved, Beam args chosen).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Environment variables: TF_USE_LEGACY_KERAS=1 is the project's Keras story (tf_keras 2.16
# everywhere: KerasTuner 1.3.5, Trainer, TFMA, RunInference, serving). Set before TF loads.
TF_ENVIRONMENT = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}

DEFAULT_ROOT_ENV = "BEAMLINE_ROOT"
DEFAULT_ROOT = Path("beamline_runs")

# Below this many input bytes, Beam runs in-process (worker start-up dominates small data).
IN_MEMORY_MAX_BYTES = 64 * 1024 * 1024


def default_root() -> Path:
    """The run root: $BEAMLINE_ROOT or ./beamline_runs."""
    return Path(os.environ.get(DEFAULT_ROOT_ENV, str(DEFAULT_ROOT)))


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
        return self.root / "serving"

    def serving_dir(self, pipeline_name: str) -> Path:
        return self.serving_root / pipeline_name


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
    span: int | None = None
    # The earlier spans of a --span-range, (span, data_pattern filled in), read with `span`.
    extra_spans: tuple[tuple[int, str], ...] = ()
    enable_tuning: bool = True
    beam_pipeline_args: tuple[str, ...] = ()
    # A tfx/mlmd ConnectionConfig for local runs; None when the orchestrator provides one.
    metadata_connection_config: object | None = None
