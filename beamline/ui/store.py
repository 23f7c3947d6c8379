"""What the UI reads from ML Metadata, read-only: the lineage Graph (cached until the store
changes), label changes and loop triggers (beamline.metadata.records), monitoring windows.

SQLite stores are opened in MLMD's READONLY mode, so no page can change them; a MySQL store is
only ever queried (the UI calls no MLMD put_* method). One lock serialises MLMD calls: a
MetadataStore is not thread-safe and the server answers requests from several threads.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from beamline.errors import MetadataUnreachable
from beamline.lineage.model import Graph
from beamline.lineage.runs import RunSummary, summarize
from beamline.loop.triggers import TriggerRecord
from beamline.metadata import records
from beamline.metadata.labels import LabelChange
from beamline.metadata.run_context import RunState

# A MySQL store has no cheap change marker: its Graph is reloaded at most this often.
MYSQL_CACHE_SECONDS = 2.0
# After a load that took T seconds, the next starts no sooner than RELOAD_FACTOR * T later.
RELOAD_FACTOR = 4.0
MAX_RELOAD_WAIT_S = 30.0


def open_readonly(root: Path, metadata: str | None):
    """A MetadataStore that can only read (SQLite: READONLY mode; a missing file is an error)."""
    from beamline.metadata.connection import no_store, open_existing, open_store, sqlite_path
    from beamline.settings import RootLayout

    default = RootLayout(Path(root)).metadata_path
    path = sqlite_path(metadata, default)
    if path is not None:
        from ml_metadata.proto import metadata_store_pb2 as pb

        if not path.is_file():
            raise no_store(path, metadata)
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
        return open_store(config)
    return open_existing(metadata, default)


class Reader:
    """The UI's one view of the store: a Graph of every pipeline, and the records a Graph does
    not hold.

    The first request loads the Graph; later ones get the last loaded Graph at once, and a
    change of the store starts a reload in the background (at most one at a time, and no sooner
    than RELOAD_FACTOR times the last load's duration after it: a live run writing every few
    seconds costs a large store's UI a bounded share of a core, not a reload per poll). Loads
    and queries use separate connections, so a reload never blocks a page's queries.
    """

    def __init__(self, root: Path, metadata: str | None) -> None:
        from beamline.metadata.connection import describe
        from beamline.settings import RootLayout

        self.root = Path(root)
        self.metadata = metadata
        self.layout = RootLayout(self.root)
        self.source = describe(metadata, self.layout.metadata_path)
        self.lock = threading.RLock()  # the query connection
        self._load_lock = threading.Lock()  # the load connection
        self._state_lock = threading.Lock()  # the fields below
        self._store = None
        self._load_store = None
        self._graph: Graph | None = None
        self._marker: Any = None
        self._reloading = False
        self._next_reload = 0.0
        self._summaries: dict[str, Any] = {}
        # pipeline -> (the labels each version holds, run id -> its experiments-table row)
        self._rows: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.last_load_s = 0.0

    def _sqlite_path(self) -> Path | None:
        from beamline.metadata.connection import sqlite_path

        return sqlite_path(self.metadata, self.layout.metadata_path)

    def _change_marker(self) -> Any:
        """Something that differs whenever the store may have changed."""
        from beamline.experiments.cache import store_marker

        path = self._sqlite_path()
        if path is None:
            return int(time.monotonic() / MYSQL_CACHE_SECONDS)
        return store_marker(path)

    def store(self):
        """The connection for queries (hold `lock` while using it)."""
        with self.lock:
            if self._store is None:
                self._store = open_readonly(self.root, self.metadata)
            return self._store

    def graph(self) -> Graph:
        """Every pipeline's runs; a BeamlineError when the store cannot be read (first load)."""
        marker = self._change_marker()
        with self._state_lock:
            current = self._graph
            if current is not None:
                due = time.monotonic() >= self._next_reload
                if marker != self._marker and due and not self._reloading:
                    self._reloading = True
                    threading.Thread(
                        target=self._background_load, args=(marker,), daemon=True
                    ).start()
                return current
        return self._load(marker)

    def _background_load(self, marker: Any) -> None:
        try:
            self._load(marker)
        except Exception as exc:  # noqa: BLE001 - keep serving the last Graph; say why once
            print(f"beamline ui: reloading {self.source} failed: {exc}", file=sys.stderr)
            with self._state_lock:
                self._reloading = False
                self._next_reload = time.monotonic() + MYSQL_CACHE_SECONDS

    def _load(self, marker: Any) -> Graph:
        from beamline.lineage.load import load_graph

        with self._load_lock:
            start = time.monotonic()
            try:
                if self._load_store is None:
                    self._load_store = open_readonly(self.root, self.metadata)
                graph = load_graph(self._load_store, None, source=self.source)
            except MetadataUnreachable:
                self._load_store = None
                raise
            except Exception as exc:  # noqa: BLE001 - MLMD raises bare RuntimeErrors
                self._load_store = None  # reconnect next time (a restarted MySQL, a new file)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise MetadataUnreachable(
                    f"Metadata store {self.source} could not be read: "
                    f"{first or type(exc).__name__}."
                    " Check that the store is reachable and was written by TFX/Beamline."
                ) from None
            took = time.monotonic() - start
        with self._state_lock:
            self._graph, self._marker, self._summaries, self._rows = graph, marker, {}, {}
            self._reloading = False
            self.last_load_s = took
            self._next_reload = time.monotonic() + min(MAX_RELOAD_WAIT_S, RELOAD_FACTOR * took)
        return graph

    def summaries(self, graph: Graph, pipeline: str | None = None) -> list[RunSummary]:
        """`run_summaries`, oldest first, reusing the summaries of runs that ended (a running
        run's liveness is checked on every call)."""
        with self._state_lock:
            cache = self._summaries if graph is self._graph else {}
        out = []
        for run in graph.sorted_runs(pipeline):
            summary = cache.get(run.id)
            if summary is None:
                summary = summarize(graph, run)
                if summary.state != RunState.RUNNING:
                    cache[run.id] = summary
            out.append(summary)
        return out

    def _pipelines_of(self, context_type: str) -> list[str]:
        with self.lock:
            try:
                return [c.name for c in self.store().get_contexts_by_type(context_type)]
            except Exception:  # noqa: BLE001 - type not registered yet: no such records
                return []

    def _per_pipeline(self, context_type: str, pipeline: str | None, read) -> list:
        """`read(store, name)` for one pipeline, or for every pipeline with such records."""
        found: list = []
        names = [pipeline] if pipeline else self._pipelines_of(context_type)
        for name in names:
            with self.lock:
                try:
                    found += read(self.store(), name)
                except MetadataUnreachable:
                    raise
                except Exception:  # noqa: BLE001 - type not registered yet: no such records
                    continue
        return found

    def label_changes(self, pipeline: str | None = None) -> list[LabelChange]:
        """Label changes (oldest first), read by the model-version commands' own reader."""
        from beamline.metadata.labels import history

        found = self._per_pipeline(records.MODELS_CONTEXT, pipeline, history)
        return sorted(found, key=lambda c: (c.time_ms, c.execution_id))

    def kept_versions(self, pipeline: str, version: str) -> dict | None:
        """The data and code versions model `version` was trained on and the checkout command
        (beamline.versions.log.restore_info); None for a version that is no number."""
        from beamline.versions.log import restore_info
        from beamline.versions.store import ObjectStore

        if not version.isdigit():
            return None
        with self.lock:
            return restore_info(self.store(), pipeline, int(version),
                                ObjectStore(self.layout.objects_dir), self.root, self.metadata)

    def data_version(self, pipeline: str, key: str) -> dict | None:
        """Data version `key` of the pipeline as `beamline data log` shows it
        (beamline.lineage.data_versions); None when no run of the pipeline kept it."""
        from beamline.lineage.data_versions import version_rows
        from beamline.versions.store import ObjectStore

        with self.lock:
            rows = version_rows(self.store(), ObjectStore(self.layout.objects_dir), pipeline,
                                key, self.root, self.metadata)
        return rows[0] if rows else None

    def experiment_rows(self, graph: Graph, pipeline: str) -> list:
        """The rows `beamline experiments PIPELINE` shows (beamline.experiments.table), with the
        labels each pushed version holds now.

        The rows of runs that ended are kept in memory until the Graph or the labels change (a
        page rebuilds only a running run's row), by beamline.experiments.cache's rule: they
        hold each run's and trial's History for the curves, which the run root's row cache
        (rows as `beamline experiments` prints them) does not."""
        from beamline.experiments.cache import reuse_rows
        from beamline.metadata.labels import holders, labels_by_version

        held = labels_by_version(holders(self.label_changes(pipeline)))
        key = sorted((version, tuple(names)) for version, names in held.items())
        with self._state_lock:
            cache: dict[str, Any] = {}
            if graph is self._graph:
                kept_key, kept = self._rows.get(pipeline, (None, {}))
                cache = kept if kept_key == key else {}
                self._rows[pipeline] = (key, cache)
        return reuse_rows(graph, pipeline, held, cache)

    def triggers(self, pipeline: str | None = None) -> list[TriggerRecord]:
        """Loop step decisions (oldest first), read by the loop's own reader."""
        from beamline.loop.triggers import triggers

        found = self._per_pipeline(records.LOOP_CONTEXT, pipeline, triggers)
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
