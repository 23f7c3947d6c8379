"""Benchmark: `beamline loop` steps on the penguin pipeline (not a test).

(a) a cold `beamline run penguin` on span 1, fresh root (with the Tuner, as a first run of a
    team's pipeline; `--no-tune` leaves it out of both (a) and the loop);
(b) loop steps that decide not to retrain (normal traffic, no new span): wall time of
    `beamline loop --once` and where it goes (the step prints its phases);
(c) a loop step that retrains on a new span 2 (shifted body mass, shifted traffic): wall time,
    against (a). With the Tuner, the loop's run reuses (a)'s tuned hyperparameters (the module
    file and schema are unchanged), which is where a recurring retrain saves its time.
Each command is a separate process (imports included: what a cron job waits for), with a real
`beamline serve` logging real requests. Prints the times, the medians of (b) and the ratio c/a.

    .venv/bin/python benchmarks/loop.py [--steps N] [--no-tune] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
FEATURES = ("island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex")
NUMERIC = {"bill_length_mm": float, "bill_depth_mm": float, "flipper_length_mm": int,
           "body_mass_g": int}
SHIFT_G = 700


def _beamline(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "beamline", *args], capture_output=True,
                          text=True, cwd=PROJECT)
    return time.perf_counter() - start, proc


def _check(proc: subprocess.CompletedProcess, codes=(0,)) -> None:
    if proc.returncode not in codes:
        sys.exit(f"{proc.args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")


def _rows() -> tuple[list[str], list[dict[str, str]]]:
    from beamline_pipelines.penguin import default_data_root

    with open(default_data_root(), newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def _instances(rows: list[dict[str, str]], shift: int = 0) -> list[dict]:
    out = []
    for row in rows:
        if any(row[k] == "NA" for k in FEATURES):
            continue
        item = {k: NUMERIC[k](row[k]) if k in NUMERIC else row[k] for k in FEATURES}
        item["body_mass_g"] = min(item["body_mass_g"] + shift, 7000)
        out.append(item)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, instances: list[dict]) -> None:
    for start in range(0, len(instances), 16):
        body = json.dumps({"instances": instances[start : start + 16]}).encode()
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("beamline serve exited")
        try:
            status = json.loads(urllib.request.urlopen(url, timeout=5).read())
            if any(v.get("state") == "AVAILABLE" for v in status["model_version_status"]):
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("beamline serve never became ready")


def _next_second() -> int:
    boundary = math.floor(time.time()) + 1
    time.sleep(max(0.0, boundary - time.time()) + 0.05)
    return boundary


def _iso(secs: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="no-retrain steps to time")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    parser.add_argument("--no-tune", action="store_true", help="no Tuner in (a) nor the loop")
    args = parser.parse_args()
    tune = ("--no-tune",) if args.no_tune else ()
    base = args.keep or Path(tempfile.mkdtemp(prefix="beamline-bench-loop-"))
    root, data, logs = base / "root", base / "data", base / "requests"
    header, rows = _rows()
    _write(data / "span-1" / "penguins.csv", header, rows)

    cold_s, cold = _beamline("run", "penguin", "--data", str(data), "--root", str(root), *tune)
    _check(cold)
    print(f"(a) cold run, span 1{', --no-tune' if tune else ', with the Tuner'}: {cold_s:.1f} s")

    rest = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "beamline", "serve", f"--port={_free_port()}",
         f"--rest_api_port={rest}", "--model_name=penguin",
         f"--model_base_path={root / 'serving' / 'penguin'}", f"--request_log_dir={logs}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=PROJECT,
    )
    loop = ("loop", "penguin", "--data", str(data), "--requests", str(logs), "--once",
            *tune, "--root", str(root))
    try:
        url = f"http://127.0.0.1:{rest}/v1/models/penguin"
        _wait_ready(url, server)
        normal = _instances(rows)
        # The CSV is sorted by species: a window of its first rows would be all Adelie (skew).
        random.Random(0).shuffle(normal)
        step_times, phases = [], []
        # Windows of 150 rows: with 60, sampling noise alone put a feature's JSD against the
        # previous window past 0.10 (an alert, exit 12). Either way no run starts.
        size = min(150, len(normal) // max(args.steps, 1))
        for i in range(args.steps):
            _post(f"{url}:predict", normal[i * size : (i + 1) * size])
            seconds, step = _beamline(*loop, "--until", _iso(_next_second()))
            _check(step, codes=(0, 12))
            step_times.append(seconds)
            phases += re.findall(r"step timings: .*", step.stdout)
            print(f"(b) no-retrain step {i + 1}: {seconds:.1f} s")
        for line in phases:
            print(f"    {line}")
        shifted = [
            dict(r, body_mass_g=str(int(r["body_mass_g"]) + SHIFT_G))
            if r["body_mass_g"] != "NA" else r
            for r in rows
        ]
        _write(data / "span-2" / "penguins.csv", header, shifted)
        _post(f"{url}:predict", _instances(rows, SHIFT_G))
        retrain_s, retrain = _beamline(*loop, "--until", _iso(_next_second()))
        _check(retrain)
        if "blessed and pushed" not in retrain.stdout and "not blessed" not in retrain.stdout:
            sys.exit(f"the step did not retrain:\n{retrain.stdout}")
        reuse = [line for line in retrain.stdout.splitlines() if "hyperparameters" in line]
    finally:
        server.terminate()
        server.wait()
    print(f"(c) loop step retraining on span 2: {retrain_s:.1f} s")
    for line in reuse:
        print(f"    {line.strip()}")
    print(f"median no-retrain step: {statistics.median(step_times):.1f} s (target <= 10 s)")
    print(f"c/a: {retrain_s / cold_s:.2f} (target <= 0.6)")
    print(f"work directory: {base}")


if __name__ == "__main__":
    main()
