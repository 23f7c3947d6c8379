"""One shared end-to-end run of the penguin pipeline (plus its re-run), through the real CLI.

Session-scoped: the cold run costs minutes on two cores, so every end-to-end test reads the
same run root. Other test packages can reuse `penguin_run` for a pushed penguin model.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from beamline.settings import RootLayout


@dataclass
class CliRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def run_id(self) -> str:
        match = re.search(r"run id (\S+)", self.stdout)
        assert match, f"no run id in output:\n{self.stdout}\n{self.stderr}"
        return match.group(1)


def beamline(
    *args: str, timeout: int = 1800, env: dict[str, str] | None = None,
    opens: Path | None = None,
) -> CliRun:
    """`beamline ARGS`; with `opens`, each MLMD store it opens is a line there (count_opens.py)."""
    command = [sys.executable, "-m", "beamline"] if opens is None else [
        sys.executable, str(Path(__file__).with_name("count_opens.py")), str(opens)
    ]
    proc = subprocess.run(
        [*command, *args], capture_output=True, text=True,
        timeout=timeout, env=None if env is None else {**os.environ, **env},
    )
    return CliRun(list(args), proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Started:
    """A `beamline run` started in the background: a fixture that needs it alongside other work
    (a Flink run waits on jar uploads and worker start-ups) starts it early; `result()` waits for
    it once and every later reader gets the same, passed, run."""

    root: Path
    args: list[str]
    proc: subprocess.Popen
    _done: CliRun | None = None

    def result(self, timeout: int = 3600) -> CliRun:
        if self._done is None:
            out, err = self.proc.communicate(timeout=timeout)
            self._done = CliRun(self.args, self.proc.returncode, out, err)
        assert self._done.returncode == 0, self._done.stdout + self._done.stderr
        return self._done


@contextlib.contextmanager
def started(root: Path, *args: str) -> Iterator[Started]:
    """`beamline *args --root root` in the background, killed on leaving if nobody waited for
    it; a fixture yields it from inside the `with`."""
    argv = [*args, "--root", str(root)]
    proc = subprocess.Popen([sys.executable, "-m", "beamline", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield Started(root, argv, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@dataclass
class PenguinRuns:
    root: Path
    first: CliRun
    rerun: CliRun  # unchanged, through TFX's own per-node cache (--no-fast-cache)
    fast_rerun: CliRun  # unchanged again, Beamline's fast path (no TensorFlow import)
    tmpdir_left: list[str]  # what the first run left in its private, initially empty $TMPDIR
    opens: Path  # <run>.opens: the stores each re-run opened, one line each (count_opens.py)

    @property
    def layout(self) -> RootLayout:
        return RootLayout(self.root)

    def store(self):
        return open_store(self.root)

    def first_output_uri(self, node: str, key: str) -> str:
        """The first run's output `key` of `node`: other tests add runs (and outputs) to this
        root, so a reader globbing the node's directory would depend on the test order."""
        return run_output_uri(self.root, "penguin", self.first.run_id, node, key)


def open_store(root: Path):
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config

    return mlmd.MetadataStore(sqlite_config(RootLayout(root).metadata_path))


def run_output_uri(root: Path, pipeline: str, run_id: str, node: str, key: str) -> str:
    """The URI of the one artifact `node` output under `key` in run `run_id`, read from MLMD."""
    from ml_metadata.proto import metadata_store_pb2

    store = open_store(root)
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    node_ctx = store.get_context_by_type_and_name("node", f"{pipeline}.{node}")
    assert run_ctx is not None and node_ctx is not None, (run_id, node)
    in_run = {e.id for e in store.get_executions_by_context(run_ctx.id)}
    executions = [e.id for e in store.get_executions_by_context(node_ctx.id) if e.id in in_run]
    ids = {
        event.artifact_id
        for event in store.get_events_by_execution_ids(executions)
        if event.type == metadata_store_pb2.Event.OUTPUT and event.path.steps[0].key == key
    }
    [artifact] = store.get_artifacts_by_id(sorted(ids))
    return artifact.uri


@pytest.fixture(scope="session")
def penguin_run(tmp_path_factory) -> PenguinRuns:
    root = tmp_path_factory.mktemp("penguin_root")
    tmpdir = tmp_path_factory.mktemp("penguin_tmpdir")
    first = beamline("run", "penguin", "--root", str(root), env={"TMPDIR": str(tmpdir)})
    assert first.returncode == 0, first.stdout + first.stderr
    tmpdir_left = sorted(os.listdir(tmpdir))
    opens = tmp_path_factory.mktemp("penguin_opens")
    rerun = beamline("run", "penguin", "--root", str(root), "--no-fast-cache",
                     opens=opens / "rerun.opens")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    fast = beamline("run", "penguin", "--root", str(root), opens=opens / "fast_rerun.opens")
    assert fast.returncode == 0, fast.stdout + fast.stderr
    return PenguinRuns(root, first, rerun, fast, tmpdir_left, opens)


def penguin_rows() -> tuple[list[str], list[dict[str, str]]]:
    """The shipped penguins CSV: header and rows (as csv reads them)."""
    import csv

    from beamline_pipelines.penguin import default_data_root

    with open(default_data_root(), newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]], **dialect) -> Path:
    """`rows` as a CSV file; `dialect`: csv.writer options (lineterminator="\\r\\n", ...)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    encoding = dialect.pop("encoding", "utf-8")
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore", **dialect)
        writer.writeheader()
        writer.writerows(rows)
    return path


@dataclass
class SpanRuns:
    """Runs of the penguin pipeline over a span directory (no tuning, one root).

    span-1 is the shipped CSV as a spreadsheet saves it (UTF-8 BOM, CRLF, trailing blank line);
    span-2, added after two runs, has its species labels shuffled (a degraded new span).
    """

    root: Path
    data: Path
    first: CliRun  # span-1 only: latest span = 1
    unchanged: CliRun  # span-1 again: the fast path
    second: CliRun  # span-2 added: latest span = 2

    def beamline(self, *args: str) -> CliRun:
        return beamline(*args, "--root", str(self.root))


@pytest.fixture(scope="session")
def span_runs(tmp_path_factory) -> SpanRuns:
    import random

    base = tmp_path_factory.mktemp("spans")
    root, data = base / "root", base / "data"
    header, rows = penguin_rows()
    exported = write_csv(
        data / "span-1" / "penguins.csv", header, rows, lineterminator="\r\n", encoding="utf-8-sig"
    )
    with open(exported, "a", newline="") as f:
        f.write("\r\n")
    run = ("run", "penguin", "--data", str(data), "--root", str(root), "--no-tune")
    first = beamline(*run)
    assert first.returncode == 0, first.stdout + first.stderr
    unchanged = beamline(*run)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    labels = [r["species"] for r in rows]
    random.Random(7).shuffle(labels)
    shuffled = [{**r, "species": label} for r, label in zip(rows, labels, strict=True)]
    write_csv(data / "span-2" / "penguins.csv", header, shuffled)
    second = beamline(*run)
    return SpanRuns(root, data, first, unchanged, second)
