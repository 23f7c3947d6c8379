"""What the local cluster exposes to other local users and web pages, and what its cache may
make it run (no Flink needed)."""

from __future__ import annotations

import json

import yaml

from beamline.flink.cluster import _flink_env, cluster_environment
from beamline.flink.config import write_config
from beamline.flink.fetch import installed_flink_version
from beamline.flink.home import FlinkHome
from beamline.redaction import SOURCES_ENV

CALLER = {
    "PATH": "/venv/bin:/usr/bin",
    "HOME": "/home/me",
    "JAVA_HOME": "/usr/lib/jvm/17",
    "LC_ALL": "C.UTF-8",
    "PYTHONPATH": "/src",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "FLINK_ENV_JAVA_OPTS": "-Xss4m",
    "BEAMLINE_FLINK_HOME": "/cache/flink",
    "BEAMLINE_MYSQL_PASSWORD": "mysql-pw-123",
    "BEAMLINE_KFP_TOKEN": "kfp-token-123",
    "BEAMLINE_UI_TOKEN": "ui-token-123",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-123",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/sa.json",
    "PYTHON_KEYRING_KEY": "keyring-123",
    "DATABASE_URL": "mysql://u:pw@db/x",
    SOURCES_ENV: json.dumps({"BEAMLINE_DB": "env"}),
    "BEAMLINE_DB": "declared-secret-123",
}
WITHHELD = {
    "BEAMLINE_MYSQL_PASSWORD", "BEAMLINE_KFP_TOKEN", "BEAMLINE_UI_TOKEN", "AWS_SECRET_ACCESS_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS", "PYTHON_KEYRING_KEY", "DATABASE_URL", SOURCES_ENV,
    "BEAMLINE_DB",
}


def test_cluster_processes_get_what_they_need_and_no_secret(tmp_path):
    home = FlinkHome(tmp_path)
    for env in (cluster_environment(CALLER), _flink_env(home, CALLER)):  # pool, JVMs
        for name in ("PATH", "HOME", "JAVA_HOME", "LC_ALL", "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL",
                     "FLINK_ENV_JAVA_OPTS", "BEAMLINE_FLINK_HOME"):
            assert env[name] == CALLER[name]
        assert not set(env) & WITHHELD
        assert not set(env.values()) & {CALLER[n] for n in WITHHELD}
    assert _flink_env(home, CALLER)["FLINK_CONF_DIR"] == str(home.conf_dir)


def test_variables_named_in_pass_env_reach_the_cluster():
    env = cluster_environment({**CALLER, "BEAMLINE_FLINK_PASS_ENV": "AWS_SECRET_ACCESS_KEY, X"})
    assert env["AWS_SECRET_ACCESS_KEY"] == "aws-secret-123"
    assert "X" not in env and "BEAMLINE_MYSQL_PASSWORD" not in env


def test_rest_api_answers_web_pages_of_its_own_origin_only(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAMLINE_FLINK_REST_PORT", "18081")
    home = FlinkHome(tmp_path)
    shipped = home.flink_dist / "conf"
    shipped.mkdir(parents=True)
    (shipped / "config.yaml").write_text("web:\n  access-control-allow-origin: '*'\n")
    config = yaml.safe_load(write_config(home).read_text())
    assert config["web"]["access-control-allow-origin"] == "http://127.0.0.1:18081"


def test_cached_flink_version_is_read_not_run(tmp_path):
    home = FlinkHome(tmp_path / "cache")
    marker = tmp_path / "ran"
    (home.flink_dist / "lib").mkdir(parents=True)
    (home.flink_dist / "lib" / "flink-dist-1.19.0.jar").touch()
    (home.flink_dist / "version.py").write_text(
        f'__version__ = "1.19.0"\nopen({str(marker)!r}, "w").close()\n'
    )
    assert installed_flink_version(home) == "1.19.0"
    assert not marker.exists()
    (home.flink_dist / "version.py").write_text('__version__ = "../../../x"\n')
    assert installed_flink_version(home) is None
