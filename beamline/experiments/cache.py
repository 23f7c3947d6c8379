"""The experiments table's rows of ended runs, kept between commands: one SQLite file in the run
root (ROW_CACHE_FILE), shared by every `beamline experiments` process; and the rule the UI's
in-memory rows follow (`reusable`).

A run's row is built from MLMD and the files the run left, which stop changing when the run
ends; only its labels move (they are applied to kept rows on every answer). So a row is kept
when its run's context records an ended state (run_context.STATE, anything but running), under
a key of that context's id, creation and last-update times: a run that changes state again, or a
store deleted and written anew, has another key, and its row is built again. A running run's row
is built on every answer (its runner may die). Rows of runs with no recorded state (stock TFX,
other orchestrators) are reused only while the store file is unchanged.

Answering: when the SQLite store file is unchanged (mtime, size, inode, and those of its -wal
and -journal) since the last answer for the pipeline, the rows come from the cache alone (no
MLMD, no lineage Graph); otherwise the run contexts and label changes are read (a few queries),
and only the rows missing from the cache are built: from those runs' own records
(beamline.lineage.load.load_runs) when they are few, else from a Graph of the pipeline.

What a kept row does not follow: a run's files (TFMA metrics, histories, trial records) edited
or deleted after it ended; delete ROW_CACHE_FILE to build every row again.

Every row is checked against this code (a digest of the modules that make rows), the store
(its description) and the format; anything unreadable, foreign or of another format is ignored
and the file written anew. The cache never decides a row's contents: a miss builds the row as
if there were no cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline.metadata.run_context import RunState

ROW_CACHE_FILE = "experiments-cache.sqlite"
FORMAT = "beamline-experiments-rows/4"
BUSY_TIMEOUT_S = 2.0
# Up to this many rows to build, only their runs are read (beamline.lineage.load.load_runs);
# more (a first answer), the pipeline's whole Graph, which costs less than that many runs' reads.
PARTIAL_LOAD_MAX = 50
# The modules a row's contents come from: an edit of any of them drops every kept row.
ROW_MODULES = ("experiments", "lineage", "metrics.py", "timefmt.py", "metadata/run_context.py")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    pipeline TEXT NOT NULL, run TEXT NOT NULL, stamp TEXT NOT NULL, durable INTEGER NOT NULL,
    head TEXT NOT NULL, children TEXT NOT NULL, body TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (pipeline, run)
);
CREATE TABLE IF NOT EXISTS answers (
    pipeline TEXT PRIMARY KEY, marker TEXT NOT NULL, runs TEXT NOT NULL, held TEXT NOT NULL
);
"""
JSON_INDENT = 2


def reusable(row) -> bool:
    """Whether a built row may be kept for later answers: its run is not running."""
    return row.get("state") != RunState.RUNNING


def reuse_rows(graph, pipeline: str, held: Mapping[int, list[str]], kept: dict[str, Any]
               ) -> list:
    """The rows of `pipeline`'s runs in `graph` (oldest first), taken from `kept` (run id ->
    row, for this Graph and these labels) where there, built and added to it otherwise."""
    from beamline.experiments import table

    tuners = None
    out = []
    for run in graph.sorted_runs(pipeline):
        row = kept.get(run.id)
        if row is None:
            if tuners is None:
                tuners = table.tuners_by_uri(graph)
            row = table.run_row(graph, run, held, tuners=tuners)
            if reusable(row):
                kept[run.id] = row
        out.append(row)
    return out


# ---------------------------------------------------------------- identities


def store_marker(path: Path | None) -> str | None:
    """Differs whenever the SQLite store at `path` may have changed (None for MySQL: no cheap
    marker)."""
    if path is None or not path.is_file():
        return None
    marker = []
    for name in (str(path), f"{path}-wal", f"{path}-journal"):
        try:
            st = os.stat(name)
            marker.append([st.st_mtime_ns, st.st_size, st.st_ino])
        except OSError:
            marker.append(None)
    return json.dumps(marker)


_code_key: str | None = None


def code_key() -> str:
    """A digest of the modules rows come from (their sizes and modification times)."""
    global _code_key
    if _code_key is None:
        package = Path(__file__).resolve().parent.parent
        digest = hashlib.sha256(FORMAT.encode())
        for name in ROW_MODULES:
            place = package / name
            files = sorted(place.rglob("*.py")) if place.is_dir() else [place]
            for file in files:
                try:
                    st = file.stat()
                except OSError:
                    continue
                digest.update(f"{file.relative_to(package)}:{st.st_size}:{st.st_mtime_ns};".encode())
        _code_key = digest.hexdigest()[:16]
    return _code_key


