"""ML Metadata connection configs from a `--metadata` value, and a fast reachability check.

Accepted `--metadata` values:
- nothing: SQLite under the run root;
- the path of a SQLite store (absolute or relative; recognised by SQLite's file header, or, for
  a file that does not exist yet, by a name ending .sqlite or .db);
- `sqlite:///PATH` (three slashes then PATH: `sqlite:////abs/path` for an absolute one);
- `mysql://USER@HOST:PORT/DB` (MySQL or MariaDB; optional `?socket=PATH&skip_db_creation=1`);
- a path to a config file (INI) with a `[metadata]` section: `uri = mysql://...` and optionally
  `password_file = PATH`.

The MySQL password is never part of the URI (a URI that carries one is refused): it comes from
the environment variable `BEAMLINE_MYSQL_PASSWORD`, or from the file named by
`BEAMLINE_MYSQL_PASSWORD_FILE` (or the config file's `password_file`). `describe()` gives a form
safe for logs. Nothing heavy is imported at module import time.
"""

from __future__ import annotations

import configparser
import os
import random
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from beamline.errors import ConfigError, MetadataUnreachable
from beamline.settings import is_uri

PASSWORD_ENV = "BEAMLINE_MYSQL_PASSWORD"
PASSWORD_FILE_ENV = "BEAMLINE_MYSQL_PASSWORD_FILE"
DEFAULT_MYSQL_PORT = 3306
CONNECT_TIMEOUT_S = 3.0
MYSQL_TRANSACTION_RETRIES = 10
# Errors MLMD raises when several processes open (and so initialize) a fresh database at once.
_TRANSIENT = ("subset of tables", "deadlock", "try restarting transaction", "please retry")
OPEN_ATTEMPTS = 20
SQLITE_PREFIX = "sqlite:///"
# The first 16 bytes of every SQLite database file.
SQLITE_MAGIC = b"SQLite format 3\x00"
# A --metadata path that does not exist yet is a SQLite store to create if it ends so.
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
ACCEPTED = (
    "the path of a SQLite store file (e.g. beamline_runs/metadata.sqlite), sqlite:///PATH "
    "(an absolute path needs four slashes: sqlite:////abs/metadata.sqlite), "
    "mysql://USER@HOST:PORT/DB, or the path of a metadata config file"
)


@dataclass(frozen=True)
class MySQLTarget:
    """A parsed `mysql://` URI (no password: that is looked up separately)."""

    user: str
    host: str
    port: int
    database: str
    socket: str = ""
    skip_db_creation: bool = False

    def describe(self) -> str:
        if self.socket:
            return f"mysql://{self.user}@localhost/{self.database}?socket={self.socket}"
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def sqlite_config(path: Path):
    """A ConnectionConfig for a SQLite store at `path` (created if missing)."""
    from ml_metadata.proto import metadata_store_pb2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return config


def parse_mysql_uri(uri: str) -> MySQLTarget:
    """Parses `mysql://USER@HOST[:PORT]/DB[?socket=PATH&skip_db_creation=1]`."""
    parts = urlsplit(uri)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ConfigError(
            f"--metadata {_redact(uri)!r} is not a mysql:// URI. Give "
            "mysql://USER@HOST:PORT/DATABASE, sqlite:///PATH, or a path to a metadata config file."
        )
    if parts.password is not None:
        raise ConfigError(
            "The --metadata URI must not contain a password (it would show in shell history, "
            "`ps` and logs). Use mysql://USER@HOST:PORT/DB and put the password in "
            f"${PASSWORD_ENV} or in a file named by ${PASSWORD_FILE_ENV}."
        )
    user = unquote(parts.username or "")
    database = parts.path.lstrip("/")
    try:
        port = parts.port or DEFAULT_MYSQL_PORT
    except ValueError as exc:
        raise ConfigError(
            f"--metadata {uri!r} has a bad port ({exc}). Give a number from 1 to 65535, as in "
            "mysql://USER@HOST:3306/DATABASE, or leave it out for 3306."
        ) from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"socket", "skip_db_creation"}
    if not user or not database or "/" in database or unknown:
        raise ConfigError(
            f"Cannot use --metadata {uri!r}: expected mysql://USER@HOST:PORT/DATABASE "
            "(optional ?socket=PATH&skip_db_creation=1)"
            + (f"; unknown options: {', '.join(sorted(unknown))}." if unknown else ".")
        )
    host = parts.hostname or "127.0.0.1"
    # The MySQL client treats "localhost" as "use the default Unix socket"; we mean TCP.
    if host == "localhost" and not query.get("socket"):
        host = "127.0.0.1"
    return MySQLTarget(
        user=user,
        host=host,
        port=port,
        database=database,
        socket=query.get("socket", ""),
        skip_db_creation=query.get("skip_db_creation", "0").lower() in ("1", "true", "yes"),
    )


