"""`--beam flink` without a cluster: what it refuses and what it fills in (no Flink needed)."""

from __future__ import annotations

import pytest

from beamline.errors import FlinkPreflightFailed
from beamline.flink.config import overrides, write_config
from beamline.flink.home import FlinkHome
from beamline.flink.profile import cli_args, flink_extra


def test_no_local_cluster_and_no_master_refuses_with_flink_up_first(tmp_path):
    with pytest.raises(FlinkPreflightFailed) as info:
        flink_extra((), env={}, home=FlinkHome(tmp_path))
    assert "Run `beamline flink up` first" in str(info.value)
    assert info.value.exit_code == 13


def test_a_teams_cluster_from_flags_or_environment(tmp_path):
    home = FlinkHome(tmp_path)
    args, target = flink_extra(cli_args("jm:8081", "pool:50000"), env={}, home=home)
    assert args == ["--flink_master=jm:8081", "--environment_config=pool:50000",
                    f"--flink_job_server_jar={home.runner_jar}"]
    assert target.master == "jm:8081" and not target.local and target.pool_identity == ""
    args, _ = flink_extra((), env={"BEAMLINE_FLINK_MASTER": "jm:1",
                                   "BEAMLINE_FLINK_WORKER_POOL": "p:2",
                                   "BEAMLINE_FLINK_JAR": "/j.jar"}, home=home)
    assert args == ["--flink_master=jm:1", "--environment_config=p:2",
                    "--flink_job_server_jar=/j.jar"]


def test_config_binds_every_address_to_loopback_and_sizes_for_two_slots(tmp_path):
    import yaml

    home = FlinkHome(tmp_path)
    shipped = home.flink_dist / "conf"
    shipped.mkdir(parents=True)
    (shipped / "config.yaml").write_text(
        "env:\n  java:\n    opts:\n      all: --add-opens=java.base/java.lang=ALL-UNNAMED\n"
        "jobmanager:\n  bind-host: localhost\n  rpc:\n    address: localhost\n"
        "taskmanager:\n  numberOfTaskSlots: 1\n  memory:\n    process:\n      size: 1728m\n"
    )
    (shipped / "log4j.properties").write_text("rootLogger.level = INFO\n")
    config = yaml.safe_load(write_config(home).read_text())
    assert config["env"]["java"]["opts"]["all"].startswith("--add-opens")  # Java 17 flags kept
    assert config["jobmanager"]["bind-host"] == "127.0.0.1"
    assert config["jobmanager"]["rpc"]["address"] == "127.0.0.1"
    assert config["rest"]["bind-address"] == "127.0.0.1"
    assert config["taskmanager"]["bind-host"] == "127.0.0.1"
    assert config["taskmanager"]["numberOfTaskSlots"] == 2
    assert config["taskmanager"]["memory"]["process"]["size"] == "3000m"
    assert config["taskmanager"]["memory"]["network"] == {"min": "768mb", "max": "768mb"}
    assert config["taskmanager"]["network"]["sort-shuffle"]["min-buffers"] == 64
    assert (home.conf_dir / "log4j.properties").is_file()
    hosts = [v for k, v in overrides(home).items() if k.endswith(("address", "host"))]
    assert hosts and set(hosts) == {"127.0.0.1"}


def test_ports_come_from_the_environment_for_a_second_local_cluster(tmp_path, monkeypatch):
    from beamline.flink.cluster import ClusterState

    for var in ("BEAMLINE_FLINK_REST_PORT", "BEAMLINE_FLINK_RPC_PORT",
                "BEAMLINE_FLINK_WORKER_POOL_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert (ClusterState().rest, ClusterState().worker_pool) == ("127.0.0.1:8081",
                                                                 "127.0.0.1:50000")
    monkeypatch.setenv("BEAMLINE_FLINK_REST_PORT", "18081")
    monkeypatch.setenv("BEAMLINE_FLINK_RPC_PORT", "16123")
    flat = overrides(FlinkHome(tmp_path))
    assert (flat["rest.port"], flat["jobmanager.rpc.port"]) == (18081, 16123)
    assert (ClusterState().rest, ClusterState().worker_pool) == ("127.0.0.1:18081",
                                                                 "127.0.0.1:50000")


def test_a_port_variable_that_is_no_port_is_a_config_error(monkeypatch):
    from beamline.errors import ConfigError
    from beamline.flink.home import flink_ports

    monkeypatch.setenv("BEAMLINE_FLINK_WORKER_POOL_PORT", "50000x")
    with pytest.raises(ConfigError) as info:
        flink_ports()
    assert "$BEAMLINE_FLINK_WORKER_POOL_PORT is '50000x', not a TCP port" in str(info.value)
    assert info.value.exit_code == 2
