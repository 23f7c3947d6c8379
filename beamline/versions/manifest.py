"""Data and code versions as manifests: a list of files, each by store key, kept as an object.

A manifest names files by their path relative to where they were read (the data directory; for
code, `pipelines/...`, `components/...`, `schemas/...`), with each one's SHA-256 and size. Its
bytes are canonical JSON, so the same files give the same manifest and the same key: the key of
a data manifest *is* the data version, and an unchanged re-run adds no object. Remote inputs
(`gs://...`) are listed with `remote: true` and no key: their bytes are not kept, and
`identity` records what the storage says identifies them (generation, ETag, size, time:
beamline.versions.remote).

A manifest read back is checked before any of it is used: its kind, every key (64 hex digits)
and every path (relative, no `..`, written only inside the checkout directory).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from beamline.errors import DataError
from beamline.versions import remote as remote_inputs
from beamline.versions.store import ObjectStore, check_key

DATA_KIND = "beamline.data_version"
CODE_KIND = "beamline.code_version"
FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One file of a version."""

    path: str  # relative, '/'-separated; for a remote input, its URI
    sha256: str | None  # None for a remote input (not kept)
    bytes: int | None  # None for a remote input: no byte of it is kept
    remote: bool = False
    identity: dict | None = field(default=None, compare=False)  # a remote input's (see above)

    def to_json(self) -> dict:
        data: dict = {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}
        if self.remote:
            data["remote"] = True
            data["identity"] = self.identity
        return data


@dataclass(frozen=True)
class Manifest:
    kind: str
    files: tuple[Entry, ...]
    span: int | None = None
    extra_spans: tuple[int, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes or 0 for e in self.files)

    def to_json(self) -> dict:
        data: dict = {"kind": self.kind, "format": FORMAT,
                      "files": [e.to_json() for e in self.files]}
        if self.kind == DATA_KIND:
            data["span"] = self.span
            data["extra_spans"] = list(self.extra_spans)
        return data

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class KeptVersion:
    """A manifest kept in the store: its key, and how many of its bytes were new."""

    key: str
    manifest: Manifest
    added_bytes: int


def keep(
    store: ObjectStore, kind: str, files: Iterable[tuple[str, Path | str]],
    span: int | None = None, extra_spans: Iterable[int] = (),
) -> KeptVersion:
    """Puts each file (relative name, path) into the store, then its manifest: objects first, so
    a manifest never names an object that is not there."""
    entries = []
    added = 0
    for name, source in sorted(files, key=lambda pair: pair[0]):
        if isinstance(source, str) and "://" in source:
            entries.append(Entry(source, None, None, remote=True,
                                 identity=remote_inputs.identify(source)))
            continue
        stored = store.put_file(Path(source))
        added += stored.bytes if stored.added else 0
        entries.append(Entry(relative_name(name), stored.key, stored.bytes))
    manifest = Manifest(kind, tuple(entries), span, tuple(sorted(extra_spans)))
    stored = store.put_bytes(manifest.to_bytes())
    return KeptVersion(stored.key, manifest, added + (stored.bytes if stored.added else 0))


def relative_name(name: str) -> str:
    """`name` when it is a relative path that stays below its base ('/'-separated, no '..')."""
    path = PurePosixPath(name)
    bad = (
        not name or path.is_absolute() or "\\" in name or "\0" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
    )
    if bad:
        raise DataError(
            f"File name {name!r} in a version manifest is not a relative path below its "
            "directory (absolute, empty, or holding '..'): the manifest is damaged or forged. "
            "Nothing was written; check the run with `beamline data log PIPELINE`."
        )
    return name


def load(store: ObjectStore, key: str, kind: str) -> Manifest:
    """The manifest kept under `key`, hash-checked and validated."""
    raw = store.read_bytes(check_key(key))
    try:
        data = json.loads(raw)
        if data.get("kind") != kind:
            raise ValueError(f"kind {data.get('kind')!r}, expected {kind!r}")
        files = []
        for item in data["files"]:
            remote = bool(item.get("remote", False))
            sha = None if remote else check_key(item["sha256"])
            path = str(item["path"]) if remote else relative_name(str(item["path"]))
            size = item.get("bytes")
            identity = remote_inputs.checked(item.get("identity")) if remote else None
            files.append(Entry(path, sha, int(size) if size is not None else None, remote,
                               identity))
        span = data.get("span")
        return Manifest(kind, tuple(files), int(span) if span is not None else None,
                        tuple(int(s) for s in data.get("extra_spans", ())))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(
            f"Object {key} is not a readable {kind} manifest ({exc}): the record naming it is "
            "damaged. Check the run with `beamline data log PIPELINE`."
        ) from exc
