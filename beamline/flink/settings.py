"""Apache Flink's configuration: the pins of what `beamline flink fetch` installs, the local
cluster's sizes, host, ports and time limits, and the variables that move them.

Pure data, no heavy imports. How a Beam pipeline reaches a cluster (`--beam flink`: the master,
worker pool and runner jar variables) is a Beam profile's business: beamline/beam.py.
"""

from __future__ import annotations

from dataclasses import dataclass

# Pins: the Beam runner jar is shaded by Maven from these coordinates (Maven Central serves no
# prebuilt Beam job-server jar, nor the 1.18 runner or the 2.59 job service); Flink itself comes
# from PyPI (`apache-flink` wheel + `apache-flink-libraries` sdist, installed into their own
# folder: apache-flink pins an old apache-beam, so never into the project's environment).
FLINK_HOME_ENV = "BEAMLINE_FLINK_HOME"  # the cache: jar, Flink, config, logs, pids
# Names of variables the local cluster gets beyond what it needs (comma-separated).
FLINK_PASS_ENV = "BEAMLINE_FLINK_PASS_ENV"
FLINK_VERSION = "1.19.0"
FLINK_PIP_PACKAGES = ("apache-flink==1.19.0", "apache-flink-libraries==1.19.0")
FLINK_RUNNER_COORDINATES = (
    "org.apache.beam:beam-runners-flink-1.19:2.62.0",
    "org.apache.beam:beam-runners-java-job-service:2.62.0",
    "org.slf4j:slf4j-simple:1.7.36",
)
FLINK_SHADE_PLUGIN_VERSION = "3.6.2"
# Sized for one 2-core machine. Beam batch jobs need more network memory than Flink's default
# ("Insufficient number of network buffers: required 512"); these values passed penguin.
FLINK_SLOTS = 2
FLINK_TASKMANAGER_PROCESS_SIZE = "3000m"
FLINK_JOBMANAGER_PROCESS_SIZE = "1600m"
FLINK_NETWORK_MEMORY = "768mb"
FLINK_SORT_SHUFFLE_MIN_BUFFERS = 64
FLINK_HOST = "127.0.0.1"
FLINK_REST_PORT = 8081
FLINK_RPC_PORT = 6123
FLINK_WORKER_POOL_PORT = 50000
# Another local cluster (a second checkout's, CI's) can run beside the default one with its own
# $BEAMLINE_FLINK_HOME and these ports.
FLINK_PORT_ENVS = {
    "rest": "BEAMLINE_FLINK_REST_PORT",
    "rpc": "BEAMLINE_FLINK_RPC_PORT",
    "worker_pool": "BEAMLINE_FLINK_WORKER_POOL_PORT",
}


@dataclass(frozen=True)
class FlinkPorts:
    """The local Flink cluster's fixed ports (the TaskManager's and the blob server's are
    picked free by Flink). beamline.flink.home.flink_ports() reads FLINK_PORT_ENVS over these."""

    rest: int = FLINK_REST_PORT
    rpc: int = FLINK_RPC_PORT
    worker_pool: int = FLINK_WORKER_POOL_PORT


# How long `flink up` waits for each part to answer, and the preflight's one-element job.
FLINK_START_TIMEOUT_SECONDS = 120.0
FLINK_PREFLIGHT_JOB_TIMEOUT_SECONDS = 180.0
