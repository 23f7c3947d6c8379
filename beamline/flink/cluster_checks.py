"""Before any node of a `--beam flink` run: can this cluster take the run's Beam jobs?

In order, each failure one paragraph naming the endpoint and the fix (FlinkPreflightFailed,
exit 13): the REST API answers; the cluster has a free slot; the runner jar is present; the
worker pool accepts connections; and a one-element Beam job, submitted exactly as the nodes'
jobs are, finishes within a bounded wait, proving that the pool starts a worker that imports
apache_beam and TFX (a pool whose workers die leaves Flink's job RUNNING for ever: the wait
ends it).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from beamline.beam import flag_value
from beamline.errors import FlinkPreflightFailed
from beamline.flink.cluster import port_answers
from beamline.flink.jobs import cancel_live, failure_message, jobs_named
from beamline.flink.rest import FlinkRest, RestError
from beamline.flink.settings import FLINK_PREFLIGHT_JOB_TIMEOUT_SECONDS

_UP_HINT = ("`beamline flink up` starts the local cluster; for a team's cluster check "
            "--flink-master / $BEAMLINE_FLINK_MASTER")


def _worker_imports(_element):
    """Runs in an SDK worker: what a TFX node's worker needs must import there."""
    import apache_beam
    import tfx

    return f"apache_beam {apache_beam.__version__}, tfx {tfx.__version__}"


def check(beam_args: Sequence[str], timeout: float = FLINK_PREFLIGHT_JOB_TIMEOUT_SECONDS,
          job: bool = True, proven: Path | None = None, pool_identity: str = "") -> str:
    """Raises FlinkPreflightFailed on the first failed check; returns a one-line summary.

    `proven` + `pool_identity` (the local cluster's worker pool, as pid:start time): the
    one-element job is skipped when the file says it passed on that same pool process (a
    submission costs a jar upload and a worker start, ~1-2 min on a loaded 2-core machine),
    and the file is written when it passes."""
    master = flag_value(beam_args, "--flink_master") or ""
    rest = FlinkRest(master, timeout=5)
    try:
        overview = rest.overview()
    except RestError as exc:
        raise FlinkPreflightFailed(
            f"Flink's REST API at {rest.url} does not answer ({exc}), so no Beam node can run "
            f"on it. {_UP_HINT}."
        ) from exc
    free = int(overview.get("slots-available") or 0)
    if free < 1:
        live = [f"{j.jid} ({j.name}, {j.state})" for j in rest.jobs() if j.live]
        raise FlinkPreflightFailed(
            f"The Flink cluster at {rest.url} has no free task slot "
            f"({overview.get('slots-total', 0)} in all, {overview.get('taskmanagers', 0)} "
            f"TaskManager(s)); running jobs: {', '.join(live) or 'none'}. Wait for them, cancel "
            f"one (PATCH {rest.url}/jobs/<id>?mode=cancel), or add a TaskManager "
            "(`beamline flink up` starts a missing one)."
        )
    jar = flag_value(beam_args, "--flink_job_server_jar") or ""
    if jar and "://" not in jar and not Path(jar).is_file():
        raise FlinkPreflightFailed(
            f"The Beam runner jar {jar} (--flink_job_server_jar) does not exist. "
            "`beamline flink fetch` builds it into the cache; or set $BEAMLINE_FLINK_JAR to "
            "a runner jar of your own."
        )
    environment = (flag_value(beam_args, "--environment_type") or "").upper()
    pool = flag_value(beam_args, "--environment_config") or ""
    if environment == "EXTERNAL" and not port_answers(pool, timeout=3):
        raise FlinkPreflightFailed(
            f"The Beam worker pool at {pool} (--environment_config) does not accept "
            "connections, so Flink could not start any SDK worker. Start it: `beamline flink "
            "up` (local), or `python -m beamline.flink.worker_pool --host 0.0.0.0 --port PORT` "
            "beside each TaskManager (a sidecar); or point --flink-worker-pool at a running one."
        )
    summary = (f"Flink {overview.get('flink-version')} at {rest.url}: {free} free slot(s), "
               f"worker pool {pool or environment}")
    if job and proven is not None and pool_identity and _read(proven) == pool_identity:
        summary += ", one-element job passed earlier on this worker pool process"
    elif job:
        took = _one_element_job(rest, beam_args, timeout)
        summary += f", one-element job {took:.0f} s"
        if proven is not None and pool_identity:
            proven.parent.mkdir(parents=True, exist_ok=True)
            proven.write_text(pool_identity)
    return summary


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _one_element_job(rest: FlinkRest, beam_args: Sequence[str], timeout: float) -> float:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    name = f"beamline-preflight-{uuid.uuid4().hex[:10]}"
    args = [a for a in beam_args if not a.startswith("--job_name=")] + [f"--job_name={name}"]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with beam.Pipeline(options=PipelineOptions(args)) as p:
                _ = p | beam.Create([0]) | beam.Map(_worker_imports)
        except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread
            errors.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=run, name="flink-preflight", daemon=True)
    thread.start()
    thread.join(timeout)
    took = time.monotonic() - start
    if thread.is_alive():
        try:
            cancel_live(rest, jobs_named(rest, name))
        except RestError:
            pass
        raise FlinkPreflightFailed(
            f"A one-element Beam job ({name}) on {rest.url} did not finish within "
            f"{timeout:.0f} s: the worker pool at {flag_value(beam_args, '--environment_config')}"
            " did not start a working SDK worker (the pool's own output says why: for the local "
            "cluster, the worker_pool.out log under the Flink cache). Its workers must run a "
            "python with apache_beam and TFX installed; the job was canceled."
        )
    if errors:
        detail = ""
        try:
            failed = [j for j in jobs_named(rest, name) if j.state == "FAILED"]
            if failed:
                detail = " " + failure_message(rest, failed[0])
        except RestError:
            pass
        first = str(errors[0]).strip().splitlines()[:3]
        raise FlinkPreflightFailed(
            f"A one-element Beam job ({name}) failed on {rest.url}: {' '.join(first)}.{detail} "
            "Its SDK worker must import apache_beam and TFX: run the worker pool with the "
            "project's python (`beamline flink up` does)."
        ) from errors[0]
    return took
