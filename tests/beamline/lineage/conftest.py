"""Session fixture: the tiny TFX pipeline run four times into one SQLite MLMD (TFX imported once).

run 1: first run; run 2: nothing changed (all cached); run 3: the data file changed (drifted
rows, a new category: an anomaly against the imported schema); run 4: only the Trainer's module
file changed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lineage_tiny_pipeline as tiny  # noqa: E402


@dataclass
class TinyStore:
    root: Path
    data_dir: Path
    module_dir: Path
    run_ids: list[str]

    @property
    def metadata(self) -> str:
        return f"sqlite:///{self.root / 'metadata.sqlite'}"

    @property
    def db_path(self) -> Path:
        return self.root / "metadata.sqlite"

    def graph(self):
        from beamline.lineage.access import open_graph

        return open_graph(self.root, None)


def run_ids_of(db_path: Path) -> list[str]:
    from beamline.lineage.load import load_graph
    from beamline.metadata.connection import open_store, sqlite_config

    graph = load_graph(open_store(sqlite_config(db_path)))
    return [r.id for r in graph.sorted_runs()]


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> TinyStore:
    from beamline.metadata.connection import connection_config

    base = tmp_path_factory.mktemp("tiny")
    root, data_dir, module_dir = base / "root", base / "data", base / "module"
    tiny.write_data(data_dir)
    tiny.write_module(module_dir, scale=1)
    config = connection_config(None, root / "metadata.sqlite")
    module_file = module_dir / "trainer_module.py"

    tiny.run(root, data_dir, module_file, config)  # 1
    tiny.run(root, data_dir, module_file, config)  # 2: all cached
    tiny.write_data(data_dir, extra=40)  # 3: changed data
    tiny.run(root, data_dir, module_file, config)
    tiny.write_module(module_dir, scale=2)  # 4: changed module code
    tiny.run(root, data_dir, module_file, config)
    store = TinyStore(root, data_dir, module_dir, run_ids_of(root / "metadata.sqlite"))
    assert len(store.run_ids) == 4
    return store
