"""The UI without a TFX run: pure pieces (critical path, Gantt geometry, label periods, tokens)
and a real server on 127.0.0.1 over stores written with the MLMD API: an empty root, hostile
requests, a token, a Kubeflow-layout store, and a store nothing can write through the UI."""

from __future__ import annotations

import hashlib
import html
import re
import threading
from pathlib import Path

import pytest
import requests

from beamline.errors import ConfigError
from beamline.lineage.model import Execution
from beamline.report.sections import critical_path, node_edges
from beamline.report.svg import Bar, gantt_svg
from beamline.ui.server import (
    TOKEN_GENERATED,
    UiSettings,
    make_app,
    make_server,
    resolve_token,
    startup_lines,
)
from tests.beamline.ui import writer


def _ex(eid, node, start, end, inputs=(), outputs=()):
    return Execution(
        id=eid,
        type=f"x.{node}",
        node_id=node,
        pipeline="p",
        run_id="r",
        state="COMPLETE",
        start_ms=start,
        end_ms=end,
        inputs={"in": list(inputs)},
        outputs={"out": list(outputs)},
    )


def test_critical_path_follows_the_upstream_that_finished_last():
    s = 1000
    gen = _ex(1, "Gen", 0, 10 * s, outputs=[100])
    stats = _ex(2, "Stats", 10 * s, 15 * s, inputs=[100], outputs=[101])
    transform = _ex(3, "Transform", 10 * s, 40 * s, inputs=[100], outputs=[102])
    trainer = _ex(4, "Trainer", 41 * s, 60 * s, inputs=[101, 102], outputs=[103])
    execs = [gen, stats, transform, trainer]
    assert critical_path(execs, node_edges(execs)) == [1, 3, 4]


def test_critical_path_through_a_runner_slot():
    """A one-at-a-time runner: B waited for C (no dependency), not for its upstream A."""
    s = 1000
    a = _ex(1, "A", 0, 10 * s, outputs=[100])
    c = _ex(2, "C", 10 * s, 30 * s)
    b = _ex(3, "B", 30 * s, 35 * s, inputs=[100])
    execs = [a, c, b]
    assert critical_path(execs, node_edges(execs)) == [1, 2, 3]


def test_gantt_bars_are_proportional_to_times():
    svg = gantt_svg([Bar("a", "A", 1000, 3000), Bar("b", "B", 2000, 6000, critical=True)])
    plot_x = float(re.search(r'data-plot-x="([\d.]+)"', svg).group(1))
    plot_w = float(re.search(r'data-plot-w="([\d.]+)"', svg).group(1))
    rects = [
        tuple(map(float, m))
        for m in re.findall(r'<rect x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)
    ]
    assert rects[0] == pytest.approx((plot_x, plot_w * 2 / 5), abs=0.01)
    assert rects[1] == pytest.approx((plot_x + plot_w / 5, plot_w * 4 / 5), abs=0.01)
    assert 'class="bar  critical"' in svg or "critical" in svg.split('data-bar="b"')[0][-40:]


def test_label_periods_end_when_the_label_moves():
    from beamline.metadata.labels import LabelChange
    from beamline.ui.model_page import held_periods

    def change(label, before, after, at):
        return LabelChange(at, "p", label, before, after, "promote", "", "", "", at)

    changes = [
        change("canary", -1, 7, 100),
        change("stable", -1, 7, 200),
        change("canary", 7, 8, 300),
    ]
    bars = {(b.label, b.start_ms, b.end_ms) for b in held_periods(changes, 7, now_ms=1000)}
    assert bars == {("canary", 100, 300), ("stable", 200, 1000)}


def test_tokens(tmp_path, monkeypatch):
    monkeypatch.delenv("BEAMLINE_UI_TOKEN", raising=False)
    assert resolve_token(UiSettings(tmp_path, None, "127.0.0.1")) == (None, None)
    token, source = resolve_token(UiSettings(tmp_path, None, "0.0.0.0"))
    assert source == TOKEN_GENERATED and len(token) >= 24
    short = tmp_path / "t"
    short.write_text("abc\n")
    with pytest.raises(ConfigError, match="shorter than 16"):
        resolve_token(UiSettings(tmp_path, None, "0.0.0.0", token_file=short))
    with pytest.raises(ConfigError, match="Cannot read --token-file"):
        resolve_token(UiSettings(tmp_path, None, "0.0.0.0", token_file=tmp_path / "missing"))
    monkeypatch.setenv("BEAMLINE_UI_TOKEN", "x" * 20)
    assert resolve_token(UiSettings(tmp_path, None, "0.0.0.0")) == ("x" * 20, "$BEAMLINE_UI_TOKEN")


def test_start_up_prints_only_a_generated_token(tmp_path):
    settings = UiSettings(tmp_path, None, "0.0.0.0", token_file=tmp_path / "token")
    supplied = startup_lines(settings, 8470, "from-a-file-0123456789", "--token-file /t")
    assert "from-a-file" not in "\n".join(supplied)
    assert supplied[0].startswith("Beamline UI on http://127.0.0.1:8470/ (")
    assert "from --token-file /t, not printed" in supplied[1]
    generated = startup_lines(settings, 8470, "fresh-0123456789abcdef", TOKEN_GENERATED)
    assert "http://127.0.0.1:8470/?token=fresh-0123456789abcdef" in generated[0]
    assert generated[1].endswith(": fresh-0123456789abcdef")
    assert startup_lines(settings, 8470, None, None) == [
        f"Beamline UI on http://127.0.0.1:8470/ (store under {tmp_path}; read-only; "
        "Ctrl-C stops it)"
    ]


# ---------------------------------------------------------------- a real server


class Served:
    def __init__(self, root: Path, metadata: str | None = None, host="127.0.0.1", token=None):
        settings = UiSettings(root, metadata, host, 0)
        self.server = make_server(settings, make_app(settings, token))
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, timeout=60, allow_redirects=False, **kwargs)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    started = []

    def start(*args, **kwargs) -> Served:
        started.append(Served(*args, **kwargs))
        return started[-1]

    yield start
    for s in started:
        s.close()


