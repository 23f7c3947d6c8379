"""Where the Flink cache lives: the runner jar, Flink itself, the cluster's config, logs, pids.

Outside the repository's tracked files: `$BEAMLINE_FLINK_HOME`, else `~/.cache/beamline/flink`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError
from beamline.flink.settings import FLINK_HOME_ENV, FLINK_PORT_ENVS, FLINK_VERSION, FlinkPorts

_PORT_LABELS = {"rest": "REST API", "rpc": "JobManager RPC", "worker_pool": "Beam worker pool"}


def flink_ports() -> FlinkPorts:
    """The local cluster's ports: the defaults, each overridden by its FLINK_PORT_ENVS variable
    (another cluster beside the default one); a variable that is not a port is a ConfigError."""
    values = {}
    for name, var in FLINK_PORT_ENVS.items():
        env = os.environ.get(var, "").strip()
        if not env:
            continue
        if not (env.isdigit() and 0 < int(env) < 65536):
            raise ConfigError(
                f"${var} is {env!r}, not a TCP port: set it to a free port between 1 and "
                f"65535 for the local Flink cluster's {_PORT_LABELS[name]}, or unset it "
                "for the default."
            )
        values[name] = int(env)
    return FlinkPorts(**values)


@dataclass(frozen=True)
class FlinkHome:
    root: Path

    @classmethod
    def default(cls) -> FlinkHome:
        configured = os.environ.get(FLINK_HOME_ENV)
        base = Path(configured) if configured else Path.home() / ".cache" / "beamline" / "flink"
        return cls(base.expanduser().resolve())

    @property
    def runner_build_dir(self) -> Path:
        """The generated Maven project that shades the runner jar."""
        return self.root / "runner-build"

    @property
    def runner_jar(self) -> Path:
        return self.root / "jars" / "beamline-flink-runner.jar"

    @property
    def runner_jar_record(self) -> Path:
        """sha256 and coordinates of the jar, written when it was built."""
        return self.root / "jars" / "beamline-flink-runner.json"

    @property
    def flink_packages(self) -> Path:
        """`pip install --target` folder of apache-flink + apache-flink-libraries."""
        return self.root / f"flink-{FLINK_VERSION}"

    @property
    def flink_dist(self) -> Path:
        """FLINK_HOME: bin/, lib/, conf/ (pyflink's layout)."""
        return self.flink_packages / "pyflink"

    @property
    def cluster_dir(self) -> Path:
        return self.root / "cluster"

    @property
    def conf_dir(self) -> Path:
        return self.cluster_dir / "conf"

    @property
    def log_dir(self) -> Path:
        return self.cluster_dir / "log"

    @property
    def tmp_dir(self) -> Path:
        return self.cluster_dir / "tmp"

    @property
    def preflight_proven(self) -> Path:
        """Which worker pool process (pid:start) last ran the preflight's one-element job."""
        return self.cluster_dir / "preflight-proven"

    @property
    def state_file(self) -> Path:
        """The processes `flink up` started (pid + start time each) and their endpoints."""
        return self.cluster_dir / "state.json"
