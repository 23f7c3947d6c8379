"""The `direct-multi` Beam profile (what `auto` picks for inputs over 48 MiB), forced on the
shipped penguin data, against the session's in-memory run (`penguin_run`: same data, same
flags but the profile): the same splits and row counts, the same statistics, the same blessing.
The run also takes `--max-parallel 1`, so no two nodes ever run at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import CliRun, beamline, run_output_uri


@dataclass
class ProfileRun:
    root: Path
    run: CliRun


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory) -> ProfileRun:
    root = tmp_path_factory.mktemp("direct_multi_root")
    run = beamline(
        "run", "penguin", "--root", str(root), "--beam", "direct-multi", "--max-parallel", "1"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return ProfileRun(root, run)


def _statistics(root: Path, run: CliRun) -> dict[str, tuple[int, dict]]:
    """split -> (examples, {feature: exact summary}) of the run's StatisticsGen output."""
    from beamline.lineage import payloads

    uri = run_output_uri(root, "penguin", run.run_id, "StatisticsGen", "statistics")
    out = {}
    for split, stats in payloads.load_statistics(uri).items():
        examples, features = payloads.feature_summaries(stats)
        out[split] = (
            examples,
            # Histograms are approximate (quantile sketches merge per worker); the rest is exact.
            {f.name: (f.type, f.count, f.missing, f.unique, f.top, f.zeros) for f in features},
            {f.name: (f.mean, f.std, f.min, f.max) for f in features if f.mean is not None},
        )
    return out


def _record(root: Path, run: CliRun) -> dict:
    import json

    runs = beamline("runs", "--root", str(root), "--json", "--limit", "0")
    assert runs.returncode == 0, runs.stderr
    [record] = [r for r in json.loads(runs.stdout) if r["run_id"] == run.run_id]
    return record


def _most_running_at_once(stdout: str) -> int:
    """From the run's progress lines (`▸ Node running`, then `✓ Node executed  1.2s`...)."""
    running: set[str] = set()
    most = 0
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "running":
            running.add(parts[1])
            most = max(most, len(running))
        elif len(parts) >= 3 and parts[1] in running:
            running.discard(parts[1])
    return most


def test_direct_multi_splits_and_counts_rows_as_in_memory(multi_run, penguin_run):
    multi, memory = _statistics(multi_run.root, multi_run.run), _statistics(
        penguin_run.root, penguin_run.first
    )
    assert set(multi) == set(memory) == {"train", "eval"}
    for split in multi:
        assert multi[split][0] == memory[split][0] > 0, split
        assert multi[split][1] == memory[split][1], split


def test_direct_multi_statistics_match_in_memory(multi_run, penguin_run):
    multi, memory = _statistics(multi_run.root, multi_run.run), _statistics(
        penguin_run.root, penguin_run.first
    )
    for split in multi:
        assert set(multi[split][2]) == set(memory[split][2]), split
        assert memory[split][2], "no numeric feature to compare"
        for feature, moments in memory[split][2].items():
            assert multi[split][2][feature] == pytest.approx(moments, rel=1e-9), (split, feature)


def test_direct_multi_blesses_and_pushes_as_in_memory(multi_run, penguin_run):
    multi, memory = _record(multi_run.root, multi_run.run), _record(
        penguin_run.root, penguin_run.first
    )
    assert multi["state"] == memory["state"] == "complete"
    assert multi["blessed"] == memory["blessed"]
    assert (multi["pushed_version"] is None) == (memory["pushed_version"] is None)
    assert multi["executed"] == memory["executed"]


def test_the_run_used_the_multi_processing_runner(multi_run, penguin_run):
    [multi] = [line for line in multi_run.run.stdout.splitlines() if "beam args" in line]
    assert "--direct_running_mode=multi_processing" in multi.split(), multi
    [memory] = [line for line in penguin_run.first.stdout.splitlines() if "beam args" in line]
    assert "--direct_running_mode=in_memory" in memory.split(), memory


def test_max_parallel_one_runs_one_node_at_a_time(multi_run, penguin_run):
    assert _most_running_at_once(multi_run.run.stdout) == 1, multi_run.run.stdout
    # The contrast: the same DAG at the default --max-parallel runs nodes side by side.
    assert _most_running_at_once(penguin_run.first.stdout) >= 2, penguin_run.first.stdout