@pytest.fixture(scope="module")
def records_root(tmp_path_factory) -> Path:
    """A store with only Beamline-written runs (no TFX): a failed and a killed run."""
    from beamline.metadata.connection import open_store, sqlite_config

    root = tmp_path_factory.mktemp("records-only")
    store = open_store(sqlite_config(root / "metadata.sqlite"))
    writer.failed_run(store, "tiny")
    writer.killed_run(store, "tiny")
    return root


def _clear_page(response, status: int, *phrases: str):
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text = html.unescape(response.text)
    assert "Traceback" not in text and 'id="error"' in text
    for phrase in phrases:
        assert phrase in text, text[:2000]


def test_empty_root_is_a_clear_page(tmp_path, serve):
    served = serve(tmp_path / "nothing-here")
    _clear_page(served.get("/"), 503, "No metadata store at", "Run a pipeline first")
    _clear_page(served.get("/runs/2026-01-01T00:00:00"), 503, "No metadata store at")
    api = served.get("/api/runs")
    assert api.status_code == 503 and "No metadata store" in api.json()["message"]


def test_unreachable_mysql_store_is_a_clear_page(tmp_path, serve):
    served = serve(tmp_path, metadata="mysql://nobody@127.0.0.1:1/none")
    _clear_page(served.get("/"), 503, "unreachable")


def test_hostile_requests_get_4xx(records_root, serve):
    served = serve(records_root)
    assert served.get("/").status_code == 200
    _clear_page(served.get("/runs/no-such-run"), 404, "No run 'no-such-run'")
    for path in (
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "/runs/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/?state=bogus",
        "/?limit=-1",
        "/?limit=99999999999",
        "/?pipeline=%00",
        "/compare?a=x",
        "/pipelines/%3Cb%3E",
        "/models/tiny/%22onload%3D",
        "/api/runs?state=%27;drop",
    ):
        response = served.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert "Traceback" not in response.text and "<script>alert" not in response.text
    for path in ("/static/../../etc/passwd", "/static/%2e%2e%2fsecret", "/nope", "/static/x.js"):
        assert served.get(path).status_code == 404, path
    _clear_page(served.get("/models/tiny/123"), 404, "no pushed model version")
    _clear_page(served.get("/pipelines/other"), 404)
    for method in ("post", "put", "delete", "patch"):
        response = getattr(requests, method)(served.base + "/", timeout=30)
        assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
    # DNS rebinding: a loopback UI without a token answers to loopback names only.
    rebound = served.get("/", headers={"Host": "evil.example:80"})
    assert rebound.status_code == 421


