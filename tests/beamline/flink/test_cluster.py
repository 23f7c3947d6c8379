"""`beamline flink up`, penguin through Pusher on the real cluster, faults, `flink down`.

In file order (one cluster for the module): up and its sockets; preflight refusals; a run whose
TaskManager is killed mid-job, and `flink up` replacing it; the re-run and what Flink and MLMD
say about it; the same outputs as the DirectRunner; a run killed with -9 whose job the next
`runs` cancels; Ctrl-C; down.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from beamline.flink.home import flink_ports
from beamline.flink.jobs import run_tag
from beamline.flink.rest import FlinkRest
from tests.beamline.flink.conftest import poll
from tests.e2e.conftest import beamline

pytestmark = pytest.mark.slow

BEAM_NODES = {"CsvExampleGen", "StatisticsGen", "Transform", "Evaluator"}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def _listening(procs: list[psutil.Process]) -> list[tuple[int, str, int]]:
    out = []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        out.extend((proc.pid, c.laddr.ip, c.laddr.port) for c in conns
                   if c.status == psutil.CONN_LISTEN)
    return out


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_starts_each_part_listening_on_loopback_only(flink_cluster):
    state = flink_cluster.state
    assert set(state.parts) == {"jobmanager", "taskmanager", "worker_pool"}
    overview = FlinkRest(state.rest).overview()
    assert overview["flink-version"] == "1.19.0"
    assert overview["slots-total"] == 2 and overview["taskmanagers"] == 1
    status = beamline("flink", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("ok  ") == 3, status.stdout
    procs = [p for part in state.parts.values() for p in _tree(part.pid)]
    sockets = _listening(procs)
    ports = {port for _, _, port in sockets}
    configured = flink_ports()
    assert {configured.rest, configured.rpc, configured.worker_pool} <= ports, sockets
    outside = [s for s in sockets if not _is_loopback(s[1])]
    assert outside == [], f"listening beyond loopback: {outside}"


def test_second_up_is_a_no_op(flink_cluster):
    pids = {n: p.pid for n, p in flink_cluster.state.parts.items()}
    again = beamline("flink", "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already up" in again.stdout
    assert {n: p.pid for n, p in flink_cluster.state.parts.items()} == pids


def test_no_cluster_refuses_with_flink_up_first(tmp_path):
    run = beamline("run", "penguin", "--no-tune", "--beam", "flink", "--root",
                   str(tmp_path / "root"), env={"BEAMLINE_FLINK_HOME": str(tmp_path / "none")})
    assert run.returncode == 13, run.stdout + run.stderr
    assert "Run `beamline flink up` first" in run.stderr
    assert "Traceback" not in run.stderr


def test_jobmanager_down_at_start_fails_preflight_before_any_node(flink_cluster, tmp_path):
    root = tmp_path / "root"
    master = f"127.0.0.1:{_free_port()}"
    run = beamline("run", "penguin", "--no-tune", "--beam", "flink", "--root", str(root),
                   "--flink-master", master, "--flink-worker-pool",
                   flink_cluster.state.worker_pool)
    assert run.returncode == 13, run.stdout + run.stderr
    assert f"REST API at http://{master} does not answer" in run.stderr
    assert "run id" not in run.stdout  # no run was claimed, no node ran
    assert not (root / "pipelines").exists()


def test_worker_pool_gone_fails_preflight_without_hanging(flink_cluster, tmp_path):
    pool = f"127.0.0.1:{_free_port()}"
    # No hang: beamline() raises TimeoutExpired if the run does not end; the message below is
    # the connect check's, not the one-element job's bounded wait.
    run = beamline("run", "penguin", "--no-tune", "--beam", "flink", "--root",
                   str(tmp_path / "root"), "--flink-master", flink_cluster.state.rest,
                   "--flink-worker-pool", pool, timeout=300)
    assert run.returncode == 13, run.stdout + run.stderr
    assert f"worker pool at {pool}" in run.stderr and "does not accept connections" in run.stderr
    assert "run id" not in run.stdout
    assert not (tmp_path / "root" / "pipelines").exists()


def _summary(root, run_id: str) -> dict:
    listing = beamline("runs", "--root", str(root), "--json")
    assert listing.returncode == 0, listing.stderr
    [summary] = [s for s in json.loads(listing.stdout) if s["run_id"] == run_id]
    return summary


def _recorded_jobs(run) -> dict[str, list[str]]:
    return _summary(run.root, run.cli.run_id)["flink_jobs"]


def _finished_jobs_by_node(rest: FlinkRest, run) -> dict[str, list[str]]:
    tag = run_tag(run.pipeline, run.cli.run_id)
    by_node: dict[str, list[str]] = {}
    for job in rest.jobs():
        if job.name.startswith(tag + "-"):
            assert job.state == "FINISHED", job
            by_node.setdefault(job.name[len(tag) + 1:], []).append(job.jid)
    return {n: sorted(j) for n, j in by_node.items()}


def test_taskmanager_killed_mid_job_fails_the_node_naming_flink_and_the_job(
    flink_cluster, taskmanager_killed
):
    killed = taskmanager_killed
    assert killed.run.returncode == 1, killed.run.stdout + killed.run.stderr
    assert f"Flink job {killed.jid} (" in killed.run.stderr, killed.run.stderr
    assert "-CsvExampleGen) FAILED on http://" in killed.run.stderr, killed.run.stderr
    assert "Traceback" not in killed.run.stderr
    assert FlinkRest(flink_cluster.state.rest).job(killed.jid).state == "FAILED"


def test_taskmanager_killed_run_is_recorded_failed_with_the_flink_job(taskmanager_killed):
    killed = taskmanager_killed
    summary = _summary(killed.root, killed.run.run_id)
    assert summary["state"] == "failed", summary
    assert killed.jid in summary["reason"] and "CsvExampleGen" in summary["reason"], summary
    assert summary["flink_jobs"] == {"CsvExampleGen": [killed.jid]}
    import ml_metadata as mlmd

    from beamline.metadata import run_context as rc
    from beamline.metadata.connection import sqlite_config

    store = mlmd.MetadataStore(sqlite_config(killed.root / "metadata.sqlite"))
    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, killed.run.run_id)
    assert rc.properties_of(ctx)[rc.STATE] == rc.RunState.FAILED
    table = beamline("runs", "--root", str(killed.root))
    assert killed.jid in table.stdout, table.stdout


def test_flink_up_after_the_kill_starts_only_a_new_taskmanager(flink_cluster,
                                                                taskmanager_killed):
    up = taskmanager_killed.up
    assert up.returncode == 0, up.stdout + up.stderr
    assert "TaskManager up" in up.stdout
    assert "JobManager up" not in up.stdout and "worker pool up" not in up.stdout, up.stdout
    state = flink_cluster.state
    assert state.parts["taskmanager"].pid != taskmanager_killed.killed_pid
    # When `up` returns, the new TaskManager is registered and the dead one is not (it stays
    # listed until the JobManager's heartbeat times out: its slots must not count).
    after_up = taskmanager_killed.after_up
    assert len(after_up) == 1 and not after_up.keys() & taskmanager_killed.killed_ids, (
        after_up, taskmanager_killed.killed_ids)
    assert list(after_up.values()) == [2]
    overview = FlinkRest(state.rest).overview()
    assert overview["taskmanagers"] == 1 and overview["slots-total"] == 2, overview


def test_penguin_rerun_after_the_kill_runs_through_pusher_with_one_finished_flink_job_per_node(
    flink_cluster, flink_run
):
    assert "model blessed: yes" in flink_run.cli.stdout
    assert "pushed: version" in flink_run.cli.stdout
    recorded = _recorded_jobs(flink_run)
    assert set(recorded) == BEAM_NODES, recorded
    by_node = _finished_jobs_by_node(FlinkRest(flink_cluster.state.rest), flink_run)
    assert by_node == {n: sorted(j) for n, j in recorded.items()}
    assert all(len(j) == 1 for j in by_node.values()), by_node


def test_runs_and_lineage_show_the_flink_job_ids(flink_run):
    recorded = _recorded_jobs(flink_run)
    table = beamline("runs", "--root", str(flink_run.root))
    assert "FLINK JOBS" in table.stdout
    for node, jobs in recorded.items():
        assert f"{node}: {', '.join(jobs)}" in table.stdout
    summary = _summary(flink_run.root, flink_run.cli.run_id)
    # Upstream of the pushed model: Trainer <- Transform <- ..., each step with its Flink jobs.
    lineage = beamline("lineage", summary["pushed_version"], "--root", str(flink_run.root))
    assert lineage.returncode == 0, lineage.stderr
    assert f"flink jobs: {recorded['Transform'][0]}" in lineage.stdout, lineage.stdout


def _outputs(run, node: str) -> dict[str, list]:
    from beamline.runner.outcome import node_outputs

    return node_outputs(run.store(), run.pipeline, run.cli.run_id, node)


def _statistics(run) -> dict:
    import tensorflow_data_validation as tfdv

    [stats] = _outputs(run, "StatisticsGen")["statistics"]
    out = {}
    for split in ("train", "eval"):
        path = os.path.join(stats.uri, f"Split-{split}", "FeatureStats.pb")
        dataset = tfdv.load_stats_binary(path).datasets[0]
        out[split] = {"num_examples": dataset.num_examples}
        for feature in dataset.features:
            common = (feature.num_stats.common_stats if feature.HasField("num_stats")
                      else feature.string_stats.common_stats)
            mean = feature.num_stats.mean if feature.HasField("num_stats") else None
            out[split][feature.path.step[0]] = (common.num_non_missing, mean)
    return out


def _transform(run) -> tuple[str, dict[str, int]]:
    import tensorflow as tf

    outputs = _outputs(run, "Transform")
    [graph] = outputs["transform_graph"]
    schema = open(os.path.join(graph.uri, "transformed_metadata", "schema.pbtxt")).read()
    [examples] = outputs["transformed_examples"]
    rows = {}
    for split in ("train", "eval"):
        files = tf.io.gfile.glob(os.path.join(examples.uri, f"Split-{split}", "*"))
        rows[split] = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    return schema, rows


def _blessed(run) -> int:
    [blessing] = _outputs(run, "Evaluator")["blessing"]
    return blessing.custom_properties["blessed"].int_value


def _assert_same_outputs(flink_run, direct_run) -> None:
    """Statistics, the transform output's schema and row counts, and the blessing."""
    flink_stats, direct_stats = _statistics(flink_run), _statistics(direct_run)
    assert flink_stats["train"]["num_examples"] > 0
    assert flink_stats.keys() == direct_stats.keys()
    for split, features in direct_stats.items():
        assert flink_stats[split].keys() == features.keys()
        for name, value in features.items():
            if isinstance(value, tuple) and value[1] is not None:
                assert flink_stats[split][name][0] == value[0], (split, name)
                assert flink_stats[split][name][1] == pytest.approx(value[1], rel=1e-9)
            else:
                assert flink_stats[split][name] == value, (split, name)
    flink_schema, flink_rows = _transform(flink_run)
    direct_schema, direct_rows = _transform(direct_run)
    assert flink_schema == direct_schema
    assert flink_rows == direct_rows and sum(flink_rows.values()) > 0
    assert _blessed(flink_run) == _blessed(direct_run)