def _redact(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@", 1)


def mysql_password(password_file: str | None = None) -> str:
    """The password from $BEAMLINE_MYSQL_PASSWORD, else from a file ($..._FILE or the argument)."""
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    path = os.environ.get(PASSWORD_FILE_ENV) or password_file
    if not path:
        return ""
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the MySQL password file {path} ({exc.strerror}). Set "
            f"${PASSWORD_FILE_ENV} to a readable file, or the password in ${PASSWORD_ENV}."
        ) from None


def mysql_config(target: MySQLTarget, password: str):
    """A ConnectionConfig for a MySQL/MariaDB store."""
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.mysql.user = target.user
    config.mysql.password = password
    config.mysql.database = target.database
    if target.socket:
        config.mysql.socket = target.socket
    else:
        config.mysql.host = target.host
        config.mysql.port = target.port
    config.mysql.skip_db_creation = target.skip_db_creation
    # MLMD retries transactions MySQL aborts (deadlocks between concurrent runs).
    config.retry_options.max_num_retries = MYSQL_TRANSACTION_RETRIES
    return config


def _read_config_file(path: Path) -> tuple[str, str | None]:
    parser = configparser.ConfigParser()
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except UnicodeDecodeError:
        raise ConfigError(
            f"--metadata {path} is neither a SQLite store (it lacks SQLite's file header) nor a "
            f"text metadata config file. Give {ACCEPTED}."
        ) from None
    except (OSError, configparser.Error) as exc:
        reason = " ".join(str(exc).split())  # configparser's text spans lines
        raise ConfigError(
            f"Cannot read metadata config file {path}: {reason}. Point --metadata at a readable "
            "INI file with a [metadata] section, or give a URI (sqlite:///PATH, "
            "mysql://USER@HOST:PORT/DB) or the path of a SQLite store."
        ) from None
    if not parser.has_option("metadata", "uri"):
        raise ConfigError(
            f"Metadata config file {path} needs a [metadata] section with `uri = mysql://USER@"
            "HOST:PORT/DB` (and optionally `password_file = PATH`)."
        )
    if parser.has_option("metadata", "password"):
        raise ConfigError(
            f"Metadata config file {path} has a `password` entry: put the password in its own "
            "file (mode 600) and name it with `password_file = PATH` instead."
        )
    password_file = parser.get("metadata", "password_file", fallback=None)
    if password_file and not Path(password_file).is_absolute():
        password_file = str(path.parent / password_file)
    return parser.get("metadata", "uri"), password_file


# `sqlite:/x.db`, `postgres:...`: a mistyped URI, not a file name to create.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class _Target:
    """Where a --metadata value points: a SQLite file, or a MySQL URI (+ its password file)."""

    sqlite: Path | None = None
    uri: str = ""
    password_file: str | None = None


