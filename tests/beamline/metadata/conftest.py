"""MariaDB for the shared-store tests: started with .ci/mariadb.sh (idempotent) when not running,
one fresh database per test session, dropped afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]
MARIADB_SH = PROJECT / ".ci" / "mariadb.sh"
PASSWORD_FILE = os.environ.get(
    "BEAMLINE_MYSQL_PASSWORD_FILE", "/var/lib/beamline-ci/mysql-password"
)
SOCKET = "/run/mysqld/mysqld.sock"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: minutes-long end-to-end runs (deselect with -m 'not slow')"
    )


@dataclass
class MariaDB:
    uri: str
    database: str
    password_file: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("BEAMLINE_MYSQL_PASSWORD", None)
        env["BEAMLINE_MYSQL_PASSWORD_FILE"] = self.password_file
        return env

    def root_sql(self, sql: str) -> str:
        """Runs SQL as MariaDB's root over the local socket (test set-up only)."""
        return subprocess.run(
            ["mariadb", f"--socket={SOCKET}", "-uroot", "-N", "-B"],
            input=sql,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def dump(self) -> str:
        return subprocess.run(
            ["mariadb-dump", f"--socket={SOCKET}", "-uroot", self.database],
            capture_output=True,
            text=True,
            check=True,
        ).stdout


@pytest.fixture(scope="session")
def mariadb():
    if os.geteuid() != 0 and not shutil.which("mariadbd"):
        pytest.fail("MariaDB is not installed; run .ci/mariadb.sh as root first.")
    database = f"beamline_t{uuid.uuid4().hex[:10]}"
    env = dict(os.environ, BEAMLINE_MYSQL_DB=database, BEAMLINE_MYSQL_PASSWORD_FILE=PASSWORD_FILE)
    result = subprocess.run(
        ["bash", str(MARIADB_SH)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    uri = result.stdout.strip().splitlines()[-1]
    assert uri.endswith("/" + database)
    db = MariaDB(uri, database, PASSWORD_FILE)
    yield db
    db.root_sql(f"DROP DATABASE IF EXISTS `{database}`;")
