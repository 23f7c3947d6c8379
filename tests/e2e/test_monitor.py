"""Request logging and `beamline monitor` on the session's pushed penguin model.

The real server logs real traffic: held-out rows (the eval split the model never trained on),
then shifted rows (body mass +40%, half from an island the model never saw), then a request to
a version this store never pushed. `monitor` must pass the first window, flag the second naming
the moved features, and refuse the third. The monitoring runs write to a private copy of the
session's metadata store, so other tests see the run as it was.
"""

from __future__ import annotations

import glob
import json
import math
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import tensorflow as tf

from beamline_serving.request_log.reader import log_files
from tests.e2e.conftest import CliRun, beamline
from tests.serving.support import running_server

FEATURES = ("island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex")
UNKNOWN_VERSION = 123


def _held_out_rows(penguin_run) -> list[dict]:
    """The first run's eval split's complete rows, as JSON instances (no label, no unused
    `year`)."""
    pattern = f"{penguin_run.first_output_uri('CsvExampleGen', 'examples')}/Split-eval/*"
    rows = []
    for raw in tf.data.TFRecordDataset(sorted(glob.glob(pattern)), compression_type="GZIP"):
        example = tf.train.Example.FromString(raw.numpy())
        row = {}
        for name in FEATURES:
            feature = example.features.feature.get(name)
            kind = feature.WhichOneof("kind") if feature is not None else None
            values = list(getattr(feature, kind).value) if kind else []
            if values:
                value = values[0]
                row[name] = value.decode() if isinstance(value, bytes) else value
        if len(row) == len(FEATURES):
            rows.append(row)
    return rows


def _shifted(rows: list[dict]) -> list[dict]:
    shifted = []
    for i, row in enumerate(rows):
        row = dict(row, body_mass_g=int(row["body_mass_g"] * 1.4))
        if i % 2 == 0:
            row["island"] = "Anvers"  # never in the training data
        shifted.append(row)
    return shifted


def _next_second() -> int:
    """Waits into the next whole second and returns it: a window boundary no record straddles."""
    boundary = math.floor(time.time()) + 1
    while time.time() < boundary + 0.05:  # the condition is the clock itself
        time.sleep(0.01)
    return boundary


def _iso(secs: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))


@dataclass
class Monitored:
    root: Path
    logs: Path
    metadata: str
    version: str
    boundaries: tuple[int, int]
    sent: tuple[int, int]
    held_out: CliRun
    shifted: CliRun
    trained_by: str  # the run that pushed `version` (other tests add later runs to its store)

    def store_args(self) -> list[str]:
        return ["--root", str(self.root), "--metadata", self.metadata]

    def executions(self) -> int:
        path = self.metadata[len("sqlite:///") :]
        with sqlite3.connect(path) as db:
            return db.execute("select count(*) from Execution").fetchone()[0]


