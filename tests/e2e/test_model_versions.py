"""Model versions on real runs: two blessed pushes under the canary policy, an unblessed run,
then promote, `labels --at`, rollback, refusals, lineage and gc, through the real CLI.

One module-scoped sequence (three penguin runs without tuning, in one root); each test reads
what one step left.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from beamline.metadata.labels_file import models_config_path, routing_path
from beamline.settings import RootLayout
from tests.e2e.conftest import CliRun, beamline, penguin_rows, write_csv

# No server listens here: `models` must say so, and label moves must not wait for one.
NO_SERVER_PORT = "9"


@dataclass
class Versions:
    root: Path
    runs: dict[str, CliRun]
    steps: dict[str, CliRun] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    v1: int = 0
    v2: int = 0

    @property
    def layout(self) -> RootLayout:
        return RootLayout(self.root)

    def cli(self, *args: str) -> CliRun:
        return beamline(*args, "--root", str(self.root),
                        env={"BEAMLINE_REST_PORT": NO_SERVER_PORT})

    def json(self, *args: str):
        step = self.cli(*args, "--json")
        assert step.returncode == 0, step.stdout + step.stderr
        return json.loads(step.stdout)


def _pushed_version(run: CliRun) -> int:
    for line in run.stdout.splitlines():
        if "pushed" in line.lower():
            digits = [w for w in line.replace("/", " ").split() if w.isdigit() and len(w) >= 9]
            if digits:
                return int(digits[-1])
    raise AssertionError(f"no pushed version in:\n{run.stdout}")


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> Versions:
    base = tmp_path_factory.mktemp("versions")
    root = base / "root"
    header, rows = penguin_rows()
    first = write_csv(base / "d1" / "penguins.csv", header, rows)
    # Other data, same population: every row once more, in another order (blessed again).
    second = write_csv(base / "d2" / "penguins.csv", header,
                       rows + random.Random(3).sample(rows, len(rows)))
    labels = [r["species"] for r in rows]
    random.Random(7).shuffle(labels)
    shuffled = write_csv(base / "d3" / "penguins.csv", header,
                         [{**r, "species": s} for r, s in zip(rows, labels, strict=True)])
    state = Versions(root, {})

    def run(name: str, data: Path) -> None:
        state.runs[name] = beamline("run", "penguin", "--data", str(data.parent), "--root",
                                    str(root), "--no-tune", "--push-policy", "canary",
                                    env={"BEAMLINE_REST_PORT": NO_SERVER_PORT})
        assert state.runs[name].returncode == 0, state.runs[name].stdout + state.runs[
            name].stderr

    run("first", first)
    state.v1 = _pushed_version(state.runs["first"])
    state.steps["labels_after_first"] = state.cli("labels", "penguin", "--json")
    run("second", second)
    state.v2 = _pushed_version(state.runs["second"])
    state.steps["labels_after_second"] = state.cli("labels", "penguin", "--json")
    state.steps["config_after_second"] = CliRun([], 0, models_config_path(
        state.layout).read_text(), "")
    run("unblessed", shuffled)
    time.sleep(0.01)  # label times are ms: the mark must fall strictly between two changes
    state.marks["before_promote"] = time.time()
    time.sleep(0.01)
    state.steps["promote"] = state.cli("promote", "penguin", str(state.v2), "--label", "stable",
                                       "--reason", "canary looked good")
    state.steps["models_after_promote"] = state.cli("models", "penguin", "--json")
    state.steps["labels_before_promote"] = state.cli(
        "labels", "penguin", "--at",
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(state.marks["before_promote"]))
        + f".{int(state.marks['before_promote'] * 1000) % 1000:03d}Z", "--json")
    state.steps["rollback"] = state.cli("rollback", "penguin", "--label", "stable",
                                        "--reason", "latency")
    state.steps["rollback_again"] = state.cli("rollback", "penguin", "--label", "stable")
    state.steps["history"] = state.cli("labels", "penguin", "--history", "--json")
    state.steps["lineage_v2"] = state.cli("lineage", str(state.v2), "--json")
    # An operator copies the unblessed run's model into the serving directory by hand.
    trainer_models = sorted((root / "pipelines" / "penguin" / "Trainer" / "model").iterdir(),
                            key=lambda p: int(p.name))
    state.marks["copied"] = state.v2 + 10
    shutil.copytree(trainer_models[-1] / "Format-Serving",
                    state.layout.serving_dir("penguin") / str(state.v2 + 10))
    state.steps["promote_copied"] = state.cli("promote", "penguin", str(state.v2 + 10),
                                              "--label", "stable")
    state.steps["promote_missing"] = state.cli("promote", "penguin", "12345", "--label",
                                               "stable")
    state.steps["gc"] = state.cli("gc", "--keep-versions", "1", "--unrecorded-versions")
    return state


def test_under_canary_the_first_push_takes_both_labels_and_the_second_only_canary(versions):
    first = json.loads(versions.steps["labels_after_first"].stdout)
    assert first["labels"] == {"stable": versions.v1, "canary": versions.v1}
    second = json.loads(versions.steps["labels_after_second"].stdout)
    assert second["labels"] == {"stable": versions.v1, "canary": versions.v2}
    assert second["since"]["canary"]["action"] == "push"
    assert "not blessed" in versions.runs["unblessed"].stdout.lower() or "NOT" in versions.runs[
        "unblessed"].stdout


def test_the_labels_file_is_a_model_server_config_tf_serving_parses(versions):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(versions.steps["config_after_second"].stdout,
                               model_server_config_pb2.ModelServerConfig())
    [model] = config.model_config_list.config
    assert model.name == "penguin" and model.model_platform == "tensorflow"
    assert model.base_path == str(versions.layout.serving_dir("penguin"))
    assert sorted(model.model_version_policy.specific.versions) == [versions.v1, versions.v2]
    assert dict(model.version_labels) == {"stable": versions.v1, "canary": versions.v2}


def test_promote_records_the_change_and_models_shows_it(versions):
    promote = versions.steps["promote"]
    assert promote.returncode == 0, promote.stdout + promote.stderr
    assert f"stable: {versions.v1} -> {versions.v2}" in promote.stdout
    listing = json.loads(versions.steps["models_after_promote"].stdout)
    assert "no server answers" in listing["server"]
    rows = {row["version"]: row for row in listing["versions"]}
    assert set(rows) == {versions.v1, versions.v2}
    assert rows[versions.v2]["labels"] == ["canary", "stable"] and rows[versions.v1]["labels"] == []
    for row in rows.values():
        assert row["blessed"] is True and row["run_id"] and row["server_state"] is None
        assert "accuracy" in row["metric"] and 0.5 < row["value"] <= 1.0
    assert rows[versions.v1]["run_id"] == versions.runs["first"].run_id


def test_labels_at_a_past_time_shows_the_holder_then(versions):
    then = json.loads(versions.steps["labels_before_promote"].stdout)
    assert then["labels"] == {"stable": versions.v1, "canary": versions.v2}


def test_rollback_returns_to_the_recorded_previous_holder_then_refuses(versions):
    rollback = versions.steps["rollback"]
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert f"stable: {versions.v2} -> {versions.v1}" in rollback.stdout
    again = versions.steps["rollback_again"]
    assert again.returncode == 10 and "no earlier holder" in again.stderr, again.stderr
    changes = json.loads(versions.steps["history"].stdout)["history"]
    stable = [(c["action"], c["from_version"], c["to_version"], c["reason"])
              for c in changes if c["label"] == "stable"]
    assert stable == [
        ("push", None, versions.v1, stable[0][3]),
        ("promote", versions.v1, versions.v2, "canary looked good"),
        ("rollback", versions.v2, versions.v1, "latency"),
    ]
    assert all(c["user"] and c["host"] and c["time_ms"] > 0 for c in changes)


def test_lineage_of_a_version_shows_the_labels_it_held_and_when(versions):
    lineage = json.loads(versions.steps["lineage_v2"].stdout)
    held = [(p["label"], p["how"], p["ended_by"]) for p in lineage["labels"]]
    assert held == [("canary", "push", None), ("stable", "promote", "rollback")]


def test_promote_refuses_an_unblessed_model_naming_the_failed_check(versions):
    copied = versions.steps["promote_copied"]
    assert copied.returncode == 10, copied.stdout + copied.stderr
    assert "not recorded as pushed" in copied.stderr
    assert versions.runs["unblessed"].run_id in copied.stderr
    assert "NOT blessed" in copied.stderr and "failed checks" in copied.stderr
    assert "accuracy" in copied.stderr
    missing = versions.steps["promote_missing"]
    assert missing.returncode == 10 and "is not on disk" in missing.stderr


def test_gc_keeps_every_labelled_version_and_says_which_label_holds_it(versions):
    gc = versions.steps["gc"]
    assert gc.returncode == 0, gc.stdout + gc.stderr
    serving = versions.layout.serving_dir("penguin")
    assert f"kept {serving / str(versions.v1)}: it holds stable" in gc.stdout, gc.stdout
    assert (serving / str(versions.v1)).is_dir() and (serving / str(versions.v2)).is_dir()
    assert not (serving / str(versions.v2 + 10)).exists()  # unrecorded, unlabelled: removed


def _label_state(layout: RootLayout) -> dict[str, bytes | None]:
    """What a label move writes: the store (its LabelChange records), models.config and
    routing.json, as bytes (None: absent)."""
    paths = [layout.metadata_path, models_config_path(layout), routing_path(layout)]
    return {str(p): p.read_bytes() if p.exists() else None for p in paths}


@pytest.mark.parametrize("percent", ["nan", "-1", "101", "inf"])
def test_promote_refuses_a_canary_share_the_server_would_refuse_and_writes_nothing(
    versions, percent
):
    before = _label_state(versions.layout)
    # Moving canary to v1 would succeed: only the share can be what is refused.
    step = versions.cli("promote", "penguin", str(versions.v1), "--label", "canary",
                        "--canary-percent", percent)
    assert step.returncode == 2, step.stdout + step.stderr
    assert "--canary-percent" in step.stderr and "Traceback" not in step.stderr
    assert _label_state(versions.layout) == before


# ---------------------------------------------------------------------------------------------
# The same root served by a real `beamline serve --root`, label switches under load
# ---------------------------------------------------------------------------------------------

@dataclass
class Served:
    answers: list[tuple[str, int, int | None]]  # (route, HTTP status, answering version)
    switches: dict[str, CliRun]
    stable_seen: list[int]  # the versions labels/stable answered with, in order of change
    compare_ok: CliRun
    compare_bad: CliRun
    models: CliRun
    rest_url: str  # the server, still up
    env: dict[str, str]  # BEAMLINE_REST_PORT for the CLI: label moves wait for it


def _predict(session, url: str, key: str):
    from beamline_pipelines.penguin import SAMPLE_INSTANCE
    from beamline_serving.core.routing import REQUEST_KEY_HEADER, VERSION_HEADER

    response = session.post(url, json={"instances": [SAMPLE_INSTANCE]},
                            headers={REQUEST_KEY_HEADER: key}, timeout=30)
    version = response.headers.get(VERSION_HEADER)
    return response.status_code, int(version) if version else None


@pytest.fixture(scope="module")
def served(versions, tmp_path_factory) -> Iterator[Served]:
    """After the CLI sequence above (stable on v1, canary on v2): serve the root with request
    logging and a 50 % canary; under a bounded concurrent load, promote v2 to stable and roll
    back; then compare stable and canary from the request logs."""
    import threading

    import requests

    from tests.serving.support import running_server

    logs = tmp_path_factory.mktemp("served-logs")
    base = "/v1/models/penguin"
    routes = {"stable": f"{base}/labels/stable:predict", "unversioned": f"{base}:predict"}
    with running_server(
        ready_model="penguin", log_dir=logs,
        args=[f"--root={versions.root}", f"--request_log_dir={logs / 'requests'}",
              "--canary_percent=50"],
    ) as server:
        env = {"BEAMLINE_REST_PORT": str(server.rest_port)}

        def cli(*args: str) -> CliRun:
            return beamline(*args, "--root", str(versions.root), env=env)

        answers: list[tuple[str, int, int | None]] = []
        stop = threading.Event()

        def client(worker: int) -> None:
            with requests.Session() as session:
                n = 0
                while not stop.is_set() and n < 5000:  # bounded, whatever happens
                    for route, path in routes.items():
                        answers.append(
                            (route, *_predict(session, server.rest_url + path, f"{worker}-{n}"))
                        )
                    n += 1

        def stable_answers(version: int) -> bool:
            with requests.Session() as session:
                status, got = _predict(session, server.rest_url + routes["stable"], "probe")
            return status == 200 and got == version

        def wait_for_stable(version: int, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while not stable_answers(version):
                assert time.monotonic() < deadline, f"stable never answered {version}"
                time.sleep(0.05)

        wait_for_stable(versions.v1)
        workers = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for worker in workers:
            worker.start()
        switches = {"promote": cli("promote", "penguin", str(versions.v2), "--label", "stable")}
        wait_for_stable(versions.v2)
        switches["rollback"] = cli("rollback", "penguin", "--label", "stable")
        wait_for_stable(versions.v1)
        stop.set()
        for worker in workers:
            worker.join(120)
        stable_seen = [v for route, _, v in answers if route == "stable"]
        until = time.time()
        time.sleep(0.01)  # outcome times are ms: the bad requests fall strictly after `until`
        with requests.Session() as session:  # the canary refuses 30 requests it cannot read
            for _ in range(30):
                bad = session.post(server.rest_url + f"{base}/labels/canary:predict",
                                   json={"instances": [{"island": "Biscoe"}]}, timeout=30)
                assert bad.status_code == 400, bad.text
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(until)) + (
            f".{int(until * 1000) % 1000:03d}Z")
        compare = ("monitor", "penguin", "--requests", str(logs / "requests"), "--compare",
                   "stable", "canary", "--max-p99-ratio", "1000", "--json")
        # The writer thread flushes within 50 ms; poll until the last bad request is on disk.
        from beamline_serving.request_log.outcomes import read_outcomes

        deadline = time.monotonic() + 30
        while sum(not o.ok for o in read_outcomes(logs / "requests")) < 30:
            assert time.monotonic() < deadline, "the refused requests never reached the log"
            time.sleep(0.05)
        compare_ok = cli(*compare, "--until", stamp)
        # How many requests the canary answered depends on the machine's speed; the clients'
        # bound does not: at most 15,000 unversioned answers reach it, so 30 errors are an
        # error rate of at least 0.002, past this limit whatever the load.
        compare_bad = cli(*compare, "--max-error-rate-increase", "0.001")
        models = cli("models", "penguin", "--json")
        # Kept up for the module's later tests: they go on with the same server.
        yield Served(answers, switches, stable_seen, compare_ok, compare_bad, models,
                     server.rest_url, env)


def test_label_switches_on_a_live_server_fail_no_request(served, versions):
    for name, step in served.switches.items():
        assert step.returncode == 0, (name, step.stdout + step.stderr)
    failed = [a for a in served.answers if a[1] != 200]
    assert failed == [] and len(served.answers) > 50, failed[:5]
    assert {v for _, _, v in served.answers} <= {versions.v1, versions.v2}
    # stable answered v1 first and v2 while promoted (three clients interleave at a switch).
    seen = served.stable_seen
    assert seen[0] == versions.v1 and versions.v2 in seen, seen[:5]
    # Unversioned traffic is split by request key between stable and the 50 % canary.
    unversioned = {v for route, _, v in served.answers if route == "unversioned"}
    assert unversioned == {versions.v1, versions.v2}


def test_models_shows_both_versions_available_on_the_live_server(served, versions):
    assert served.models.returncode == 0, served.models.stdout + served.models.stderr
    rows = {r["version"]: r for r in json.loads(served.models.stdout)["versions"]}
    assert rows[versions.v1]["server_state"] == "AVAILABLE"
    assert rows[versions.v2]["server_state"] == "AVAILABLE"


def test_compare_puts_stable_and_canary_side_by_side_and_exits_11_on_a_worse_canary(
    served, versions
):
    ok = served.compare_ok
    assert ok.returncode == 0, ok.stdout + ok.stderr
    result = json.loads(ok.stdout)
    assert (result["baseline"]["version"], result["candidate"]["version"]) == (
        versions.v1, versions.v2)
    for side in ("baseline", "candidate"):
        assert result[side]["requests"] >= 20 and result[side]["errors"] == 0
        assert 0 < result[side]["p50_ms"] <= result[side]["p99_ms"]
        assert abs(sum(result[side]["predictions"].values()) - 1) < 1e-9
    bad = served.compare_bad
    assert bad.returncode == 11, bad.stdout + bad.stderr
    worse = json.loads(bad.stdout)
    assert worse["candidate"]["errors"] == 30 and "error_rate_increase" in worse["crossed"]
    assert worse["candidate"]["statuses"]["INVALID_ARGUMENT"] == 30
    assert "canary (version" in bad.stderr and "rollback penguin --label canary" in bad.stderr


def test_promote_canary_percent_sets_the_share_of_keyed_requests_a_live_server_routes(
    served, versions
):
    """promote --canary-percent writes routing.json; the server serving the root (started with
    --canary_percent=50) picks it up and sends exactly the keys whose bucket falls in the new
    share to the canary."""
    import requests

    from beamline_serving.core.routing import BUCKETS, bucket

    percent = 20
    step = beamline("promote", "penguin", str(versions.v2), "--label", "canary",
                    "--canary-percent", str(percent), "--root", str(versions.root),
                    env=served.env)
    assert step.returncode == 0, step.stdout + step.stderr
    assert "canary already holds version" in step.stdout
    routing = json.loads(routing_path(versions.layout).read_text())
    assert routing == {"models": {"penguin": {"canary_percent": percent}}}
    cut = percent * BUCKETS // 100
    keys = [f"user-{i}" for i in range(400)]
    expected = {k: versions.v2 if bucket(k) < cut else versions.v1 for k in keys}
    url = served.rest_url + "/v1/models/penguin:predict"
    # A key the 50 % start-up share sent to the canary and 20 % does not: when it answers
    # stable, the server has applied routing.json.
    probe = next(k for k in keys if cut <= bucket(k) < BUCKETS // 2)
    with requests.Session() as session:
        deadline = time.monotonic() + 60
        while _predict(session, url, probe) != (200, versions.v1):
            assert time.monotonic() < deadline, "the server never applied routing.json"
            time.sleep(0.05)
        answers = {k: _predict(session, url, k) for k in keys}
    assert answers == {k: (200, v) for k, v in expected.items()}
    share = sum(v == versions.v2 for _, v in answers.values()) / len(keys)
    assert abs(share - percent / 100) < 0.06, share
