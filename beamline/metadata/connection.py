"""ML Metadata connection configs from a `--metadata` value.

SQLite under the run root by default. (Shared MySQL/MariaDB stores are added here too.)
"""

from __future__ import annotations

from pathlib import Path


def sqlite_config(path: Path):
    """A ConnectionConfig for a SQLite store at `path` (created if missing)."""
    from ml_metadata.proto import metadata_store_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return config


def connection_config(metadata: str | None, default_sqlite: Path):
    """ConnectionConfig for `metadata` (None: SQLite at `default_sqlite`)."""
    if metadata is None:
        return sqlite_config(default_sqlite)
    if metadata.startswith("sqlite:///"):
        return sqlite_config(Path(metadata[len("sqlite:///") :]))
    from beamline.errors import ConfigError

    raise ConfigError(f"Unsupported --metadata value {metadata!r}: use sqlite:///PATH.")
