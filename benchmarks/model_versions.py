"""Benchmark: what a label change costs on the framework side (not a test).

(a) record one LabelChange in a real SQLite MLMD store and rewrite models.config from the
    history (atomic write, fsync), under the labels lock: the part of `beamline promote` after
    its checks, in-process; median of --moves label moves;
(b) with --root ROOT --pipeline P (a run root with at least two pushed, blessed versions): the
    wall time of `beamline promote` processes alternating `--label bench` between the two
    newest versions (start-up, checks, record, write), median of --repeat.
With the server down, "applied" is the file on disk; a running server's own reload interval
comes on top (docs/guides/model-versions.md).

    .venv/bin/python benchmarks/model_versions.py [--moves 50] [--root R --pipeline P --repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def record_and_write(moves: int) -> list[float]:
    import ml_metadata as mlmd

    from beamline.metadata import labels, labels_file
    from beamline.metadata.connection import sqlite_config
    from beamline.settings import RootLayout

    with tempfile.TemporaryDirectory() as tmp:
        layout = RootLayout(Path(tmp))
        store = mlmd.MetadataStore(sqlite_config(layout.metadata_path))
        times = []
        for i in range(moves):
            start = time.perf_counter()
            with labels_file.labels_lock(layout):
                before = labels_file.current_labels(store)
                labels.record_change(store, "bench", "stable", 100 + i % 2, "promote")
                labels_file.apply_change(store, layout, before, rest_port=None)
            times.append(time.perf_counter() - start)
        return times


def cli_promotes(root: Path, pipeline: str, repeat: int) -> list[float]:
    versions = sorted((p.name for p in (root / "serving" / pipeline).iterdir()
                       if p.name.isdigit()), key=int)[-2:]
    if len(versions) < 2:
        raise SystemExit(f"{root}/serving/{pipeline} needs two versions")
    env = {**os.environ, "BEAMLINE_REST_PORT": os.environ.get("BEAMLINE_REST_PORT", "9")}
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "beamline", "promote", pipeline, versions[i % 2], "--label",
             "bench", "--root", str(root)], capture_output=True, text=True, env=env,
        )
        times.append(time.perf_counter() - start)
        if proc.returncode:
            raise SystemExit(proc.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--pipeline", default="penguin")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times = record_and_write(args.moves)
    print(f"(a) record + rewrite models.config: median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms over {len(times)} label moves")
    if args.root:
        cli = cli_promotes(args.root.resolve(), args.pipeline, args.repeat)
        print(f"(b) `beamline promote` process: median {statistics.median(cli):.2f} s over "
              f"{len(cli)} promotes")


if __name__ == "__main__":
    main()