def test_repeated_slashes_redirect_to_a_relative_location(records_root, serve):
    served = serve(records_root)
    run_id = served.get("/api/runs").json()["runs"][0]["run_id"]
    for path, location in (
        (f"/runs//{run_id}", f"/runs/{run_id}"),
        (f"//api//runs/{run_id}?x=1", f"/api/runs/{run_id}?x=1"),
    ):
        moved = served.get(path, headers={"Host": "localhost:1"})
        assert moved.status_code == 308 and moved.headers["Location"] == location, path
        assert served.get(location).status_code == 200


def test_a_bracketed_ipv6_loopback_host_is_accepted_with_or_without_a_port(records_root, serve):
    served = serve(records_root)
    for host in ("[::1]", "[::1]:8470", "[::1]:"):
        assert served.get("/", headers={"Host": host}).status_code == 200, host
    for host in ("[::2]", "[::1.evil]", "::1"):
        assert served.get("/", headers={"Host": host}).status_code == 421, host


def test_failed_and_killed_runs_show_as_such(records_root, serve):
    served = serve(records_root)
    rows = {r["run_id"]: r for r in served.get("/api/runs").json()["runs"]}
    assert sorted(r["state"] for r in rows.values()) == ["failed", "killed"]
    killed = next(r for r in rows.values() if r["state"] == "killed")
    page = served.get("/runs/" + killed["run_id"])
    assert page.status_code == 200 and "killed: runner pid" in page.text
    assert 'class="badge b-killed"' in served.get("/?state=killed").text


def test_a_token_guards_every_page(records_root, serve):
    served = serve(records_root, host="0.0.0.0", token="s3cret-token-0123456789")
    for path in ("/", "/api/runs", "/static/ui.js", "/runs/x", "/pipelines"):
        response = served.get(path)
        assert response.status_code == 401, path
        assert "token" in response.text.lower()
    assert served.get("/?token=wrong-token-000000000").status_code == 401
    first = served.get("/?state=failed&token=s3cret-token-0123456789")
    assert first.status_code == 303 and first.headers["Location"].endswith("/?state=failed")
    cookie = first.cookies.get("beamline_ui_token")
    assert cookie and "HttpOnly" in first.headers["Set-Cookie"]
    assert served.get("/?state=failed", cookies={"beamline_ui_token": cookie}).status_code == 200
    assert served.get("/api/runs", cookies={"beamline_ui_token": cookie}).status_code == 200
    bearer = {"Authorization": "Bearer s3cret-token-0123456789"}
    assert served.get("/pipelines", headers=bearer).status_code == 200


def test_the_ui_cannot_change_the_store(records_root, serve):
    db = records_root / "metadata.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    served = serve(records_root)
    for path in ("/", "/api/runs", "/pipelines", "/pipelines/tiny", "/compare"):
        assert served.get(path).status_code == 200, path
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.ui.store import open_readonly

    with pytest.raises(Exception):  # noqa: B017 - MLMD raises its own error types
        open_readonly(records_root, None).put_execution_type(pb.ExecutionType(name="x"))


def test_kubeflow_store_reads_as_runs_reads_it(tmp_path_factory, serve):
    from tests.beamline.lineage import test_orchestrators as kfp

    root = kfp.kfp_store.__wrapped__(tmp_path_factory)
    served = serve(root)
    runs = {r["run_id"]: r for r in served.get("/api/runs").json()["runs"]}
    assert set(runs) == {"run-a", "run-b"}
    assert runs["run-a"]["pushed_version"] == kfp.PUSHED_VERSION
    page = served.get("/runs/run-b")
    assert page.status_code == 200
    assert page.text.count("state-CACHED") >= 4
    model = served.get(f"/models/penguin/{kfp.PUSHED_VERSION}")
    assert model.status_code == 200 and "model-lineage-svg" in model.text


