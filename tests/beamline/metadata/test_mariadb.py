"""The shared store: pipelines writing to MariaDB, concurrently, and lineage read back from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]
TINY = PROJECT / "tests" / "beamline" / "lineage" / "lineage_tiny_pipeline.py"
BEAMLINE = [sys.executable, "-m", "beamline"]
sys.path.insert(0, str(TINY.parent))

import lineage_tiny_pipeline as tiny  # noqa: E402


def beamline_json(db, *args: str):
    out = subprocess.run(
        [*BEAMLINE, *args, "--metadata", db.uri, "--json"],
        env=db.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_bad_password_is_one_line(mariadb, tmp_path):
    env = mariadb.env()
    (tmp_path / "pw").write_text("wrong-password")
    env["BEAMLINE_MYSQL_PASSWORD_FILE"] = str(tmp_path / "pw")
    out = subprocess.run(
        [*BEAMLINE, "runs", "--metadata", mariadb.uri], env=env, capture_output=True, text=True
    )
    assert out.returncode == 5
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be opened" in lines[0] and "wrong-password" not in lines[0]


# Each run's Trainer waits for the other's: the two runs then overlap by construction, however
# the machine schedules them (a bounded wait; a run whose partner never arrives fails).
BARRIER = """
import os, time

def _meet(me, others, directory={directory!r}):
    open(os.path.join(directory, me), "w").close()
    deadline = time.monotonic() + 900
    while not all(os.path.exists(os.path.join(directory, o)) for o in others):
        if time.monotonic() > deadline:
            raise RuntimeError("the other run's Trainer never started")
        time.sleep(0.1)
"""


def _write_meeting_module(module_dir: Path, scale: int, me: str, others: list[str], at: Path):
    path = tiny.write_module(module_dir, scale=scale)
    text = path.read_text(encoding="utf-8").replace(
        "def run_fn(fn_args):\n", f"def run_fn(fn_args):\n    _meet({me!r}, {others!r})\n"
    )
    path.write_text(text + BARRIER.format(directory=str(at)), encoding="utf-8")


@pytest.mark.slow
def test_concurrent_runs_into_one_store(mariadb, tmp_path):
    """Two runs of the same pipeline at once, different data: both complete, lineage separate."""
    procs, dirs = [], []
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    for i in range(2):
        base = tmp_path / f"team{i}"
        tiny.write_data(base / "data", rows=100 + 20 * i, seed=i)
        _write_meeting_module(base / "module", i + 1, f"team{i}", [f"team{1 - i}"], meeting)
        dirs.append(base)
    for base in dirs:
        cmd = [
            sys.executable,
            str(TINY),
            "--root",
            str(base / "root"),
            "--data",
            str(base / "data"),
            "--module-dir",
            str(base / "module"),
            "--metadata",
            mariadb.uri,
        ]
        log = open(base / "run.log", "w")
        procs.append((subprocess.Popen(cmd, env=mariadb.env(), stdout=log, stderr=log), log))
    for proc, log in procs:
        assert proc.wait(timeout=900) == 0, Path(log.name).read_text()[-3000:]
        log.close()

    runs = beamline_json(mariadb, "runs", "--pipeline", "tiny")
    assert len(runs) == 2 and all(r["state"] == "complete" for r in runs)
    assert all(r["executed"] == 6 and r["pushed_version"] for r in runs)
    # The runs overlapped (their Trainers met), and the records say so.
    (a, b) = sorted(runs, key=lambda r: r["start_ms"])
    assert b["start_ms"] < a["end_ms"], "runs did not overlap"

    seen_sources, seen_steps = set(), []
    for run in runs:
        # By path: both runs may push in the same second, i.e. with the same version number.
        lineage = beamline_json(mariadb, "lineage", run["pushed_destination"])
        steps = {s["execution_id"] for s in lineage["steps"]}
        assert {s["run_id"] for s in lineage["steps"]} == {run["run_id"]}
        [source] = lineage["sources"]
        seen_sources.add(source["input_base"])
        seen_steps.append(steps)
        assert lineage["target"]["properties"]["pushed_destination"].startswith(
            str(Path(source["input_base"]).parent / "root")
        )
    assert seen_sources == {str(base / "data") for base in dirs}
    assert not (seen_steps[0] & seen_steps[1])

    # The password is nowhere: not in MLMD's tables, run outputs or logs.
    password = Path(mariadb.password_file).read_text().strip()
    assert password and password not in mariadb.dump()
    for base in dirs:
        for path in base.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert password.encode() not in path.read_bytes(), path


def test_run_with_unreachable_store_fails_before_work(tmp_path, closed_port):
    port = closed_port
    out = subprocess.run(
        [
            *BEAMLINE,
            "run",
            "penguin",
            "--root",
            str(tmp_path / "root"),
            "--no-tune",
            "--metadata",
            f"mysql://beamline@127.0.0.1:{port}/beamline",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 5, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unreachable" in errors[0] and f":{port}" in errors[0]
    assert not (tmp_path / "root" / "pipelines").exists()
    assert "run id" not in out.stdout  # refused before a run was claimed


@pytest.mark.slow
def test_penguin_twice_at_once_on_mariadb(mariadb, tmp_path):
    """The real pipeline, two runs concurrently (original and trimmed data), read back."""
    sys.path.insert(0, str(PROJECT))
    from beamline_pipelines.penguin import default_data_root

    original = Path(default_data_root())
    trimmed = tmp_path / "trimmed" / "penguins.csv"
    trimmed.parent.mkdir()
    lines = original.read_text().splitlines()
    trimmed.write_text("\n".join(lines[: len(lines) - 60]) + "\n")
    procs = []
    for name, data in (("full", original), ("trimmed", trimmed)):
        cmd = [
            *BEAMLINE,
            "run",
            "penguin",
            "--root",
            str(tmp_path / name),
            "--no-tune",
            "--data",
            str(data),
            "--metadata",
            mariadb.uri,
        ]
        log = open(tmp_path / f"{name}.log", "w")
        procs.append((subprocess.Popen(cmd, env=mariadb.env(), stdout=log, stderr=log), log))
    for proc, log in procs:
        assert proc.wait(timeout=1800) == 0, Path(log.name).read_text()[-3000:]
        log.close()

    runs = beamline_json(mariadb, "runs", "--pipeline", "penguin")
    assert len(runs) == 2 and all(r["state"] == "complete" and r["pushed_version"] for r in runs)
    by_data = {}
    for run in runs:
        lineage = beamline_json(mariadb, "lineage", run["pushed_destination"])
        nodes = [s["node"] for s in lineage["steps"]]
        assert nodes[0] == "Pusher" and {"Evaluator", "Trainer", "Transform"} <= set(nodes)
        evaluator = next(s for s in lineage["steps"] if s["node"] == "Evaluator")
        assert evaluator["facts"]["metrics"] and "blessed" in evaluator["facts"]
        [source] = lineage["sources"]
        by_data[source["files"][0]["path"]] = run["run_id"]
    assert set(by_data) == {str(original), str(trimmed)}

    diff = beamline_json(mariadb, "diff", by_data[str(original)], by_data[str(trimmed)])
    assert any(item["changed"] for item in diff["data"])
    assert diff["metrics"].get("Overall")
    report = tmp_path / "report.html"
    data = beamline_json(mariadb, "report", by_data[str(trimmed)], "--out", str(report))
    html = report.read_text()
    assert data["run_id"] == by_data[str(trimmed)] and 'id="metrics-table"' in html
    assert "island=" in html  # per-slice metrics