def is_sqlite_file(path: Path) -> bool:
    """True if `path` is a file that starts with SQLite's header."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _target(metadata: str | None, default_sqlite: Path) -> _Target:
    if metadata is None:
        return _Target(sqlite=Path(default_sqlite))
    if metadata.startswith(SQLITE_PREFIX):
        return _Target(sqlite=Path(metadata[len(SQLITE_PREFIX) :]))
    if is_uri(metadata):
        return _Target(uri=metadata)
    path = Path(metadata).expanduser()
    if path.is_dir():
        raise ConfigError(
            f"--metadata {metadata} is a directory: for a run root use --root {metadata}, for "
            f"its store give the file, {path / 'metadata.sqlite'}."
        )
    if path.is_file():
        if is_sqlite_file(path):
            return _Target(sqlite=path.absolute())
        uri, password_file = _read_config_file(path)
        if uri.startswith(SQLITE_PREFIX):
            return _Target(sqlite=Path(uri[len(SQLITE_PREFIX) :]))
        return _Target(uri=uri, password_file=password_file)
    if path.suffix in SQLITE_SUFFIXES and not _SCHEME.match(metadata):
        # Not there yet: a store a run creates (reading commands say there is none).
        return _Target(sqlite=path.absolute())
    raise ConfigError(
        f"--metadata {metadata}: no such file, and not a URI. Give {ACCEPTED}."
    )


def sqlite_path(metadata: str | None, default_sqlite: Path) -> Path | None:
    """The SQLite file `metadata` names (None: `default_sqlite`), or None for a MySQL store."""
    return _target(metadata, default_sqlite).sqlite


def describe(metadata: str | None, default_sqlite: Path) -> str:
    """A log-safe description of where metadata goes."""
    if metadata is None:
        return f"{SQLITE_PREFIX}{default_sqlite}"
    if not is_uri(metadata) and is_sqlite_file(Path(metadata).expanduser()):
        return f"{SQLITE_PREFIX}{Path(metadata).expanduser().absolute()}"
    return _redact(metadata)


def connection_config(metadata: str | None, default_sqlite: Path, *, check: bool = True):
    """ConnectionConfig for `metadata` (None: SQLite at `default_sqlite`).

    With `check` (the default), a MySQL store is probed first, so an unreachable database fails
    in one line (MetadataUnreachable) before any pipeline work starts.
    """
    target = _target(metadata, default_sqlite)
    if target.sqlite is not None:
        return sqlite_config(target.sqlite)
    uri = target.uri
    if uri.startswith(("mysql://", "mariadb://")):
        mysql = parse_mysql_uri(uri)
        config = mysql_config(mysql, mysql_password(target.password_file))
        if check:
            check_reachable(config)
        return config
    raise ConfigError(f"Unsupported --metadata value {_redact(uri)!r}: give {ACCEPTED}.")


def target_of(config) -> str:
    """A log-safe description of a ConnectionConfig."""
    kind = config.WhichOneof("config")
    if kind == "sqlite":
        return f"sqlite:///{config.sqlite.filename_uri}"
    if kind == "mysql":
        m = config.mysql
        if m.socket:
            return f"mysql://{m.user}@localhost/{m.database}?socket={m.socket}"
        return f"mysql://{m.user}@{m.host}:{m.port or DEFAULT_MYSQL_PORT}/{m.database}"
    return kind or "unknown"


def _quiet_stderr():
    """Silences fd 2 (MLMD's C++ logs a multi-line hint on every failed MySQL connect)."""
    from beamline.quiet import held_stderr

    return held_stderr(keep=lambda line: False)


def check_reachable(config, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raises MetadataUnreachable (one line) unless the store in `config` can be opened.

    For MySQL: a TCP (or Unix socket) connect with a short timeout, then an MLMD open, which
    logs in and creates the schema if needed. SQLite: the directory must be writable.
    """
    kind = config.WhichOneof("config")
    where = target_of(config)
    if kind == "sqlite":
        parent = Path(config.sqlite.filename_uri).parent
        if not os.access(parent, os.W_OK):
            raise MetadataUnreachable(
                f"Metadata store {where}: directory {parent} is not writable."
            )
        return
    if kind != "mysql":
        return
    _probe_mysql(config, timeout)
    open_store(config)


def _probe_mysql(config, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Connects and reads the server's greeting: fails fast when no MySQL server answers."""
    where = target_of(config)
    m = config.mysql
    try:
        if m.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(m.socket)
        else:
            sock = socket.create_connection((m.host, m.port or DEFAULT_MYSQL_PORT), timeout)
        with sock:
            sock.settimeout(timeout)
            greeting = sock.recv(512)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, socket.timeout):
            reason = f"no answer within {timeout:g} s"
        raise MetadataUnreachable(
            f"Metadata store {where} is unreachable ({reason}); start the database or fix "
            "--metadata (nothing was run)."
        ) from None
    # A MySQL/MariaDB greeting: 3-byte length, sequence id, then protocol version 10, or an
    # error packet (0xff, 2-byte code, message) e.g. when the host is not allowed to connect.
    if len(greeting) > 4 and greeting[4] == 0xFF:
        message = greeting[7:].decode("utf-8", "replace").lstrip("#").strip()
        raise MetadataUnreachable(f"Metadata store {where} refused the connection: {message}.")
    if len(greeting) < 5 or greeting[4] != 10:
        raise MetadataUnreachable(
            f"Metadata store {where}: something answers there but it is not a MySQL/MariaDB "
            "server; check the host and port in --metadata (nothing was run)."
        )


def open_store(config):
    """A MetadataStore for `config`; a failure to log in or open is a MetadataUnreachable.

    Opening a fresh MySQL database creates MLMD's schema; when several runs start together
    against it, all but one see a half-created schema or a deadlock, so those errors are retried.
    """
    from ml_metadata.metadata_store import metadata_store

    attempt = 0
    while True:
        attempt += 1
        try:
            with _quiet_stderr():
                return metadata_store.MetadataStore(config)
        except Exception as exc:  # MLMD raises RuntimeError or its own errors
            text = str(exc).lower()
            if attempt < OPEN_ATTEMPTS and any(t in text for t in _TRANSIENT):
                time.sleep(0.1 * attempt + random.random() * 0.2)
                continue
            raise _unopenable(config, exc) from None


def _unopenable(config, exc: Exception) -> MetadataUnreachable:
    where = target_of(config)
    if config.WhichOneof("config") == "mysql":
        text = str(exc).strip()
        if "mysql_real_connect" in text or not text:
            hint = (
                f"the server answered but login or opening database {config.mysql.database!r} "
                f"failed: check the user, the password (${PASSWORD_ENV} or ${PASSWORD_FILE_ENV})"
                " and the user's grants"
            )
        else:
            hint = text.splitlines()[0][:300]
    else:
        hint = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return MetadataUnreachable(f"Metadata store {where} cannot be opened: {hint}.")


def open_existing(metadata: str | None, default_sqlite: Path):
    """A MetadataStore for reading (commands that only query): a missing SQLite file is an error
    (MetadataUnreachable), never a new empty store."""
    path = sqlite_path(metadata, default_sqlite)
    if path is not None and not path.is_file():
        raise no_store(path, metadata)
    config = connection_config(metadata, default_sqlite, check=False)
    if config.WhichOneof("config") == "mysql":
        _probe_mysql(config)
    return open_store(config)


def no_store(path: Path, metadata: str | None = None) -> MetadataUnreachable:
    """The error for a SQLite store that does not exist (the same for --root and --metadata)."""
    relative = ""
    if metadata is not None and metadata.startswith(SQLITE_PREFIX) and not path.is_absolute():
        relative = (
            f" {metadata} is a path relative to the working directory: an absolute path needs "
            f"four slashes (sqlite:////abs/metadata.sqlite), or pass the file's path itself."
        )
    return MetadataUnreachable(
        f"No metadata store at {path.absolute()}: nothing has run there yet.{relative} Run a "
        "pipeline first, or point --root / --metadata at an existing store."
    )