@dataclass(frozen=True)
class RunStamp:
    """A run as its context records it: what a kept row is checked against."""

    run_id: str
    stamp: str  # the context's id, creation and last-update times (empty: no context read)
    ended: bool  # its context records an ended state


# ---------------------------------------------------------------- the rows a command gets


@dataclass
class Answer:
    """The rows (oldest first) and, by run id, each row's JSON as `--json` prints it."""

    rows: list
    bodies: dict[str, str] = field(default_factory=dict)

    def json_text(self, rows: list) -> str:
        """`rows` (a selection of self.rows) as `beamline experiments --json` prints them:
        json.dumps([row.to_json() ...], indent=2), byte for byte."""
        if not rows:
            return "[]"
        return "[\n" + ",\n".join(self.bodies[str(r.get("run"))] for r in rows) + "\n]"


def row_body(data: Mapping[str, Any]) -> str:
    """A row's to_json() as an element of the --json list (indented one level)."""
    text = json.dumps(data, indent=JSON_INDENT, default=str)
    pad = " " * JSON_INDENT
    return "\n".join(pad + line for line in text.split("\n"))


class RowCache:
    """The file of kept rows. Every failure to read or write it is a miss, never an error."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = Path(path)
        self.identity = json.dumps([FORMAT, code_key(), source])
        self._db: sqlite3.Connection | None = None

    # ---- the file

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        for attempt in range(2):
            db = None
            try:
                db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S,
                                     isolation_level=None)
                try:
                    found = db.execute(
                        "SELECT value FROM meta WHERE key = 'identity'").fetchone()
                except sqlite3.OperationalError as exc:
                    if "no such" not in str(exc):  # locked, read-only, ...
                        raise
                    found = None  # a new file, or tables not ours
                if found is None or found[0] != self.identity:
                    # Another format, code or store: nothing kept is ours.
                    db.execute("BEGIN IMMEDIATE")
                    for name in ("meta", "rows", "answers"):
                        db.execute(f"DROP TABLE IF EXISTS {name}")
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO meta VALUES ('identity', ?)", (self.identity,))
                    db.execute("COMMIT")
                self._db = db
                return db
            except sqlite3.OperationalError:
                return self._give_up(db)  # locked for long, read-only root: answer without it
            except sqlite3.DatabaseError:
                # Not SQLite at all, or damaged: start a new file (once).
                self._give_up(db)
                if attempt or not self._remove():
                    return None
            except (sqlite3.Error, OSError):
                return self._give_up(db)
        return None

    @staticmethod
    def _give_up(db: sqlite3.Connection | None) -> None:
        if db is not None:
            db.close()

    def _damaged(self, exc: sqlite3.Error) -> None:
        """After a failed read or write: a file found damaged is removed (written anew next
        time); a busy or read-only one is left as it is."""
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.OperationalError):
            self.close()
            self._remove()

    def _remove(self) -> bool:
        try:
            for name in (self.path, Path(f"{self.path}-journal"), Path(f"{self.path}-wal")):
                if name.exists():
                    name.unlink()
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---- reading

    def answer(self, pipeline: str, marker: str | None, children: bool, with_slices: bool
               ) -> Answer | None:
        """The rows of the last answer for `pipeline` when the store is unchanged since
        (`marker`) and every row was kept; None otherwise."""
        if marker is None:
            return None
        db = self._connect()
        if db is None:
            return None
        try:
            found = db.execute("SELECT marker, runs, held FROM answers WHERE pipeline = ?",
                               (pipeline,)).fetchone()
            if found is None or found[0] != marker:
                return None
            run_ids = json.loads(found[1])
            held = {int(k): v for k, v in json.loads(found[2]).items()}
            kept = self._rows(db, pipeline, None)
        except sqlite3.Error as exc:
            self._damaged(exc)
            return None
        except (ValueError, TypeError, AttributeError):
            return None
        if any(run_id not in kept for run_id in run_ids):
            return None
        return self._assemble([kept[r] for r in run_ids], held, children, with_slices)

    def kept(self, pipeline: str, stamps: list[RunStamp]) -> dict[str, tuple]:
        """run id -> its kept row, for the runs whose stamp matches and which ended."""
        db = self._connect()
        if db is None:
            return {}
        try:
            kept = self._rows(db, pipeline, {s.run_id: s.stamp for s in stamps if s.ended})
        except sqlite3.Error as exc:
            self._damaged(exc)
            return {}
        return kept

    @staticmethod
    def _rows(db: sqlite3.Connection, pipeline: str, stamps: dict[str, str] | None
              ) -> dict[str, tuple]:
        out = {}
        query = ("SELECT run, stamp, durable, head, children, body, digest FROM rows "
                 "WHERE pipeline = ?")
        for run_id, stamp, durable, *rest, digest in db.execute(query, (pipeline,)):
            if stamps is None or (durable and stamps.get(run_id) == stamp and stamp):
                if _digest(run_id, stamp, *rest) == digest:  # else: damaged, built again
                    out[run_id] = tuple(rest)
        return out

    @staticmethod
    def _assemble(kept: list[tuple], held: Mapping[int, list[str]], children: bool,
                  with_slices: bool) -> Answer | None:
        """The kept rows with today's labels; None when one does not read back as a row."""
        try:
            return RowCache._read_rows(kept, held, children, with_slices)
        except (ValueError, TypeError, AttributeError, KeyError):
            return None

    @staticmethod
    def _read_rows(kept: list[tuple], held: Mapping[int, list[str]], children: bool,
                   with_slices: bool) -> Answer | None:
        from beamline.experiments.table import RUN, TRIAL, Row, slice_rows
        from beamline.lineage.trials import Search

        answer = Answer([])
        for head, children_text, body in kept:
            values, slices, kept_labels, objective = json.loads(head)
            if not isinstance(values, dict) or "run" not in values:
                return None
            run_id = str(values["run"])
            version = values.get("version")
            labels = list(held.get(int(version), [])) if isinstance(version, str) and \
                version.isdigit() else []
            values["labels"] = labels
            if kept_labels != labels:
                # The row's labels moved since it was kept: its JSON again with these.
                data = json.loads(body)
                data["labels"] = labels
                body = row_body(data)
            row = Row(RUN, values)
            row.slices = slices
            if objective is not None:  # what the text table's note on scores needs
                row.search = Search([], objective=objective[0], direction=objective[1])
            if children:
                row.children = [Row(TRIAL, v) for v in json.loads(children_text)]
                if with_slices:
                    row.children.extend(slice_rows(run_id, row.slices))
            answer.rows.append(row)
            answer.bodies[run_id] = body
        return answer

    # ---- writing

    def keep(self, pipeline: str, built: list[tuple[RunStamp, Any, str]], answered: list[str],
             held: Mapping[int, list[str]], marker: str | None) -> None:
        """Keeps the rows `built` that may be kept, and (with a marker, when every run of the
        answer is kept) the answer's run list: the next unchanged store is answered from here."""
        db = self._connect()
        if db is None:
            return
        try:
            records = []
            for stamp, row, body in built:
                if not reusable(row):
                    continue
                record = _record(row, body)
                if record is not None:
                    records.append((pipeline, stamp.run_id, stamp.stamp, int(stamp.ended),
                                    *record, _digest(stamp.run_id, stamp.stamp, *record)))
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           records)
            db.execute("DELETE FROM answers WHERE pipeline = ?", (pipeline,))
            present = {r for (r,) in db.execute(
                "SELECT run FROM rows WHERE pipeline = ?", (pipeline,))}
            # Rows of runs the store no longer has (a store written anew) go.
            gone = present - set(answered)
            db.executemany("DELETE FROM rows WHERE pipeline = ? AND run = ?",
                           [(pipeline, run_id) for run_id in gone])
            if marker is not None:
                if all(run_id in present for run_id in answered):
                    db.execute("INSERT INTO answers VALUES (?, ?, ?, ?)", (
                        pipeline, marker, json.dumps(answered),
                        json.dumps({str(k): v for k, v in held.items()}),
                    ))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._damaged(exc)