def test_outputs_match_a_direct_runner_run_of_the_same_data(flink_run, direct_run):
    _assert_same_outputs(flink_run, direct_run)
    assert _blessed(flink_run) == 1


TAXI_BEAM_NODES = BEAM_NODES  # its other nodes (schema import, validator, Trainer) run no Beam


def test_taxi_on_flink_matches_a_direct_runner_run_of_the_same_data(
    flink_cluster, taxi_flink_run, taxi_direct_run
):
    recorded = _recorded_jobs(taxi_flink_run)
    assert set(recorded) == TAXI_BEAM_NODES, recorded
    by_node = _finished_jobs_by_node(FlinkRest(flink_cluster.state.rest), taxi_flink_run)
    assert by_node == {n: sorted(j) for n, j in recorded.items()}
    # The shared taxi run takes the default profile: the in-memory DirectRunner at this size.
    [args] = [line for line in taxi_direct_run.cli.stdout.splitlines() if "beam args" in line]
    assert {"--runner=DirectRunner", "--direct_running_mode=in_memory"} <= set(args.split()), args
    _assert_same_outputs(taxi_flink_run, taxi_direct_run)


def _start_run(root, **popen) -> subprocess.Popen:
    """A penguin run on Flink over 300k rows (the shipped rows repeated): its CsvExampleGen job
    runs long enough to be caught RUNNING, on a quiet machine too."""
    from tests.e2e.conftest import penguin_rows, write_csv

    header, rows = penguin_rows()
    data = write_csv(root.parent / "data" / "penguins.csv", header,
                     rows * (300_000 // len(rows)))
    return subprocess.Popen(
        [sys.executable, "-m", "beamline", "run", "penguin", "--no-tune", "--beam", "flink",
         "--data", str(data), "--root", str(root)], start_new_session=True, **popen,
    )


def _recorded_running_job(rest: FlinkRest, root) -> str:
    """Waits until the run in `root` recorded a Flink job that is RUNNING; returns its id."""
    def found():
        if not (root / "metadata.sqlite").exists():
            return None
        listing = beamline("runs", "--root", str(root), "--json")
        summaries = json.loads(listing.stdout or "[]") if listing.returncode == 0 else []
        for jobs in (summaries[0]["flink_jobs"] if summaries else {}).values():
            for jid in jobs:
                if rest.job(jid).state == "RUNNING":
                    return jid
        return None

    return poll("a recorded RUNNING Flink job", found, timeout=600, every=2)


def test_run_killed_with_9_mid_job_is_canceled_by_the_next_flink_status(flink_cluster, tmp_path):
    root = tmp_path / "root"
    proc = _start_run(root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rest = FlinkRest(flink_cluster.state.rest)
    try:
        jid = _recorded_running_job(rest, root)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the watchdog and the run: nothing cancels
        proc.wait()
    assert rest.job(jid).state == "RUNNING"  # nothing else cancels it

    def status_cancels() -> bool:  # the run's child dies of PR_SET_PDEATHSIG a moment later
        after = beamline("flink", "status", "--root", str(root))
        assert after.returncode == 0, after.stdout + after.stderr
        return jid in after.stdout and "canceled" in after.stdout

    poll("`flink status` to cancel the dead run's job", status_cancels, timeout=60)
    poll("the job CANCELED", lambda: rest.job(jid).state == "CANCELED", timeout=60)
    poll("its slots free", lambda: rest.overview()["slots-available"] == 2, timeout=60)


def test_interrupted_run_has_its_live_job_canceled_by_the_supervisor(flink_cluster, tmp_path):
    root = tmp_path / "root"
    proc = _start_run(root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rest = FlinkRest(flink_cluster.state.rest)
    try:
        jid = _recorded_running_job(rest, root)
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as a terminal sends it to the watchdog
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The watchdog cancels the job as it forwards Ctrl-C: the node waiting on it ends at once
    # (the run does not wait for the job to finish), failing with the cancellation.
    assert proc.returncode != 0, err
    assert f"canceled the run's live Flink job(s) on {flink_cluster.state.rest}: {jid}" in err
    poll("the job CANCELED", lambda: rest.job(jid).state == "CANCELED", timeout=60)
    [summary] = json.loads(beamline("runs", "--root", str(root), "--json").stdout)
    # Which the record names first depends on timing: the interrupt, or the canceled node.
    assert summary["state"] == "failed"
    assert "interrupted (Ctrl-C)" in summary["reason"] or "CANCELLED" in summary["reason"]


def test_down_stops_exactly_what_up_started(flink_cluster):
    state = flink_cluster.state
    procs = [p for part in state.parts.values() for p in _tree(part.pid)]
    assert len(procs) >= 3
    down = beamline("flink", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], alive
    assert not FlinkRest(state.rest).answers()
    assert not flink_cluster.home.state_file.exists()
    again = beamline("flink", "down")
    assert again.returncode == 0 and "nothing stopped" in again.stdout
