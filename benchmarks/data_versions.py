"""Benchmark: Beamline's kept data versions side by side with DVC on the same files (not a test).

The files: TFX's Chicago taxi table (data.csv, ~15k rows) cut into three spans appended over
time, `span-1/`, `span-2/`, `span-3/` (a third of the rows each, each with the header). Three
data versions: v1 = span 1, v2 = spans 1-2, v3 = spans 1-3 (what `--span-range 1:k` reads).

(a) Versioning per run. Beamline: the step `beamline run` takes before any node (keep_run: the
    selected span files and the project's code, named on the run's MLMD record), in one run root
    for v1, v2, v3, then v3 again unchanged: wall time and bytes added to `objects/`. DVC, in a
    git repository whose `data/` grows the same way: `dvc add data`, `git add`, `git commit`
    per version: wall time (processes, start-up included) and bytes added to `.dvc/cache`.
(b) Store on vs off in real runs (`--real-runs N`, 0 skips): after one full
    `beamline run taxi --data DIR --span-range 1:3`, N runs alternating with and without
    `--no-versions`, all with `--no-fast-cache` (TFX's cache reuses every node, so what differs
    is the versioning step): median wall of each, and the bytes the store holds.
(c) Restore. v3 into an empty directory: `beamline data checkout --run RUN --to DIR` against
    `rm -rf data && dvc checkout` (each a process, start-up included); and v1 while v3 is in the
    workspace: `git checkout v1 -- data.dvc && dvc checkout` (Beamline writes v1 to a new
    directory, as in the first case). Median of --repeat.
(d) Commands a user types, counted from the commands this script runs for each side.

    nice -n 19 .venv/bin/python benchmarks/data_versions.py --dvc /tmp/venv/bin/dvc \\
        [--repeat 5] [--real-runs 3]

DVC is not a dependency of Beamline: install it into an environment of its own, e.g.
`uv venv /tmp/dvc-venv && uv pip install --python /tmp/dvc-venv/bin/python dvc==3.67.1`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPANS = 3


def split_taxi(target: Path) -> list[Path]:
    """The taxi CSV as SPANS span directories under `target`; the span files."""
    from beamline_pipelines.taxi import default_data_root

    lines = (Path(default_data_root()) / "data.csv").read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    size = -(-len(rows) // SPANS)
    files = []
    for k in range(SPANS):
        path = target / f"span-{k + 1}" / "data.csv"
        path.parent.mkdir(parents=True)
        path.write_text(header + "".join(rows[k * size:(k + 1) * size]))
        files.append(path)
    return files


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def timed(args: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


# ---------------------------------------------------------------- Beamline


def beamline_keeps(data_dir: Path, root: Path) -> tuple[list[dict], list[str]]:
    """keep_run as the runner calls it, v1..v3 then v3 again, each as a claimed run of `taxi`;
    rows of (version, seconds, bytes added, objects/ bytes), and the run ids."""
    import ml_metadata as mlmd

    from beamline import project as project_mod
    from beamline import registry
    from beamline.data.spans import SpanRange, resolve_input, span_pattern_of
    from beamline.metadata.connection import sqlite_config
    from beamline.metadata.run_claim import claim_run_id
    from beamline.runner.local import _code_files
    from beamline.settings import RootLayout
    from beamline.versions.record import keep_run

    layout = RootLayout(root)
    root.mkdir(parents=True)
    store = mlmd.MetadataStore(sqlite_config(layout.metadata_path))
    project = project_mod.current()
    module = registry.load_module("taxi", project)
    rows, runs = [], []
    for name, last in (("v1", 1), ("v2", 2), ("v3", 3), ("v3 again", 3)):
        start = time.perf_counter()
        data = resolve_input(data_dir, span_pattern_of(module), None, SpanRange(1, last))
        run_id = claim_run_id(store, "taxi")
        kept = keep_run(layout, data.root, data.files, _code_files(project, module),
                        data.span, [s for s, _ in data.extra_spans], name_on=(store, run_id))
        seconds = time.perf_counter() - start
        rows.append({"version": name, "seconds": seconds,
                     "added": kept.data.added_bytes + kept.code.added_bytes,
                     "store": tree_bytes(layout.objects_dir)})
        runs.append(run_id)
    return rows, runs


def beamline_restore(root: Path, run_id: str, target: Path) -> float:
    return timed([sys.executable, "-m", "beamline", "data", "checkout", "--run", run_id,
                  "--to", str(target), "--root", str(root)])


def real_runs(data_dir: Path, work: Path, n: int) -> dict:
    """One full run, then n runs each with and without the store (TFX's cache for every node)."""
    root = work / "real-root"
    base = [sys.executable, "-m", "beamline", "run", "taxi", "--root", str(root), "--data",
            str(data_dir), "--span-range", f"1:{SPANS}", "--no-fast-cache"]
    first = timed(base)
    on, off = [], []
    for _ in range(n):
        off.append(timed([*base, "--no-versions"]))
        on.append(timed(base))
    return {"first": first, "on": on, "off": off, "store": tree_bytes(root / "objects")}


# ---------------------------------------------------------------- DVC


class Dvc:
    """A git + DVC repository whose `data/` grows one span at a time; every command it runs is
    one a user would type, counted."""

    def __init__(self, dvc: str, repo: Path) -> None:
        self.dvc, self.repo = dvc, repo
        self.typed: dict[str, int] = {}
        repo.mkdir(parents=True)
        self.env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example",
                    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example",
                    "DVC_NO_ANALYTICS": "1"}

    def run(self, phase: str, *args: str) -> float:
        self.typed[phase] = self.typed.get(phase, 0) + 1
        cmd = [self.dvc, *args[1:]] if args[0] == "dvc" else list(args)
        return timed(cmd, cwd=self.repo, env=self.env)

    def setup(self) -> None:
        self.run("once", "git", "init", "-q")
        self.run("once", "dvc", "init", "-q")
        self.run("once", "git", "commit", "-qm", "dvc init")

    def version(self, name: str, span_files: list[Path]) -> dict:
        for f in span_files:
            target = self.repo / "data" / f.parent.name / f.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
        cache = self.repo / ".dvc" / "cache"
        before = tree_bytes(cache) if cache.exists() else 0
        typed = self.typed.get("per version", 0)
        seconds = self.run("per version", "dvc", "add", "data")
        seconds += self.run("per version", "git", "add", "data.dvc", ".gitignore")
        staged = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=self.repo).returncode
        if staged:  # an unchanged version leaves nothing to commit
            seconds += self.run("per version", "git", "commit", "-qm", name)
            timed(["git", "tag", name], cwd=self.repo, env=self.env)
        return {"version": name, "seconds": seconds, "added": tree_bytes(cache) - before,
                "store": tree_bytes(cache), "typed": self.typed["per version"] - typed}

    def restore_all(self) -> float:
        shutil.rmtree(self.repo / "data")
        return self.run("restore current", "dvc", "checkout")

    def switch_to(self, tag: str) -> float:
        seconds = self.run("restore older", "git", "checkout", tag, "--", "data.dvc")
        seconds += self.run("restore older", "dvc", "checkout")
        self.run("back", "git", "checkout", "HEAD", "--", "data.dvc")
        self.run("back", "dvc", "checkout")
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dvc", required=True, help="the dvc executable (its own venv)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--real-runs", type=int, default=3)
    args = parser.parse_args()
    version = subprocess.run([args.dvc, "--version"], capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="bench-data-versions-") as tmp:
        work = Path(tmp)
        files = split_taxi(work / "data")
        print(f"taxi table in {SPANS} spans: {', '.join(f'{p.stat().st_size:,}' for p in files)}"
              f" bytes; DVC {version.strip()}")

        keeps, runs = beamline_keeps(work / "data", work / "root")
        dvc = Dvc(args.dvc, work / "dvc")
        dvc.setup()
        adds = [dvc.version(f"v{k}", files[:k]) for k in range(1, SPANS + 1)]
        adds.append(dvc.version("v3 again", files))  # nothing changed: DVC has nothing to add
        print("\n(a) versioning per run: seconds, bytes added, store bytes")
        print("  version    Beamline keep_run               DVC add + git add + git commit")
        for b, d in zip(keeps, adds, strict=True):
            print(f"  {b['version']:<9}  {b['seconds']:6.3f} s {b['added']:>10,} "
                  f"{b['store']:>10,}   {d['seconds']:6.3f} s {d['added']:>10,} "
                  f"{d['store']:>10,}")

        if args.real_runs:
            real = real_runs(work / "data", work, args.real_runs)
            on, off = statistics.median(real["on"]), statistics.median(real["off"])
            print(f"\n(b) beamline run taxi --span-range 1:{SPANS}, every node from TFX's cache: "
                  f"store on median {on:.2f} s {[round(x, 2) for x in real['on']]}, off "
                  f"(--no-versions) median {off:.2f} s {[round(x, 2) for x in real['off']]}, "
                  f"on/off {on / off:.3f}; first full run {real['first']:.1f} s; store "
                  f"{real['store']:,} bytes")

        full_b, full_d, switch_b, switch_d = [], [], [], []
        for i in range(args.repeat):
            full_b.append(beamline_restore(work / "root", runs[2], work / f"out-v3-{i}"))
            full_d.append(dvc.restore_all())
            switch_b.append(beamline_restore(work / "root", runs[0], work / f"out-v1-{i}"))
            switch_d.append(dvc.switch_to("v1"))
        med = statistics.median
        print(f"\n(c) restore, median of {args.repeat} (process wall, start-up included):")
        print(f"  v3 ({sum(f.stat().st_size for f in files):,} bytes) into an empty directory: "
              f"Beamline {med(full_b):.3f} s, DVC {med(full_d):.3f} s, "
              f"Beamline/DVC {med(full_b) / med(full_d):.2f}")
        print(f"  v1 (from v3): Beamline (to a new directory) {med(switch_b):.3f} s, DVC (git "
              f"checkout + dvc checkout, in place) {med(switch_d):.3f} s, "
              f"Beamline/DVC {med(switch_b) / med(switch_d):.2f}")

        print("\n(d) commands a user types:")
        print("  Beamline: once 0, per version 0 (each run keeps its data), restore 1 "
              "(beamline data checkout --model/--label/--run ... --to DIR)")
        print(f"  DVC: once {dvc.typed['once']} (git init, dvc init, git commit), per version "
              f"{adds[0]['typed']} (dvc add, git add, git commit; {adds[-1]['typed']} when "
              "nothing changed), restore "
              f"of the current version {dvc.typed['restore current'] // args.repeat} (dvc "
              f"checkout), of an older one {dvc.typed['restore older'] // args.repeat} (git "
              "checkout REV -- data.dvc, dvc checkout), after finding which REV trained it")


if __name__ == "__main__":
    main()
