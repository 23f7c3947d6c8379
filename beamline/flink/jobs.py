"""The Flink jobs of one Beamline run, found by name on the cluster's REST API.

Every Beam job a node submits is named `<run tag>-<node id>` (`--job_name`, set per node by the
runner), so the jobs of a run, or of one node, are found without any help from Beam: the
supervisor cancels a dead run's live jobs by its tag, and the runner records each node's job ids
on the node's execution (run_context.FLINK_JOBS) as soon as they appear.
"""

from __future__ import annotations

import hashlib
import re

from beamline.flink.rest import FlinkRest, Job, RestError

# Lines of Flink's root exception a failed node's message quotes.
ERROR_LINES = 6


def run_tag(pipeline: str, run_id: str) -> str:
    """A job-name prefix unique to the run (run ids hold colons; names stay readable)."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"beamline-{re.sub(r'[^A-Za-z0-9]+', '-', pipeline).strip('-')}-{digest}"


def job_name(tag: str, node_id: str) -> str:
    return f"{tag}-{re.sub(r'[^A-Za-z0-9]+', '-', node_id).strip('-')}"


def jobs_named(rest: FlinkRest, name: str) -> list[Job]:
    return [j for j in rest.jobs() if j.name == name]


def jobs_of_run(rest: FlinkRest, tag: str) -> list[Job]:
    return [j for j in rest.jobs() if j.name.startswith(tag + "-")]


def cancel_live(rest: FlinkRest, jobs: list[Job]) -> list[str]:
    """Cancels the jobs that still hold slots; returns their ids (errors skipped)."""
    canceled = []
    for job in jobs:
        if not job.live:
            continue
        try:
            rest.cancel(job.jid)
        except RestError:
            continue
        canceled.append(job.jid)
    return canceled


def cancel_run(master: str, tag: str) -> list[str]:
    """Cancels the live jobs of the run tagged `tag` on `master`; never raises."""
    try:
        rest = FlinkRest(master)
        return cancel_live(rest, jobs_of_run(rest, tag))
    except RestError:
        return []


def failure_message(rest: FlinkRest, job: Job) -> str:
    """`Flink job <id> (<name>) FAILED: <first lines of the root exception>`."""
    try:
        trace = rest.root_exception(job.jid)
    except RestError as exc:
        trace = f"(its exceptions could not be read: {exc})"
    lines = [line.rstrip() for line in trace.strip().splitlines() if line.strip()]
    head = "\n    ".join(lines[:ERROR_LINES]) or "(Flink reported no exception)"
    return (f"Flink job {job.jid} ({job.name}) {job.state} on {rest.url}: {head}\n"
            f"  Flink's web UI shows the whole trace: {rest.url}/#/job/completed/{job.jid}")