@pytest.fixture(scope="module")
def monitored(penguin_run, tmp_path_factory) -> Monitored:
    root = tmp_path_factory.mktemp("monitor_root")
    shutil.copy(penguin_run.layout.metadata_path, root / "metadata.sqlite")
    metadata = f"sqlite:///{root / 'metadata.sqlite'}"
    serving_dir = penguin_run.layout.serving_dir("penguin")
    [version] = [p.name for p in serving_dir.iterdir() if p.name.isdigit()]
    # The pushed version, plus the same model as a version this store never pushed.
    models = root / "models" / "penguin"
    models.mkdir(parents=True)
    (models / version).symlink_to(serving_dir / version)
    (models / str(UNKNOWN_VERSION)).symlink_to(serving_dir / version)
    logs = root / "requests"
    config = root / "models.config"
    config.write_text(
        f"model_config_list {{ config {{ name: 'penguin' base_path: '{models}' "
        "model_platform: 'tensorflow' model_version_policy { all {} } } }"
    )
    held_out = _held_out_rows(penguin_run)
    shifted = _shifted(held_out)
    with running_server(
        ready_model="penguin",
        args=[f"--model_config_file={config}", f"--request_log_dir={logs}"],
        log_dir=root,
    ) as server:
        url = f"{server.rest_url}/v1/models/penguin/versions/{version}"
        for start in range(0, len(held_out), 16):
            batch = held_out[start : start + 16]
            if start % 32 == 0:
                body = {"instances": batch}
                answer = requests.post(f"{url}:predict", json=body, timeout=60)
            else:
                body = {"signature_name": "classification", "examples": batch}
                answer = requests.post(f"{url}:classify", json=body, timeout=60)
            assert answer.status_code == 200, answer.text
        first_boundary = _next_second()
        for start in range(0, len(shifted), 16):
            columnar = {k: [r[k] for r in shifted[start : start + 16]] for k in FEATURES}
            answer = requests.post(f"{url}:predict", json={"inputs": columnar}, timeout=60)
            assert answer.status_code == 200, answer.text
        second_boundary = _next_second()
        unknown = f"{server.rest_url}/v1/models/penguin/versions/{UNKNOWN_VERSION}:predict"
        answer = requests.post(unknown, json={"instances": held_out[:3]}, timeout=60)
        assert answer.status_code == 200, answer.text
    # The server stopped; a crash mid-write would leave a torn record at a file's end.
    [log_file] = log_files(logs)
    with open(log_file, "ab") as torn:
        torn.write(b"\x30\x00\x00\x00\x00\x00\x00\x00\x01")
    held_out_run = beamline(
        "monitor",
        "penguin",
        "--requests",
        str(logs),
        "--until",
        _iso(first_boundary),
        "--json-out",
        str(root / "held_out.json"),
        "--root",
        str(root),
        "--metadata",
        metadata,
        opens=root / "held_out.opens",
    )
    shifted_run = beamline(
        "monitor",
        "penguin",
        "--requests",
        str(logs),
        "--since",
        _iso(first_boundary),
        "--until",
        _iso(second_boundary),
        "--json",
        "--json-out",
        str(root / "shifted.json"),
        "--root",
        str(root),
        "--metadata",
        metadata,
    )
    return Monitored(
        root,
        logs,
        metadata,
        version,
        (first_boundary, second_boundary),
        (len(held_out), len(shifted)),
        held_out_run,
        shifted_run,
        penguin_run.first.run_id,
    )


def test_monitor_opens_the_store_once(monitored):
    """Reading the lineage, the previous window and recording the result share one store."""
    assert monitored.held_out.returncode == 0, monitored.held_out.stderr
    opened = (monitored.root / "held_out.opens").read_text().splitlines()
    assert len(opened) == 1, opened
    assert opened[0].endswith(str(monitored.root / "metadata.sqlite"))


def test_a_loop_step_opens_the_store_once(monitored, tmp_path):
    """`loop --once` over the held-out window: the step's triggers, the lineage its monitoring
    reads, the monitoring record and its decision share one store (a private copy here)."""
    root, data = tmp_path / "loop_root", tmp_path / "spans"
    root.mkdir()
    data.mkdir()  # no span: nothing newer than the served model's data
    shutil.copy(monitored.metadata[len("sqlite:///") :], root / "metadata.sqlite")
    step = beamline(
        "loop", "penguin", "--once", "--data", str(data), "--requests", str(monitored.logs),
        "--until", _iso(monitored.boundaries[0]), "--root", str(root),
        opens=tmp_path / "loop.opens",
    )
    assert step.returncode == 0, step.stdout + step.stderr
    assert ": nothing: no drift" in step.stdout, step.stdout
    opened = (tmp_path / "loop.opens").read_text().splitlines()
    assert len(opened) == 1, opened
    assert opened[0].endswith(str(root / "metadata.sqlite"))


def test_held_out_traffic_passes(monitored):
    run = monitored.held_out
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((monitored.root / "held_out.json").read_text())
    assert result["verdict"] == "ok"
    [version] = result["versions"]
    assert version["version"] == int(monitored.version)
    assert version["requests"] == monitored.sent[0]
    features = {f["feature"]: f for f in version["features"]}
    assert set(FEATURES) <= set(features)
    for name in FEATURES:
        assert features[name]["skew"]["value"] <= features[name]["skew"]["threshold"], name
        assert features[name]["drift"] is None  # the first window has nothing to drift from
    assert features["island"]["skew"]["measure"] == "infinity_norm"
    assert features["body_mass_g"]["skew"]["measure"] == "jensen_shannon_divergence"
    # The torn tail was skipped and counted, not fatal.
    assert len(result["damaged_files"]) == 1
    assert "torn tail" in next(iter(result["damaged_files"].values()))
    assert "verdict: ok" in run.stdout


