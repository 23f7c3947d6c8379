"""The memory guard's parts: sizes, cgroup files, the stop decision, and a real process tree.

The whole path (a real run stopped, recorded and cleaned) is in test_chaos.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from beamline.errors import ConfigError
from beamline.runner import memory
from beamline.runner.memory import MemoryBudget, MemorySample, over_budget, parse_size
from beamline.runner.memory_guard import MemoryGuard, advice_for, describe

GIB = 1024**3
MIB = 1024**2


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6GiB", 6 * GIB), ("6G", 6 * 10**9), ("512MiB", 512 * MIB), ("1.5gib", int(1.5 * GIB)),
     ("4000000000", 4 * 10**9), ("50%", 8 * GIB), (" 2 GB ", 2 * 10**9)],
)
def test_sizes_read_like_their_units(text, expected):
    assert parse_size(text, total=16 * GIB) == expected


@pytest.mark.parametrize("text", ["", "lots", "6 parsecs", "-1G", "0", "150%", "0%", "1e9"])
def test_a_bad_size_is_a_config_error_naming_the_flag(text):
    with pytest.raises(ConfigError) as err:
        parse_size(text, total=16 * GIB, source="--memory-limit")
    assert "--memory-limit" in str(err.value)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v1_headroom_counts_inactive_page_cache_as_free(tmp_path):
    base = tmp_path / "memory" / "jobs" / "run"
    _write(base / "memory.limit_in_bytes", str(4 * GIB))
    _write(base / "memory.usage_in_bytes", str(3 * GIB))
    _write(base / "memory.stat", f"cache 9\ntotal_inactive_file {GIB}\n")
    _write(tmp_path / "memory" / "memory.limit_in_bytes", "9223372036854771712")  # no limit
    _write(tmp_path / "memory" / "memory.usage_in_bytes", str(20 * GIB))
    proc = tmp_path / "proc-cgroup"
    proc.write_text("5:cpu:/\n4:memory:/jobs/run\n0::/\n")
    assert memory.cgroup_headroom(tmp_path, proc) == (4 * GIB, 2 * GIB)


def test_cgroup_v2_takes_the_tightest_limit_up_the_tree(tmp_path):
    _write(tmp_path / "cgroup.controllers", "cpu memory\n")
    inner, outer = tmp_path / "a" / "b", tmp_path / "a"
    _write(inner / "memory.max", "max")
    _write(inner / "memory.current", str(GIB))
    _write(outer / "memory.max", str(2 * GIB))
    _write(outer / "memory.current", str(int(1.5 * GIB)))
    _write(outer / "memory.stat", "anon 5\ninactive_file 0\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/a/b\n")
    assert memory.cgroup_headroom(tmp_path, proc) == (2 * GIB, GIB // 2)


def test_a_container_path_missing_from_the_mount_reads_the_mount_root(tmp_path):
    _write(tmp_path / "memory" / "memory.limit_in_bytes", str(8 * GIB))
    _write(tmp_path / "memory" / "memory.usage_in_bytes", str(GIB))
    proc = tmp_path / "proc-cgroup"
    proc.write_text("4:memory:/process_api/0832a50b\n")
    assert memory.cgroup_headroom(tmp_path, proc) == (8 * GIB, 7 * GIB)


def _sample(rss, available, total=16 * GIB, processes=1):
    return MemorySample(tree_rss=rss, processes=processes, available=available, total=total)


def test_the_explicit_limit_stops_the_run_only_once_exceeded():
    budget = MemoryBudget(limit=2 * GIB, reserve=256 * MIB)
    assert over_budget(_sample(2 * GIB, 10 * GIB), budget) is None
    why = over_budget(_sample(2 * GIB + 1, 10 * GIB), budget)
    assert why is not None and "2.00 GiB that --memory-limit allows" in why


def test_low_headroom_stops_the_run_only_when_the_run_holds_most_of_the_memory():
    budget = MemoryBudget(limit=None, reserve=GIB)
    assert over_budget(_sample(12 * GIB, 2 * GIB), budget) is None  # enough left
    why = over_budget(_sample(12 * GIB, GIB // 2), budget)
    assert why is not None and "out-of-memory killer" in why
    # Somebody else holds most of it: the kernel would not pick this run.
    assert over_budget(_sample(2 * GIB, GIB // 2), budget) is None
    in_cgroup = MemorySample(
        tree_rss=2 * GIB, processes=1, available=GIB // 2, total=int(2.5 * GIB),
        whose=memory.MEMORY_CGROUP,
    )
    assert "leaving only 0.50 GiB of its memory cgroup's 2.50 GiB" in over_budget(
        in_cgroup, budget
    )


def test_the_message_names_the_nodes_the_workers_and_what_to_change():
    in_memory = advice_for(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    assert "--beam direct-multi" in in_memory
    multi = advice_for(["--direct_running_mode=multi_processing"])
    assert "--direct_num_workers=1" in multi
    text = describe(_sample(3 * GIB, GIB, processes=3), "used 3 GiB", ["Transform"], multi)
    assert text.startswith(
        "out of memory in node Transform: the run's process and its 2 Beam worker"
    )
    assert "recorded as failed" in text and multi in text
    both = describe(_sample(GIB, GIB), "x", ["StatisticsGen", "Trainer"], in_memory)
    assert "while nodes StatisticsGen and Trainer ran" in both and "worker" not in both


HOG_PARENT = textwrap.dedent(
    """
    import subprocess, sys
    hog = subprocess.Popen([sys.executable, "-c",
        "import time; held = b'x' * (600 << 20); print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    print(hog.stdout.readline().strip(), flush=True)
    print("hog exit", hog.wait(), flush=True)
    """
)


def test_the_guard_sees_a_workers_memory_kills_the_workers_and_reports():
    """A parent with one child that holds 600 MiB, standing in for a runner and a Beam worker:
    the guard samples the parent's tree, stops at the limit, and SIGKILLs the child."""
    parent = subprocess.Popen([sys.executable, "-c", HOG_PARENT], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert parent.stdout.readline().strip() == "held"
        baseline, _ = memory.tree_rss(parent.pid)
        assert baseline > 600 * MIB  # the child's memory counts
        messages: list[str] = []
        budget = MemoryBudget(limit=400 * MIB, reserve=0)
        with MemoryGuard(
            budget, lambda: ["Transform"], messages.append, "advice.", interval=0.05,
            pid=parent.pid,
        ):
            deadline = time.monotonic() + 120  # a hang guard on the condition below
            while not messages and time.monotonic() < deadline:
                time.sleep(0.05)
        assert messages, "the guard never stopped the run"
        assert messages[0].startswith(
            "out of memory in node Transform: the run's process and its 1"
        )
        assert "0.39 GiB that --memory-limit allows" in messages[0]
        assert parent.stdout.readline().strip() == "hog exit -9"
    finally:
        parent.kill()
        parent.wait()


def test_an_oom_kill_elsewhere_is_not_blamed_on_a_small_run():
    """The kernel's oom_kill counter is machine-wide: a SIGKILLed run is reported as the
    kernel's victim only if it could have been chosen (tests/.../test_supervisor.py has the
    real kernel kill in a cgroup)."""
    from beamline.runner.memory import MEMORY_CGROUP, plausible_oom_victim

    gib = 1 << 30
    budget = MemoryBudget(limit=None, reserve=2 * gib)
    small = MemorySample(tree_rss=gib, processes=3, available=16 * gib, total=24 * gib)
    assert not plausible_oom_victim(small, budget)  # 1 GiB of the 8 GiB in use, 16 GiB free
    biggest = MemorySample(tree_rss=5 * gib, processes=3, available=16 * gib, total=24 * gib)
    assert plausible_oom_victim(biggest, budget)  # most of the memory in use was the run's
    short = MemorySample(tree_rss=gib, processes=3, available=3 * gib, total=24 * gib)
    assert plausible_oom_victim(short, budget)  # headroom under twice the reserve
    in_cgroup = MemorySample(tree_rss=50 << 20, processes=1, available=100 << 20,
                             total=384 << 20, whose=MEMORY_CGROUP)
    assert plausible_oom_victim(in_cgroup, budget)  # the run's own cgroup was the bound
    assert plausible_oom_victim(None, budget)  # killed before any sample: the kernel's word


def test_the_procfs_tree_walk_finds_what_psutil_finds():
    """The watchdog's cheap walk (/proc/PID/task/TID/children and statm) sees the same
    processes, grandchildren included, and about the same RSS as psutil's parent-map walk."""
    code = (
        "import subprocess, sys, time; "
        "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) "
        "for _ in range(2)]; print('up', flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "up"
        rss, count = memory.tree_rss(parent.pid)
        expected_rss, expected_count = memory._tree_rss_psutil(parent.pid)
        assert count == expected_count == 3
        assert abs(rss - expected_rss) < 8 * MIB  # sampled a moment apart
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()
    assert memory.tree_rss(parent.pid) == (0, 0)  # gone: nothing to count