def _digest(*fields: str) -> str:
    """A checksum of a kept row (CRC-32: it catches damage, fast enough to check every read)."""
    crc = 0
    for text in fields:
        crc = zlib.crc32(text.encode("utf-8", "surrogatepass") + b"\0", crc)
    return f"{crc:08x}"


def _record(row, body: str) -> tuple | None:
    """A row as the cache keeps it: ([values, slices, labels, [objective, direction] of its
    search], its trials' values, its --json text); None for a row whose values JSON would not
    give back as they are (then it is built every time)."""
    from beamline.experiments.table import TRIAL

    try:
        values = dict(row.values)
        search = row.search
        objective = [search.objective, search.direction] if search is not None else None
        head = [values, row.slices, values.get("labels") or [], objective]
        head_text = json.dumps(head)
        trials = [c.values for c in row.children if c.kind == TRIAL]
        children_text = json.dumps(trials)
    except (TypeError, ValueError):
        return None
    if json.loads(head_text) != head or json.loads(children_text) != trials:
        return None  # tuples, non-text keys, NaN: not kept (their rows are built every time)
    return head_text, children_text, body


# ---------------------------------------------------------------- the command's answer


def experiment_rows(root: Path, metadata: str | None, pipeline: str, *, children: bool = True,
                    with_slices: bool = False) -> Answer:
    """The rows `beamline experiments PIPELINE` shows, from the cache where it can.

    `children`: the trial (and slice) rows under each run (the text table needs them, --json
    prints them from each row's JSON)."""
    from beamline.metadata.connection import describe, sqlite_path
    from beamline.settings import RootLayout

    layout = RootLayout(Path(root))
    marker = store_marker(sqlite_path(metadata, layout.metadata_path))
    cache = RowCache(layout.root / ROW_CACHE_FILE, describe(metadata, layout.metadata_path))
    try:
        if marker is not None:
            found = cache.answer(pipeline, marker, children, with_slices)
            if found is not None:
                return found
        return _refresh(cache, root, metadata, pipeline, marker, children, with_slices)
    finally:
        cache.close()


