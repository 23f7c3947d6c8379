"""How much memory a run may use and how much it uses: the numbers the memory guard compares.

Readers of /proc and the cgroup files (v1 and v2), a size parser for `--memory-limit`, and the
pure decision `over_budget(sample, budget)`. The kernel's out-of-memory killer acts on what a
cgroup (or the machine) has left, not on one process, so the guard watches both the run's whole
process tree (Beam's worker processes included) and what is still available to it.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError
from beamline.settings import MEMORY_RESERVE_FRACTION, MEMORY_RESERVE_MIN_BYTES

GIB = 1024**3
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*|%)\s*$", re.IGNORECASE)
# cgroup v1 reports "no limit" as a page-aligned number near 2**63.
_NO_LIMIT = 2**60
MACHINE = "this machine's"
MEMORY_CGROUP = "its memory cgroup's"


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


@dataclass(frozen=True)
class MemoryBudget:
    """`limit`: the most the run's process tree may hold (None: no explicit limit).
    `reserve`: stop when less than this is left to the run's cgroup or the machine."""

    limit: int | None
    reserve: int


@dataclass(frozen=True)
class MemorySample:
    tree_rss: int  # the run's process and all its descendants
    processes: int  # how many processes that is
    available: int  # what the cgroup / machine can still give without the OOM killer
    total: int  # the cgroup limit, or the machine's memory
    whose: str = MACHINE  # or MEMORY_CGROUP: which of the two `total` is


def parse_size(text: str, total: int | None = None, source: str = "--memory-limit") -> int:
    """Bytes from "6GiB", "6G", "512MiB", "4000000000" or (with `total`) "80%"."""
    match = _SIZE.match(text or "")
    unit = match.group(2).lower() if match else ""
    if not match or (unit != "%" and unit not in _UNITS):
        raise ConfigError(
            f"{source} {text!r} is not a memory size. Write a number of bytes with an optional "
            "unit (512MiB, 6GiB, 6G) or a percentage of this machine's memory (80%)."
        )
    value = float(match.group(1))
    if unit == "%":
        if not 0 < value <= 100:
            raise ConfigError(
                f"{source} {text!r}: a percentage must be between 0 and 100, e.g. 80%."
            )
        return int((total if total is not None else machine_total()) * value / 100)
    size = int(value * _UNITS[unit])
    if size <= 0:
        raise ConfigError(
            f"{source} {text!r} must be more than zero bytes; give a size such as 6GiB or 80%."
        )
    return size


def _meminfo(proc: Path = Path("/proc/meminfo")) -> dict[str, int]:
    out = {}
    for line in proc.read_text().splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields:
            out[key] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return out