def test_help_stays_light():
    from tests.beamline.test_cli import HEAVY, _modules_after

    for args in (["--help"], ["ui", "--help"]):
        proc, modules = _modules_after(args)
        assert proc.returncode == 0 or "Usage" in proc.stdout
        heavy = [m for m in modules if m.split(".")[0] in (*HEAVY, "werkzeug")]
        assert not heavy, (args, heavy[:3])
        assert "beamline.ui.app" not in modules


def test_cli_on_all_interfaces_prints_and_requires_a_token(records_root, monkeypatch):
    from tests.beamline.ui.conftest import start_ui, stop_ui

    monkeypatch.delenv("BEAMLINE_UI_TOKEN", raising=False)
    ui = start_ui("--root", str(records_root), "--host", "0.0.0.0")
    try:
        token = ui.url.split("?token=", 1)[1]
        assert len(token) >= 24
        assert requests.get(ui.base + "/", timeout=60).status_code == 401
        assert requests.get(ui.url, timeout=60).status_code == 200
        header = {"Authorization": f"Bearer {token}"}
        assert requests.get(ui.base + "/api/runs", headers=header, timeout=60).status_code == 200
    finally:
        stop_ui(ui)
    printed = ui.process.stdout.read().splitlines()  # after its URL: the token, then requests
    assert printed[0] == f"Access token (every page checks it): {token}"
    log = "\n".join(printed[1:])
    assert "GET /?token=*** " in log and token not in log


def test_cli_keeps_a_supplied_token_out_of_its_output(records_root):
    import os

    from tests.beamline.ui.conftest import start_ui, stop_ui

    token = "from-the-environment-0123456789"
    env = {**os.environ, "BEAMLINE_UI_TOKEN": token}
    ui = start_ui("--root", str(records_root), "--host", "0.0.0.0", env=env)
    try:
        assert "token=" not in ui.url
        assert requests.get(ui.base + "/", timeout=60).status_code == 401
        with_token = requests.get(ui.base + f"/?token={token}", timeout=60, allow_redirects=False)
        assert with_token.status_code == 303
    finally:
        stop_ui(ui)
    printed = ui.process.stdout.read()
    assert token not in printed and "from $BEAMLINE_UI_TOKEN, not printed" in printed


