"""The runner's side of `--beam flink`: names each node's Flink jobs, records their ids on the
node's execution while they run, and turns a failed Flink job into the node's error.

The hook is the node launch itself (beamline.runner.local wraps `tfx_nodes.launch_node`): each
node's Beam pipelines get `--job_name=<run tag>-<node id>`; a thread polls Flink's
/jobs/overview for that name while the node runs and writes the ids it sees to the node's
execution (run_context.FLINK_JOBS) at once, so a run killed with -9 leaves them recorded for
`beamline.flink.orphans`. After the node ends they are written once more (TFX's publish may
have rewritten the execution), and a failed job's root exception becomes the node's error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator

from ml_metadata.proto import metadata_store_pb2

from beamline.flink.jobs import cancel_live, failure_message, job_name, jobs_named, run_tag
from beamline.flink.rest import FlinkRest, Job, RestError
from beamline.metadata import run_context as rc
from beamline.runner.serialized_mlmd import SerializedMetadata, store_lock

_POLL_SECONDS = 2.0
_UNFINISHED = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)


class FlinkJobFailed(RuntimeError):
    """A node's Flink job failed; the message quotes Flink's error and names the job id."""


class FlinkJobs:
    def __init__(self, compiled, pipeline: str, master: str) -> None:
        self._compiled = compiled
        self._pipeline = pipeline
        self.master = master
        self.tag = run_tag(pipeline, compiled.run_id)
        self._rest = FlinkRest(master)

    def node_args(self, node_id: str) -> list[str]:
        return [f"--job_name={job_name(self.tag, node_id)}"]

    @contextlib.contextmanager
    def node(self, node_id: str) -> Iterator[None]:
        name = job_name(self.tag, node_id)
        seen: dict[str, Job] = {}
        stop = threading.Event()

        def poll() -> None:
            if self._refresh(name, seen):
                self._record(node_id, seen, final=False)

        def watch() -> None:
            while not stop.wait(_POLL_SECONDS):
                poll()

        watcher = threading.Thread(target=watch, name=f"flink-jobs-{node_id}", daemon=True)
        watcher.start()
        try:
            yield
        except BaseException as exc:
            stop.set()
            watcher.join()
            self._refresh(name, seen)
            self._record(node_id, seen, final=True)
            failed = [j for j in seen.values() if j.state == "FAILED"]
            with contextlib.suppress(RestError):
                cancel_live(self._rest, list(seen.values()))  # nothing of a failed node runs on
            if failed and isinstance(exc, Exception):
                raise FlinkJobFailed(failure_message(self._rest, failed[0])) from exc
            raise
        stop.set()
        watcher.join()
        self._refresh(name, seen)
        self._record(node_id, seen, final=True)

    def _refresh(self, name: str, seen: dict[str, Job]) -> bool:
        """Updates `seen` from Flink; True when a new job appeared."""
        try:
            jobs = jobs_named(self._rest, name)
        except RestError as exc:
            logging.getLogger("beamline").info("flink jobs of %s not listed: %s", name, exc)
            return False
        new = any(j.jid not in seen for j in jobs)
        seen.update({j.jid: j for j in jobs})
        return new

    def _record(self, node_id: str, seen: dict[str, Job], final: bool) -> None:
        """Writes the ids on the node's execution; while it runs (not `final`), only to an
        execution that has not ended (TFX's publish is never undone)."""
        if not seen:
            return
        value = json.dumps({"master": self.master, "jobs": sorted(seen)})
        try:
            with SerializedMetadata(self._compiled.connection_config) as handle, store_lock():
                execution = _node_execution(handle.store, self._pipeline,
                                            self._compiled.run_id, node_id)
                if execution is None:
                    return
                if not final and execution.last_known_state not in _UNFINISHED:
                    return
                execution.custom_properties[rc.FLINK_JOBS].string_value = value
                handle.store.put_executions([execution])
        except Exception as exc:  # noqa: BLE001 - the node's own outcome matters more
            logging.getLogger("beamline").warning("flink job ids of %s not recorded: %s",
                                                  node_id, exc)


def _node_execution(store, pipeline: str, run_id: str, node_id: str):
    """The latest execution of `node_id` in run `run_id`, or None."""
    run_ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    node_ctx = store.get_context_by_type_and_name(rc.NODE_CONTEXT, f"{pipeline}.{node_id}")
    if run_ctx is None or node_ctx is None:
        return None
    in_run = {e.id for e in store.get_executions_by_context(run_ctx.id)}
    executions = [e for e in store.get_executions_by_context(node_ctx.id) if e.id in in_run]
    return max(executions, key=lambda e: e.id) if executions else None