def oom_kill_count(vmstat: Path = Path("/proc/vmstat")) -> int | None:
    """How many processes the kernel's out-of-memory killer has killed since boot, machine-wide
    and in every memory cgroup (Linux >= 4.13); None where the counter is not readable."""
    try:
        for line in vmstat.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def machine_total() -> int:
    return _meminfo()["MemTotal"]


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_dirs(cgroup_root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's memory cgroup directory and its ancestors, innermost first.

    In a container /proc/self/cgroup may name a path the container's mount does not have (the
    mount is already the container's own cgroup): then the mount's root is the cgroup."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    found: list[Path] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and (cgroup_root / "cgroup.controllers").exists():
            base = cgroup_root  # v2, unified
        elif "memory" in controllers.split(",") and (cgroup_root / "memory").is_dir():
            base = cgroup_root / "memory"  # v1
        else:
            continue
        here = base / path.lstrip("/")
        if not here.is_dir():
            here = base
        while True:
            found.append(here)
            if here == base:
                break
            here = here.parent
        break
    return found


def cgroup_headroom(
    cgroup_root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> tuple[int, int] | None:
    """(limit, available) of the tightest memory cgroup around this process, or None.

    Available = limit - (usage - inactive file cache): the kernel reclaims inactive page cache
    before it kills anything, so counting it as used would stop runs that are not in danger."""
    best: tuple[int, int] | None = None
    for directory in _cgroup_dirs(cgroup_root, proc_cgroup):
        if (directory / "memory.max").exists() or (directory / "memory.current").exists():
            limit = _read_int(directory / "memory.max")
            usage = _read_int(directory / "memory.current")
            inactive = _stat_value(directory / "memory.stat", "inactive_file")
        else:
            limit = _read_int(directory / "memory.limit_in_bytes")
            usage = _read_int(directory / "memory.usage_in_bytes")
            inactive = _stat_value(directory / "memory.stat", "total_inactive_file")
        if limit is None or limit >= _NO_LIMIT or usage is None:
            continue
        available = max(0, limit - max(0, usage - inactive))
        if best is None or available < best[1]:
            best = (limit, available)
    return best


def system_headroom() -> tuple[int, int, str]:
    """(total, available, whose) for this process: the machine's, or its cgroup's when
    tighter; `whose` names which, for messages."""
    info = _meminfo()
    total, available = info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    cgroup = cgroup_headroom()
    if cgroup is not None and cgroup[0] < total:
        return cgroup[0], min(available, cgroup[1]), MEMORY_CGROUP
    if cgroup is not None:
        available = min(available, cgroup[1])
    return total, available, MACHINE


def default_reserve(total: int) -> int:
    return max(MEMORY_RESERVE_MIN_BYTES, int(total * MEMORY_RESERVE_FRACTION))


def budget_for(limit_text: str | None, source: str = "--memory-limit") -> MemoryBudget:
    """The run's budget from `--memory-limit` (or $BEAMLINE_MEMORY_LIMIT), if any."""
    total, _, _ = system_headroom()
    limit = parse_size(limit_text, total, source) if limit_text else None
    return MemoryBudget(limit=limit, reserve=default_reserve(total))


def tree_rss(pid: int | None = None) -> tuple[int, int]:
    """(summed RSS, process count) of a process and all its descendants.

    The watchdog calls this ten times a second for a whole run: walking the tree through each
    thread's `children` file and reading `statm` costs about 0.7 ms of CPU per sample, where
    psutil's walk (which reads every process's stat to build a parent map) cost 5.7 ms, 10-18 s
    of CPU per run on a 2-core machine. Kernels without /proc/PID/task/TID/children
    (CONFIG_PROC_CHILDREN) take psutil's walk."""
    root = pid or os.getpid()
    if not _proc_children_readable():
        return _tree_rss_psutil(root)
    procs = [root]
    index = 0
    while index < len(procs):
        procs.extend(_children(procs[index]))
        index += 1
    total = 0
    counted = 0
    for proc in procs:
        rss = _rss(proc)
        if rss is not None:  # None: ended between listing and reading
            total += rss
            counted += 1
    return total, counted


@functools.lru_cache(maxsize=1)
def _proc_children_readable() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as f:
                found.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):
            pass  # the thread or process ended meanwhile
    return found


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _page_size()
    except (OSError, ValueError, IndexError):
        return None


@functools.lru_cache(maxsize=1)
def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def _tree_rss_psutil(pid: int) -> tuple[int, int]:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass  # ended between listing and reading
    return total, len(procs)


def take_sample(pid: int | None = None) -> MemorySample:
    rss, count = tree_rss(pid)
    total, available, whose = system_headroom()
    return MemorySample(
        tree_rss=rss, processes=count, available=available, total=total, whose=whose
    )


def plausible_oom_victim(sample: MemorySample | None, budget: MemoryBudget) -> bool:
    """Whether the kernel's out-of-memory killer could have chosen this run, given the last
    sample before it died. The kernel's counter is machine-wide: an OOM kill in another job's
    cgroup, while this run was killed by someone's `kill -9`, must not be reported as this run
    running out of memory. Plausible: no sample yet (cannot tell), the run's own cgroup is the
    tighter bound, the run held at least half the memory in use, or headroom was short."""
    if sample is None or sample.whose == MEMORY_CGROUP:
        return True
    in_use = max(0, sample.total - sample.available)
    return sample.tree_rss * 2 >= in_use or sample.available < 2 * budget.reserve


def over_budget(sample: MemorySample, budget: MemoryBudget) -> str | None:
    """Why the run must stop now (one clause), or None to let it go on.

    Low headroom alone does not stop the run when most of the memory in use is somebody
    else's: then the kernel's choice would not be this run."""
    if budget.limit is not None and sample.tree_rss > budget.limit:
        return (
            f"used {gib(sample.tree_rss)}, over the {gib(budget.limit)} that --memory-limit "
            "allows"
        )
    in_use = max(0, sample.total - sample.available)
    if sample.available < budget.reserve and sample.tree_rss * 2 >= in_use:
        return (
            f"used {gib(sample.tree_rss)}, leaving only {gib(sample.available)} of "
            f"{sample.whose} {gib(sample.total)} (the kernel's out-of-memory killer was next)"
        )
    return None
