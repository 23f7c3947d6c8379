"""A store for the UI: one real run of the tiny TFX pipeline (tests/beamline/lineage) plus records
written with the MLMD API: a failed run, a killed run, a live run (this process runs it), label
changes of the pushed version, two monitoring windows and the loop trigger the second caused.

Used by the UI tests' session fixture and by scripts/ui_screenshots.py.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

LINEAGE_TESTS = Path(__file__).resolve().parents[1] / "lineage"
PIPELINE = "tiny"


@dataclass
class Demo:
    root: Path
    data_file: Path
    finished: str  # the real run
    failed: str = ""
    killed: str = ""
    live: str = ""
    live_execution: int = 0
    pushed_version: str = ""
    pushed_model_id: int = 0
    monitor_ids: list[int] = field(default_factory=list)
    trigger_id: int = 0
    evaluated: list[str] = field(default_factory=list)  # runs with TFMA metrics, oldest first
    data_version: str = ""  # the data version the real run kept, as the runner keeps it

    @property
    def db_path(self) -> Path:
        return self.root / "metadata.sqlite"

    def writer_store(self):
        from beamline.metadata.connection import open_store, sqlite_config

        return open_store(sqlite_config(self.db_path))


def run_tiny(base: Path) -> tuple[Path, Path]:
    """One real run of the tiny pipeline under base/root; (root, data file)."""
    sys.path.insert(0, str(LINEAGE_TESTS))
    import lineage_tiny_pipeline as tiny

    from beamline.metadata.connection import connection_config
    from beamline.settings import apply_tf_environment

    apply_tf_environment()
    root, data_dir, module_dir = base / "root", base / "data", base / "module"
    data = tiny.write_data(data_dir)
    tiny.write_module(module_dir, scale=1)
    tiny.run(
        root,
        data_dir,
        module_dir / "trainer_module.py",
        connection_config(None, root / "metadata.sqlite"),
    )
    return root, data


def add_records(root: Path, data_file: Path, tmp_dir: Path) -> Demo:
    """The MLMD records around the real run (see the module docstring)."""
    from beamline.lineage.access import open_graph
    from beamline.metadata import records
    from tests.beamline.ui import writer

    graph = open_graph(root, None)
    finished = graph.sorted_runs()[0].id
    pushed = next(
        a for a in graph.artifacts.values() if a.type == "PushedModel" and a.prop("pushed")
    )
    demo = Demo(root, data_file, finished)
    demo.pushed_version = str(pushed.prop("pushed_version"))
    demo.pushed_model_id = pushed.id
    store = demo.writer_store()
    demo.data_version = keep_versions(store, root, data_file, finished)
    version = int(demo.pushed_version)
    start = writer.now_ms() - 3_600_000
    writer.label_change(
        store,
        PIPELINE,
        records.CANARY_LABEL,
        records.NO_VERSION,
        version,
        records.LabelAction.PUSH,
        pushed.id,
        at_ms=start,
    )
    writer.label_change(
        store,
        PIPELINE,
        records.STABLE_LABEL,
        records.NO_VERSION,
        version,
        records.LabelAction.PROMOTE,
        pushed.id,
        at_ms=start + 600_000,
    )
    writer.label_change(
        store,
        PIPELINE,
        records.CANARY_LABEL,
        version,
        records.NO_VERSION,
        records.LabelAction.PROMOTE,
        None,
        at_ms=start + 600_000,
    )
    stats = next(a for a in graph.artifacts.values() if a.type == "ExampleStatistics")
    demo.evaluated = [
        writer.evaluated_run(store, PIPELINE, tmp_dir / "eval-1", 0.71, blessed=False),
        writer.evaluated_run(store, PIPELINE, tmp_dir / "eval-2", 0.83, blessed=True),
    ]
    demo.failed = writer.failed_run(store, PIPELINE, statistics_uri=stats.uri)
    demo.killed = writer.killed_run(store, PIPELINE)
    secs = start // 1000
    demo.monitor_ids = [
        writer.monitoring_window(store, PIPELINE, version, pushed.id, secs + 1200, 0.04, tmp_dir),
        writer.monitoring_window(store, PIPELINE, version, pushed.id, secs + 2400, 0.30, tmp_dir),
    ]
    demo.live, demo.live_execution = writer.live_run(store, PIPELINE)
    demo.trigger_id = writer.trigger(
        store,
        PIPELINE,
        demo.monitor_ids[1],
        demo.live,
        records.TriggerKind.DRIFT,
        records.Decision.RETRAIN,
        canary_review="canary version 3 is worse than stable version 2 in this window "
        "(error_rate_increase 0.05 > 0.01)",
    )
    return demo


def keep_versions(store, root: Path, data_file: Path, run_id: str) -> str:
    """The real run's data and code kept and named on it as `beamline run` does (the tiny
    pipeline ran through TFX's own runner, which keeps none); returns the data version."""
    from beamline.metadata import run_context as rc
    from beamline.settings import RootLayout
    from beamline.versions.record import keep_run

    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    ctx.custom_properties[rc.PIPELINE].string_value = PIPELINE  # what `data log` groups by
    store.put_contexts([ctx])
    module = root.parent / "module" / "trainer_module.py"
    code = [("components/trainer_module.py", module)] if module.is_file() else []
    kept = keep_run(RootLayout(root), data_file.parent, [data_file], code, name_on=(store, run_id))
    return kept.data.key


# To iterate on the UI tests without re-running TFX: a directory holding a finished tiny run
# (root/ and data/, e.g. from an earlier build), copied afresh for each session.
REUSE_ENV = "BEAMLINE_UI_TEST_TINY_RUN"


def build(base: Path) -> Demo:
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        shutil.copytree(Path(reuse) / "root", base / "root")
        root, data = base / "root", Path(reuse) / "data" / "data.csv"
    else:
        root, data = run_tiny(base)
    (base / "monitoring").mkdir(exist_ok=True)
    return add_records(root, data, base / "monitoring")
