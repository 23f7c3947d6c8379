"""The run's liveness on its `pipeline_run` context: who runs it, that it still does, and where.

The run's context was created when its id was claimed (beamline.metadata.run_claim). Before
the first node starts, the runner creates the other contexts (as TFX's launcher would) and
stamps its pid, host and process start time, state `running`, the number of nodes and the log
path. Every node start and end, and every HEARTBEAT_SECONDS in between, it refreshes the
heartbeat and the nodes running now. A reader (`beamline runs`, `report`, `diff`, `why`) can
then tell a live run from one whose runner was killed, and name the node it died in.
"""

from __future__ import annotations

import logging
import threading

from beamline.metadata import run_context as rc
from beamline.metadata.liveness import HEARTBEAT_SECONDS, now_ms
from beamline.metadata.run_claim import stamp_runner

_log = logging.getLogger("beamline")


class Heartbeat:
    def __init__(self, compiled, pipeline: str, log_path: str, interval: float = HEARTBEAT_SECONDS):
        from beamline.runner.serialized_mlmd import SerializedMetadata

        self._compiled = compiled
        self._pipeline = pipeline
        self._log_path = log_path
        self._interval = interval
        self._handle = SerializedMetadata(compiled.connection_config)
        self._running: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context_id: int | None = None

    def __enter__(self) -> Heartbeat:
        from tfx.orchestration.portable.mlmd import context_lib

        self._handle.__enter__()
        first = next(iter(self._compiled.nodes.values()))
        context_lib.prepare_contexts(self._handle, first.contexts)
        ctx = self._handle.store.get_context_by_type_and_name(
            rc.RUN_CONTEXT, self._compiled.run_id
        )
        self._context_id = ctx.id
        stamp_runner(ctx, self._pipeline)
        ctx.custom_properties[rc.NODES_TOTAL].int_value = len(self._compiled.nodes)
        ctx.custom_properties[rc.LOG_PATH].string_value = self._log_path
        self._write(ctx)
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def node_started(self, node_id: str) -> None:
        with self._lock:
            self._running.append(node_id)
        self.beat()

    def node_ended(self, node_id: str) -> None:
        with self._lock:
            if node_id in self._running:
                self._running.remove(node_id)
        self.beat()

    def running_nodes(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def beat(self) -> None:
        try:
            [ctx] = self._handle.store.get_contexts_by_id([self._context_id])
            self._write(ctx)
        except Exception as exc:  # noqa: BLE001 - a missed beat must never fail the run
            _log.warning("heartbeat not recorded: %s", exc)

    def _write(self, ctx) -> None:
        with self._lock:
            running = ",".join(self._running)
        ctx.custom_properties[rc.HEARTBEAT_MS].string_value = str(now_ms())
        ctx.custom_properties[rc.CURRENT_NODES].string_value = running
        self._handle.store.put_contexts([ctx])

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            self.beat()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._handle.__exit__(*exc)
