"""A kept version's files written out again, byte for byte, into an empty directory."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError, DataError
from beamline.versions import manifest as mf
from beamline.versions.store import ObjectStore

CODE_SUBDIR = "code"


@dataclass(frozen=True)
class Written:
    files: int
    bytes: int
    remote: tuple[str, ...]  # inputs not kept (gs://...): listed, not written


def require_empty(target: Path) -> None:
    """Refuses a directory that exists with anything in it, or a path that is not a directory."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"{target} is not an empty directory: a checkout writes only into a new or empty "
            "directory, so that no file of yours is overwritten and nothing else is mixed with "
            "the restored version. Pass --to a path that does not exist yet."
        )


def write_version(store: ObjectStore, key: str, kind: str, target: Path) -> Written:
    """Writes every kept file of manifest `key` under `target`, each hash-checked on the way."""
    manifest = mf.load(store, key, kind)
    base = target.resolve()
    count = size = 0
    for entry in manifest.files:
        if entry.remote:
            continue
        dest = (base / entry.path).resolve()
        if not dest.is_relative_to(base) or dest == base:
            raise DataError(
                f"File {entry.path!r} of version {key} would be written to {dest}, outside "
                f"{base}: the manifest is damaged or forged. Nothing more was written."
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.copy_out(entry.sha256, dest)
        count += 1
        size += entry.bytes or 0
    return Written(count, size, tuple(e.path for e in manifest.files if e.remote))


def checkout(
    store: ObjectStore, data_key: str, code_key: str | None, target: Path
) -> tuple[Written, Written | None]:
    """The data version's files under `target`, and with `code_key` the code version's under
    `target/code/`."""
    require_empty(target)
    target.mkdir(parents=True, exist_ok=True)
    # Under the store's shared lock: `beamline gc` deletes nothing while the files are read.
    with store.locked() if store.directory.is_dir() else contextlib.nullcontext():
        data = write_version(store, data_key, mf.DATA_KIND, target)
        code = None
        if code_key:
            code = write_version(store, code_key, mf.CODE_KIND, target / CODE_SUBDIR)
    return data, code
