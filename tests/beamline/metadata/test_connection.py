"""--metadata values: SQLite, mysql:// URIs, config files, passwords, fast unreachable errors."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from beamline.errors import ConfigError, MetadataUnreachable
from beamline.metadata import connection as conn


@pytest.fixture(autouse=True)
def no_password_env(monkeypatch):
    monkeypatch.delenv(conn.PASSWORD_ENV, raising=False)
    monkeypatch.delenv(conn.PASSWORD_FILE_ENV, raising=False)


def test_sqlite_default_and_uri_keep_working(tmp_path):
    config = conn.connection_config(None, tmp_path / "m.sqlite")
    assert config.sqlite.filename_uri == str(tmp_path / "m.sqlite")
    config = conn.connection_config(f"sqlite:///{tmp_path}/x.sqlite", tmp_path / "unused")
    assert config.sqlite.filename_uri == f"{tmp_path}/x.sqlite"
    assert conn.sqlite_config(tmp_path / "y.sqlite").sqlite.filename_uri.endswith("y.sqlite")


def test_mysql_uri_parsing():
    target = conn.parse_mysql_uri("mysql://team@db.internal:3307/mlmd")
    assert (target.user, target.host, target.port, target.database) == (
        "team",
        "db.internal",
        3307,
        "mlmd",
    )
    local = conn.parse_mysql_uri("mysql://u@localhost/mlmd")
    assert (local.host, local.port) == ("127.0.0.1", 3306)  # TCP, not the client's socket default
    sock = conn.parse_mysql_uri("mysql://u@localhost/mlmd?socket=/run/m.sock&skip_db_creation=1")
    assert sock.socket == "/run/m.sock" and sock.skip_db_creation
    for bad in ("mysql://host/db", "mysql://u@host/", "mysql://u@host/db?colour=red"):
        with pytest.raises(ConfigError):
            conn.parse_mysql_uri(bad)


@pytest.mark.parametrize(
    "uri, fix",
    [
        ("postgres://u@h/db", "Give mysql://USER@HOST:PORT/DATABASE"),
        ("mysql://u@h:99999/db", "Give a number from 1 to 65535"),
        ("mysql://u@h:port/db", "or leave it out for 3306"),
    ],
)
def test_a_bad_uri_is_refused_naming_the_fix(uri, fix):
    with pytest.raises(ConfigError, match="--metadata") as info:
        conn.parse_mysql_uri(uri)
    assert fix in str(info.value)


def test_password_in_uri_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as info:
        conn.connection_config("mysql://u:hunter2@h/db", Path("/unused"), check=False)
    assert "hunter2" not in str(info.value)
    assert conn.PASSWORD_ENV in str(info.value)


def test_password_from_env_then_file(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.setenv(conn.PASSWORD_FILE_ENV, str(secret))
    config = conn.connection_config("mysql://u@h:1/db", Path("/unused"), check=False)
    assert config.mysql.password == "from-file"
    assert config.retry_options.max_num_retries > 0
    monkeypatch.setenv(conn.PASSWORD_ENV, "from-env")
    assert conn.connection_config("mysql://u@h/db", Path("/x"), check=False).mysql.password == (
        "from-env"
    )
    monkeypatch.delenv(conn.PASSWORD_ENV)
    monkeypatch.setenv(conn.PASSWORD_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="password file"):
        conn.connection_config("mysql://u@h/db", Path("/x"), check=False)


def test_config_file(tmp_path):
    (tmp_path / "pw").write_text("s3cret")
    cfg = tmp_path / "metadata.ini"
    cfg.write_text("[metadata]\nuri = mysql://team@db:3306/mlmd\npassword_file = pw\n")
    config = conn.connection_config(str(cfg), Path("/unused"), check=False)
    assert (config.mysql.user, config.mysql.host, config.mysql.password) == ("team", "db", "s3cret")
    assert conn.target_of(config) == "mysql://team@db:3306/mlmd"
    inline = tmp_path / "inline.ini"
    inline.write_text("[metadata]\nuri = mysql://team@db/mlmd\npassword = nope\n")
    with pytest.raises(ConfigError, match="password_file"):
        conn.connection_config(str(inline), Path("/unused"), check=False)
    with pytest.raises(ConfigError, match="nothing-here: no such file"):
        conn.connection_config(str(tmp_path / "nothing-here"), Path("/unused"))


def test_a_sqlite_path_is_known_by_its_header_or_by_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"  # no suffix: SQLite's header says what it is
    store.write_bytes(conn.SQLITE_MAGIC + bytes(100))
    assert conn.sqlite_path("store", Path("/unused")) == store
    assert conn.sqlite_path("new/m.sqlite", Path("/unused")) == tmp_path / "new" / "m.sqlite"
    assert conn.sqlite_path(None, tmp_path / "d.sqlite") == tmp_path / "d.sqlite"
    assert conn.sqlite_path("mysql://u@h/db", Path("/unused")) is None
    with pytest.raises(ConfigError, match="no such file, and not a URI"):
        conn.sqlite_path("sqlite:/x.sqlite", Path("/unused"))  # a mistyped URI is no file name


def test_closed_port_fails_fast_in_one_line(closed_port):
    # Fast means: the refused connect is the answer (no wait for the connect timeout to pass).
    port = closed_port
    with pytest.raises(MetadataUnreachable) as info:
        conn.connection_config(f"mysql://u@127.0.0.1:{port}/db", Path("/unused"))
    message = str(info.value)
    assert "\n" not in message and f"127.0.0.1:{port}" in message and "unreachable" in message
    assert "no answer within" not in message, message  # refused, not timed out
    assert info.value.exit_code == 5


def _serve(greeting: bytes | None):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def loop():
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            if greeting is not None:
                client.sendall(greeting)
            with client:  # hold the connection until the client under test hangs up
                try:
                    while client.recv(4096):
                        pass
                except OSError:  # a reset is a hang-up too
                    pass

    threading.Thread(target=loop, daemon=True).start()
    return server


def test_something_else_listening_is_reported():
    server = _serve(b"SSH-2.0-OpenSSH_9.2\r\n")
    try:
        port = server.getsockname()[1]
        with pytest.raises(MetadataUnreachable, match="not a MySQL/MariaDB server"):
            conn.connection_config(f"mysql://u@127.0.0.1:{port}/db", Path("/unused"))
    finally:
        server.close()


def test_silent_server_times_out(monkeypatch):
    server = _serve(None)
    monkeypatch.setattr(conn, "CONNECT_TIMEOUT_S", 0.5)
    try:
        port = server.getsockname()[1]
        with pytest.raises(MetadataUnreachable, match="no answer"):
            conn.check_reachable(
                conn.connection_config(f"mysql://u@127.0.0.1:{port}/db", Path("/x"), check=False),
                timeout=0.5,
            )
    finally:
        server.close()


def test_reading_a_missing_sqlite_store(tmp_path):
    with pytest.raises(MetadataUnreachable, match="No metadata store"):
        conn.open_existing(None, tmp_path / "metadata.sqlite")
    assert not (tmp_path / "metadata.sqlite").exists()