def _refresh(cache: RowCache, root: Path, metadata: str | None, pipeline: str,
             marker: str | None, children: bool, with_slices: bool) -> Answer:
    """Reads the run contexts and labels, builds the rows not kept (from a Graph of the
    pipeline, loaded only then) and keeps them."""
    from beamline.metadata.workspace import Workspace

    with Workspace(root, metadata) as workspace:
        return _answer(cache, workspace, pipeline, marker, children, with_slices)


def _answer(cache: RowCache, workspace, pipeline: str, marker: str | None, children: bool,
            with_slices: bool) -> Answer:
    from beamline.experiments import table
    from beamline.lineage.access import graph_of
    from beamline.lineage.load import load_runs, run_stamps
    from beamline.metadata import labels as label_history

    stamps = [RunStamp(*s) for s in run_stamps(workspace.store, pipeline)]
    held = label_history.labels_by_version(
        label_history.holders(label_history.history(workspace.store, pipeline)))
    kept = cache.kept(pipeline, stamps) if stamps else {}
    reread = RowCache._assemble([kept[s.run_id] for s in stamps if s.run_id in kept], held,
                                children, with_slices)
    if reread is None:  # a kept row that does not read back as a row: build them all
        reread = Answer([])
    by_run = {str(r.get("run")): r for r in reread.rows}
    missing = [s for s in stamps if s.run_id not in by_run]
    built: dict[str, Any] = {}
    if missing or not stamps:
        # Few rows to build (a new run, a running one): those runs and what their rows look at
        # beyond them; else, or for other orchestrators' runs, the pipeline's whole Graph.
        few = stamps and len(missing) <= PARTIAL_LOAD_MAX and all(s.stamp for s in missing)
        graph = load_runs(workspace.store, pipeline, [s.run_id for s in missing],
                          workspace.source) if few else None
        if graph is None:
            graph = graph_of(workspace, pipeline)  # no runs at all: its ConfigError
        if not stamps:
            stamps = missing = [RunStamp(r.id, "", False) for r in graph.sorted_runs(pipeline)]
        tuners = table.tuners_by_uri(graph)
        for stamp in missing:
            if stamp.run_id in graph.runs:
                built[stamp.run_id] = table.run_row(graph, graph.runs[stamp.run_id], held,
                                                    with_slices, tuners)
    bodies = {run_id: row_body(row.to_json()) for run_id, row in built.items()}
    cache.keep(pipeline, [(s, built[s.run_id], bodies[s.run_id]) for s in stamps
                          if s.run_id in built],
               [s.run_id for s in stamps], held, marker)
    answer = Answer([])
    for stamp in stamps:
        if stamp.run_id in built:
            row = built[stamp.run_id]
            answer.bodies[stamp.run_id] = bodies[stamp.run_id]
        elif stamp.run_id in by_run:
            row = by_run[stamp.run_id]
            answer.bodies[stamp.run_id] = reread.bodies[stamp.run_id]
        else:
            continue
        answer.rows.append(row)
    return answer
