"""A pipeline written for stock TFX (LocalDagRunner), unchanged, run by `beamline run FILE:FUNC`.

The pipeline file and its Trainer module (tests/e2e/stock_tfx/) are copied to a directory outside
the repository, next to the data TFX's penguin tutorial uses. It has SchemaGen (not
ImportSchemaGen), a resolver node, the Trainer's own train/eval args and an Evaluator blessing.
One cold run and one unchanged re-run are shared by every test here.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import CliRun, beamline

pytestmark = pytest.mark.slow

STOCK = Path(__file__).resolve().parent / "stock_tfx"
REPO = Path(__file__).resolve().parents[2]
NAME = "penguin-stock"  # the file's own _pipeline_name


def _write_processed_penguins(out: Path) -> int:
    spec = importlib.util.spec_from_file_location("stock_make_data", STOCK / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_processed_penguins(out)


@dataclass
class StockRuns:
    directory: Path
    root: Path
    first: CliRun
    rerun: CliRun

    def cli(self, *args: str) -> CliRun:
        return beamline(*args, "--root", str(self.root))


@pytest.fixture(scope="session")
def stock_runs(tmp_path_factory) -> StockRuns:
    directory = tmp_path_factory.mktemp("stock_tfx")
    assert REPO not in directory.parents
    for name in ("penguin_stock.py", "penguin_trainer.py"):
        shutil.copyfile(STOCK / name, directory / name)
    assert _write_processed_penguins(directory / "data" / "penguins.csv") > 300
    root = directory / "runs"
    target = f"{directory / 'penguin_stock.py'}:create_pipeline"
    first = beamline("run", target, "--root", str(root))
    assert first.returncode == 0, first.stdout + first.stderr
    rerun = beamline("run", target, "--root", str(root))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    return StockRuns(directory, root, first, rerun)


def test_the_stock_pipeline_runs_through_pusher(stock_runs):
    out = stock_runs.first.stdout
    for node in ("CsvExampleGen", "StatisticsGen", "SchemaGen", "Trainer", "Evaluator", "Pusher"):
        assert f"✓ {node}" in out, out
    assert "model blessed: yes" in out
    [version] = list((stock_runs.root / "serving" / NAME).iterdir())
    assert (version / "saved_model.pb").is_file()
    # Nothing went where the file itself would have put it under LocalDagRunner.
    assert not (stock_runs.directory / "tfx_root").exists()
    assert not (stock_runs.directory / "tfx_metadata").exists()


def test_beamline_says_what_it_supplied_and_overrode(stock_runs):
    out = stock_runs.first.stdout
    supplied = "pipeline_name, pipeline_root, data_root, serving_model_dir, metadata_path"
    assert f"beamline: supplied {supplied} to create_pipeline()" in out
    assert "took module_file from penguin_stock.py's module-level variables" in out
    assert "beamline: overrode Beam args" in out
    assert "beamline: overrode enable_cache True (was False, TFX's default)" in out
    assert "defines no SAMPLE_INSTANCE" in out  # one line, and the run carried on


def test_unchanged_rerun_is_all_cached(stock_runs):
    assert "every node is reused from the cache" in stock_runs.rerun.stdout
    listed = stock_runs.cli("runs", "--json")
    assert listed.returncode == 0, listed.stderr
    rerun, first = json.loads(listed.stdout)[:2]  # newest first
    assert first["pipeline"] == rerun["pipeline"] == NAME
    assert first["state"] == "complete" and first["blessed"] is True and first["pushed_version"]
    # Every component cached; the resolver node resolves (MLMD records it COMPLETE, as TFX does).
    assert "nodes: 0 executed, 6 cached, 7 in all" in stock_runs.rerun.stdout
    assert rerun["cached"] == 6 and rerun["nodes"] == 7 and rerun["failed"] == 0
    assert rerun["executed"] <= 1 and rerun["pushed_version"] is None


def test_why_explains_the_cached_trainer(stock_runs):
    why = stock_runs.cli("why", "Trainer", "--json")
    assert why.returncode == 0, why.stderr
    assert json.loads(why.stdout)["state"] == "CACHED"


def test_lineage_traces_the_pushed_model_to_the_data(stock_runs):
    [version] = [p.name for p in (stock_runs.root / "serving" / NAME).iterdir()]
    traced = stock_runs.cli("lineage", version, "--json")
    assert traced.returncode == 0, traced.stderr
    for node in ("Pusher", "Evaluator", "Trainer", "SchemaGen", "CsvExampleGen"):
        assert node in traced.stdout
    assert "penguins.csv" in traced.stdout
