"""What `--beam flink` runs on: the local cluster by default, a team's cluster when named.

- `--flink-master HOST:PORT` (or `$BEAMLINE_FLINK_MASTER`, or `--beam-arg=--flink_master=...`)
  names a team's cluster; its Beam worker pool comes from `--flink-worker-pool HOST:PORT` (or
  `$BEAMLINE_FLINK_WORKER_POOL`, or `--beam-arg=--environment_config=...`).
- With none of these, the local cluster `beamline flink up` started is used, and its absence is
  a FlinkPreflightFailed saying to run `beamline flink up` first.
- The runner jar is `$BEAMLINE_FLINK_JAR`, `--beam-arg=--flink_job_server_jar=...`, or the
  cache's (built by `beamline flink up` or `beamline flink fetch`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from beamline.beam import FLINK_JAR_ENV, FLINK_MASTER_ENV, FLINK_WORKER_POOL_ENV, flag_value
from beamline.errors import FlinkPreflightFailed
from beamline.flink.cluster import local_cluster
from beamline.flink.home import FlinkHome


@dataclass(frozen=True)
class FlinkTarget:
    master: str
    local: bool  # the cluster `beamline flink up` started
    # The local cluster's worker pool process as "pid:start time" ("" for a team's cluster).
    pool_identity: str = ""
    home: FlinkHome | None = None


def flink_extra(
    extra: Sequence[str], env: Mapping[str, str] | None = None, home: FlinkHome | None = None
) -> tuple[list[str], FlinkTarget]:
    """`extra` (the user's raw Beam args) completed with the cluster's master, worker pool and
    runner jar; raises FlinkPreflightFailed when no cluster is named and none runs locally."""
    env = os.environ if env is None else env
    home = home or FlinkHome.default()
    args = list(extra)
    master = flag_value(args, "--flink_master") or env.get(FLINK_MASTER_ENV)
    if master:
        if flag_value(args, "--flink_master") is None:
            args.append(f"--flink_master={master}")
        pool = env.get(FLINK_WORKER_POOL_ENV)
        if flag_value(args, "--environment_config") is None and pool:
            args.append(f"--environment_config={pool}")
        local = False
        identity = ""
    else:
        state = local_cluster(home)
        if state is None:
            raise FlinkPreflightFailed(
                "The flink profile has no cluster to run on: no local Flink cluster is up "
                f"(none recorded in {home.state_file}) and no --flink-master (or "
                f"${FLINK_MASTER_ENV}) names one. Run `beamline flink up` first, or pass "
                "--flink-master HOST:PORT --flink-worker-pool HOST:PORT for a team's cluster."
            )
        master = state.rest
        identity = ""
        args.append(f"--flink_master={master}")
        if flag_value(args, "--environment_config") is None:
            args.append(f"--environment_config={state.worker_pool}")
        local = True
        pool = state.parts["worker_pool"]
        if flag_value(args, "--environment_config") == state.worker_pool:
            identity = f"{pool.pid}:{pool.started}"
    if flag_value(args, "--flink_job_server_jar") is None:
        args.append(f"--flink_job_server_jar={env.get(FLINK_JAR_ENV) or home.runner_jar}")
    return args, FlinkTarget(master, local, identity, home)


def cli_args(flink_master: str | None, flink_worker_pool: str | None) -> tuple[str, ...]:
    """`beamline run`'s --flink-master / --flink-worker-pool as raw Beam args."""
    out = []
    if flink_master:
        out.append(f"--flink_master={flink_master}")
    if flink_worker_pool:
        out.append(f"--environment_config={flink_worker_pool}")
    return tuple(out)
