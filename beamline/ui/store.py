"""What the UI reads from ML Metadata, read-only: the lineage Graph (cached until the store
changes), label changes and loop triggers (beamline.metadata.records), monitoring windows.

SQLite stores are opened in MLMD's READONLY mode, so no page can change them; a MySQL store is
only ever queried (the UI calls no MLMD put_* method). One lock serialises MLMD calls: a
MetadataStore is not thread-safe and the server answers requests from several threads.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamline.errors import MetadataUnreachable
from beamline.lineage.model import Graph
from beamline.metadata import records
from beamline.metadata.run_context import properties_of

# A MySQL store has no cheap change marker: its Graph is reloaded at most this often.
MYSQL_CACHE_SECONDS = 2.0


@dataclass
class LabelChange:
    execution_id: int
    pipeline: str
    label: str
    from_version: int
    to_version: int
    action: str
    reason: str
    user: str
    time_ms: int


@dataclass
class TriggerRecord:
    execution_id: int
    pipeline: str
    kind: str
    decision: str
    reason: str
    window_first_secs: int
    window_last_secs: int
    monitor_execution_id: int
    run_id: str
    span: int
    time_ms: int


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def open_readonly(root: Path, metadata: str | None):
    """A MetadataStore that can only read (SQLite: READONLY mode; a missing file is an error)."""
    from beamline.metadata.connection import open_existing, open_store
    from beamline.settings import RootLayout

    default = RootLayout(Path(root)).metadata_path
    if metadata is None or metadata.startswith("sqlite:///"):
        from ml_metadata.proto import metadata_store_pb2 as pb

        path = Path(default if metadata is None else metadata[len("sqlite:///") :])
        if not path.is_file():
            raise MetadataUnreachable(
                f"No metadata store at {path}: nothing has run under this root yet. Run a "
                "pipeline first, or start the UI with --root / --metadata pointing at an "
                "existing store."
            )
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
        return open_store(config)
    return open_existing(metadata, default)


class Reader:
    """The UI's one view of the store: a Graph of every pipeline, reloaded when the store
    changes, and the records a Graph does not hold."""

    def __init__(self, root: Path, metadata: str | None) -> None:
        from beamline.metadata.connection import describe
        from beamline.settings import RootLayout

        self.root = Path(root)
        self.metadata = metadata
        self.layout = RootLayout(self.root)
        self.source = describe(metadata, self.layout.metadata_path)
        self.lock = threading.RLock()
        self._store = None
        self._graph: Graph | None = None
        self._marker: Any = None
        self._loaded_at = 0.0

    def _sqlite_path(self) -> Path | None:
        if self.metadata is None:
            return self.layout.metadata_path
        if self.metadata.startswith("sqlite:///"):
            return Path(self.metadata[len("sqlite:///") :])
        return None

    def _change_marker(self) -> Any:
        """Something that differs whenever the store may have changed."""
        path = self._sqlite_path()
        if path is None:
            return int(time.monotonic() / MYSQL_CACHE_SECONDS)
        marker = []
        for name in (str(path), f"{path}-wal", f"{path}-journal"):
            try:
                st = os.stat(name)
                marker.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                marker.append(None)
        return tuple(marker)

    def store(self):
        with self.lock:
            if self._store is None:
                self._store = open_readonly(self.root, self.metadata)
            return self._store

    def graph(self) -> Graph:
        """Every pipeline's runs; a BeamlineError when the store cannot be read."""
        from beamline.lineage.load import load_graph

        with self.lock:
            marker = self._change_marker()
            if self._graph is not None and marker == self._marker:
                return self._graph
            try:
                graph = load_graph(self.store(), None, source=self.source)
            except MetadataUnreachable:
                self._store = None
                raise
            except Exception as exc:  # noqa: BLE001 - MLMD raises bare RuntimeErrors
                self._store = None  # reconnect next time (a restarted MySQL, a replaced file)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise MetadataUnreachable(
                    f"Metadata store {self.source} could not be read: "
                    f"{first or type(exc).__name__}."
                    " Check that the store is reachable and was written by TFX/Beamline."
                ) from None
            self._graph, self._marker, self._loaded_at = graph, marker, time.time()
            return graph

    def _executions_of_type(self, type_name: str) -> list:
        with self.lock:
            try:
                return list(self.store().get_executions_by_type(type_name))
            except Exception:  # noqa: BLE001 - type not registered yet: no such records
                return []

    def label_changes(self, pipeline: str | None = None) -> list[LabelChange]:
        """Label changes (oldest first) as `beamline promote|rollback` and the push record them."""
        found = []
        for ex in self._executions_of_type(records.LABEL_CHANGE_EXECUTION):
            p = properties_of(ex)
            change = LabelChange(
                execution_id=ex.id,
                pipeline=str(p.get(records.LABEL_PIPELINE) or ""),
                label=str(p.get(records.LABEL_NAME) or ""),
                from_version=_int(p.get(records.LABEL_FROM_VERSION), records.NO_VERSION),
                to_version=_int(p.get(records.LABEL_TO_VERSION), records.NO_VERSION),
                action=str(p.get(records.LABEL_ACTION) or ""),
                reason=str(p.get(records.LABEL_REASON) or ""),
                user=str(p.get(records.LABEL_USER) or ""),
                time_ms=_int(p.get(records.LABEL_TIME_MS), ex.create_time_since_epoch),
            )
            if pipeline is None or change.pipeline == pipeline:
                found.append(change)
        return sorted(found, key=lambda c: (c.time_ms, c.execution_id))

    def triggers(self, pipeline: str | None = None) -> list[TriggerRecord]:
        """Loop step decisions (oldest first) as `beamline loop` records them."""
        found = []
        for ex in self._executions_of_type(records.TRIGGER_EXECUTION):
            p = properties_of(ex)
            trigger = TriggerRecord(
                execution_id=ex.id,
                pipeline=str(p.get(records.TRIGGER_PIPELINE) or ""),
                kind=str(p.get(records.TRIGGER_KIND) or ""),
                decision=str(p.get(records.TRIGGER_DECISION) or ""),
                reason=str(p.get(records.TRIGGER_REASON) or ""),
                window_first_secs=_int(p.get(records.TRIGGER_WINDOW_FIRST_SECS)),
                window_last_secs=_int(p.get(records.TRIGGER_WINDOW_LAST_SECS)),
                monitor_execution_id=_int(p.get(records.TRIGGER_MONITOR_EXECUTION_ID), -1),
                run_id=str(p.get(records.TRIGGER_RUN_ID) or ""),
                span=_int(p.get(records.TRIGGER_SPAN), -1),
                time_ms=_int(p.get(records.TRIGGER_TIME_MS), ex.create_time_since_epoch),
            )
            if pipeline is None or trigger.pipeline == pipeline:
                found.append(trigger)
        return sorted(found, key=lambda t: (t.time_ms, t.execution_id))

    def monitoring(self, pipeline: str | None = None) -> list:
        from beamline.monitor.record import monitoring_records

        with self.lock:
            try:
                return monitoring_records(self.store(), pipeline)
            except MetadataUnreachable:
                raise
            except Exception:  # noqa: BLE001 - records of another shape: none shown
                return []

    def run_monitoring(self, graph: Graph, run) -> list:
        from beamline.monitor.report import run_monitoring

        with self.lock:
            try:
                return run_monitoring(self.store(), graph, run)
            except Exception:  # noqa: BLE001 - records of another shape: none shown
                return []


def current_labels(changes: list[LabelChange]) -> dict[str, int]:
    """label -> the version it holds now (labels whose last change set none are left out)."""
    held: dict[str, int] = {}
    for change in changes:
        if change.to_version == records.NO_VERSION:
            held.pop(change.label, None)
        else:
            held[change.label] = change.to_version
    return held