def test_shifted_traffic_is_flagged_naming_the_moved_features(monitored):
    """Body mass moved (+40%): drift, exit 8. Anvers (never in training) and masses past the
    schema's max are data quality: counted per row and kept out of the distributions."""
    run = monitored.shifted
    assert run.returncode == 8, run.stdout + run.stderr
    result = json.loads((monitored.root / "shifted.json").read_text())
    [version] = result["versions"]
    assert version["requests"] == monitored.sent[1]
    assert "body_mass_g" in version["crossed"]
    # Anvers rows are data quality, kept out of the distributions: island did not move.
    assert not {"island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "sex"} & set(
        version["crossed"]
    )
    features = {f["feature"]: f for f in version["features"]}
    mass = features["body_mass_g"]
    assert mass["skew"]["value"] > mass["skew"]["threshold"]
    assert mass["drift"]["value"] > mass["drift"]["threshold"]  # against the held-out window
    quality = version["data_quality"]
    assert quality["crossed"] and quality["invalid_rows"] >= monitored.sent[1] // 2
    assert quality["by_kind"]["unknown category"] == (monitored.sent[1] + 1) // 2
    assert quality["by_feature"]["island"] == (monitored.sent[1] + 1) // 2
    assert "out of range" in quality["by_kind"]
    assert quality["examples"] and quality["examples"][0]["row"]["island"] == "Anvers"
    assert "body_mass_g" in run.stderr
    assert result["verdict"] == "threshold crossed"
    # --json: the same result on stdout, as JSON only (the error paragraph goes to stderr).
    assert json.loads(run.stdout) == result


def test_a_threshold_override_decides_for_its_feature(monitored, tmp_path):
    """`monitor --threshold FEATURE=V`: the held-out window passes by default; with
    bill_length_mm's threshold at 0 exactly that feature crosses, and a value outside [0, 1]
    is a usage error. Recorded in a copy of the store (the other tests count monitorings)."""
    from beamline.commands.monitor import ThresholdCrossed

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(monitored.metadata[len("sqlite:///") :], root / "metadata.sqlite")
    window = [
        "monitor", "penguin", "--requests", str(monitored.logs),
        "--until", _iso(monitored.boundaries[0]),
        "--root", str(root), "--metadata", f"sqlite:///{root / 'metadata.sqlite'}",
    ]
    run = beamline(*window, "--threshold", "bill_length_mm=0", "--json-out", str(root / "o.json"))
    assert run.returncode == ThresholdCrossed.exit_code, run.stdout + run.stderr
    [version] = json.loads((root / "o.json").read_text())["versions"]
    assert version["crossed"] == ["bill_length_mm"], version["crossed"]
    bill = {f["feature"]: f for f in version["features"]}["bill_length_mm"]
    assert bill["skew"]["threshold"] == 0 and bill["skew"]["value"] > 0, bill
    bad = beamline(*window, "--threshold", "bill_length_mm=2")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "--threshold 'bill_length_mm=2' is not FEATURE=VALUE" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_lineage_and_report_show_the_monitoring(monitored, tmp_path):
    lineage = beamline("lineage", monitored.version, *monitored.store_args(), "--no-payloads")
    assert lineage.returncode == 0, lineage.stderr
    assert "Monitored by:" in lineage.stdout
    monitoring_lines = [
        line for line in lineage.stdout.splitlines() if "monitoring execution" in line
    ]
    assert len(monitoring_lines) == 2
    assert "ok" in monitoring_lines[0] and "threshold crossed" in monitoring_lines[1]
    out = tmp_path / "report.html"
    report = beamline(
        "report", monitored.trained_by, *monitored.store_args(), "--pipeline", "penguin",
        "-o", str(out),
    )
    assert report.returncode == 0, report.stderr
    html = out.read_text()
    assert 'id="monitoring"' in html and html.count('<svg class="hist"') > 10
    assert "body_mass_g" in html.split('id="monitoring"')[1]


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing", "does not exist"),
        ("empty", "holds no request logs"),
        ("no requests", "No requests were logged"),
        ("unknown version", f"version {UNKNOWN_VERSION}, whose lineage"),
    ],
)
def test_bad_input_is_one_paragraph_and_writes_nothing(monitored, tmp_path, case, expect):
    before = monitored.executions()
    requests_dir, window = monitored.logs, []
    if case == "missing":
        requests_dir = tmp_path / "nowhere"
    elif case == "empty":
        requests_dir = tmp_path / "empty"
        requests_dir.mkdir()
    elif case == "no requests":
        window = ["--since", "2099-01-01T00:00:00Z"]
    else:
        window = ["--since", _iso(monitored.boundaries[1])]
    run = beamline(
        "monitor", "penguin", "--requests", str(requests_dir), *window, *monitored.store_args()
    )
    assert run.returncode == 3, run.stdout + run.stderr
    [line] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert expect in line and "Traceback" not in run.stderr
    assert monitored.executions() == before