def test_cli_refuses_a_taken_port(records_root):
    import socket
    import subprocess

    from tests.beamline.ui.conftest import BEAMLINE

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = subprocess.run(
            [str(BEAMLINE), "ui", "--root", str(records_root), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_airflow_store_reads_as_runs_reads_it(tmp_path, serve):
    """TFX's legacy launcher (AirflowDagRunner) layout: a `run` context per run, not a child of
    the pipeline's, and executions carrying pipeline_name, run_id and component_id."""
    from urllib.parse import quote

    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata.connection import open_store, sqlite_config

    store = open_store(sqlite_config(tmp_path / "metadata.sqlite"))
    airflow_id = "manual__2026-01-01T00:00:00+00:00"
    run = pb.Context(
        type_id=store.put_context_type(pb.ContextType(name="run")), name=f"tiny.{airflow_id}"
    )
    run.custom_properties["pipeline_name"].string_value = "tiny"
    run.custom_properties["run_id"].string_value = airflow_id
    [run.id] = store.put_contexts([run])
    for node, state in (("CsvExampleGen", pb.Execution.COMPLETE), ("Trainer", pb.Execution.FAILED)):
        ex = pb.Execution(
            type_id=store.put_execution_type(pb.ExecutionType(name=f"tfx.{node}")),
            last_known_state=state,
        )
        for key, value in (
            ("pipeline_name", "tiny"),
            ("run_id", airflow_id),
            ("component_id", node),
        ):
            ex.custom_properties[key].string_value = value
        store.put_execution(ex, [], [run])
    served = serve(tmp_path)
    [row] = served.get("/api/runs").json()["runs"]
    assert (row["run_id"], row["pipeline"], row["state"]) == (
        f"tiny.{airflow_id}",
        "tiny",
        "failed",
    )
    page = served.get("/runs/" + quote(row["run_id"], safe=""))
    assert page.status_code == 200
    assert 'data-node="CsvExampleGen"' in page.text and 'data-node="Trainer"' in page.text


# ---------------------------------------------------------------- hostile store content


def _forged_root(tmp_path: Path):
    """A root and its SQLite store, ready for forged records: (layout, store)."""
    from beamline.metadata.connection import open_store, sqlite_config
    from beamline.settings import RootLayout

    layout = RootLayout(tmp_path / "root")
    layout.logs_dir.mkdir(parents=True)
    return layout, open_store(sqlite_config(layout.metadata_path))


def _run_logged_at(store, path) -> str:
    from beamline.metadata import run_context as rc

    run_id = writer.failed_run(store, "tiny")
    writer.set_run_properties(store, run_id, **{rc.LOG_PATH: str(path)})
    return run_id


def test_the_log_tail_shows_only_regular_files_in_the_roots_log_directory(tmp_path, serve):
    """A store names each run's log file, and a store can be shared or received: the page must
    not show a file elsewhere, follow a symlink, read a device without end, or wait on a pipe."""
    import os

    from beamline.ui.run_page import OUTSIDE_LOGS

    layout, store = _forged_root(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    (layout.logs_dir / "link.log").symlink_to(secret)
    os.mkfifo(layout.logs_dir / "pipe.log")
    honest = layout.logs_dir / "honest.log"
    honest.write_text("HONEST-LOG-LINE\n")
    refused = {  # first the plain leak, so the old code failed before it read /dev/zero
        _run_logged_at(store, secret): OUTSIDE_LOGS,
        _run_logged_at(store, f"{layout.logs_dir}/../../secret.txt"): OUTSIDE_LOGS,
        _run_logged_at(store, "/dev/zero"): OUTSIDE_LOGS,
        _run_logged_at(store, layout.logs_dir / "link.log"): "the recorded path is a symlink",
        _run_logged_at(store, layout.logs_dir / "pipe.log"): "not a regular file",
    }
    shown = _run_logged_at(store, honest)
    served = serve(layout.root)
    for run_id, why in refused.items():
        for path in ("/runs/" + run_id, "/api/runs/" + run_id):
            response = served.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert "TOP-SECRET-LINE" not in response.text, path
            log = html.unescape(response.text if path[1] == "r" else str(response.json()))
            assert why in log, (path, why)
    page = served.get("/runs/" + shown)
    assert page.status_code == 200 and "HONEST-LOG-LINE" in page.text


def test_source_files_are_hashed_once_per_file_version(tmp_path, serve):
    """A live run's page re-renders every 2 s, showing each source file's SHA-256: the hash of
    an unchanged file is remembered, and a rewritten file is hashed again."""
    from beamline.lineage import sources

    layout, store = _forged_root(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n")
    (data / "b.csv").write_text("x\n2\n")
    run_id = writer.failed_run(store, "tiny")
    writer.put_node_execution(
        store, "tiny", run_id, "CsvExampleGen", writer.EXAMPLE_GEN, "COMPLETE",
        props={"input_base": str(data)},
    )
    served = serve(layout.root)
    sources._cached_sha256.cache_clear()

    def render() -> str:
        page = served.get("/runs/" + run_id)
        assert page.status_code == 200 and 'id="sources-table"' in page.text
        return page.text

    first = render()
    hashed = sources._cached_sha256.cache_info().misses
    assert hashed == 2
    assert hashlib.sha256(b"x\n1\n").hexdigest()[:16] in first
    render()
    assert sources._cached_sha256.cache_info().misses == hashed
    (data / "b.csv").write_text("x\n22\n")
    assert hashlib.sha256(b"x\n22\n").hexdigest()[:16] in render()
    assert sources._cached_sha256.cache_info().misses == hashed + 1


def test_a_hostile_statistics_file_leaves_the_run_page_up(tmp_path, serve):
    """A TFRecord length of 2^62 in a statistics file: refused as corrupt, not allocated."""
    import struct

    from beamline_serving.request_log.tfrecord import masked_crc

    layout, store = _forged_root(tmp_path)
    split = tmp_path / "stats" / "Split-train"
    split.mkdir(parents=True)
    length = struct.pack("<Q", 2**62)
    (split / "stats_tfrecord-00000").write_bytes(
        length + struct.pack("<I", masked_crc(length)) + b"x" * 64
    )
    run_id = writer.failed_run(store, "tiny", statistics_uri=str(tmp_path / "stats"))
    page = serve(layout.root).get("/runs/" + run_id)
    assert page.status_code == 200, page.text[:500]
    assert "Statistics files not readable" in page.text
