"""What identifies a remote input (`gs://...`, any `scheme://`) whose bytes a run does not keep.

A remote file is not copied into the store: its manifest entry records what the storage says
identifies that content instead, so a later reader can tell whether the object is still the
one the run read, and say so.

- `gs://`: the object's metadata through the Cloud Storage client (google-cloud-storage, a TFX
  dependency): its generation (a new one for every write), ETag, MD5 and CRC32C, size and
  update time. Credentials as the client finds them (Application Default Credentials);
  `STORAGE_EMULATOR_HOST` points it at an emulator.
- anything else, and `gs://` when the client cannot be used (no credentials, not installed;
  not when the storage answered that there is no such object): TFX's own file system API
  (`tfx.dsl.io.fileio.stat`, the layer ExampleGen reads through): size and modification time,
  where the file system gives them.

Reading the identity never fails a run: what could not be read is recorded as `error`, and the
entry says the input cannot be checked.
"""

from __future__ import annotations

from typing import Any

GCS = "gs://"
TIMEOUT_S = 20.0  # one metadata request; a store that does not answer costs no more
# Keys an identity may hold, and nothing else (a manifest read back is checked against them).
FIELDS = ("read_by", "generation", "etag", "md5", "crc32c", "bytes", "updated", "mtime_ns",
          "error")


def identify(uri: str) -> dict[str, Any]:
    """The identity of remote file `uri`, as JSON-ready scalars (`read_by`: how it was read)."""
    failures = []
    if uri.startswith(GCS):
        try:
            return _gcs(uri)
        except FileNotFoundError as exc:  # the storage answered: there is no such object
            return {"read_by": None, "error": f"Cloud Storage: {_short(exc)}"}
        except Exception as exc:  # noqa: BLE001 - the client cannot be used: try TFX's API
            failures.append(f"Cloud Storage client: {_short(exc)}")
    try:
        return _fileio(uri)
    except Exception as exc:  # noqa: BLE001 - recorded, never raised (see the docstring)
        failures.append(f"TFX file system: {_short(exc)}")
    return {"read_by": None, "error": "; ".join(failures)}


def _gcs(uri: str) -> dict[str, Any]:
    import os

    from google.cloud import storage

    bucket, _, name = uri[len(GCS):].partition("/")
    # No project is needed to read one object's metadata; the client wants one all the same.
    client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or "beamline")
    blob = client.bucket(bucket).get_blob(name, timeout=TIMEOUT_S)
    if blob is None:
        raise FileNotFoundError(f"no object {uri}")
    return {
        "read_by": "gcs",
        "generation": str(blob.generation) if blob.generation is not None else None,
        "etag": blob.etag,
        "md5": blob.md5_hash,
        "crc32c": blob.crc32c,
        "bytes": blob.size,
        "updated": blob.updated.isoformat() if blob.updated else None,
    }


def _fileio(uri: str) -> dict[str, Any]:
    from tfx.dsl.io import fileio

    stat = fileio.stat(uri)
    return {"read_by": "fileio", "bytes": int(stat.length),
            "mtime_ns": int(stat.mtime_nsec) if stat.mtime_nsec else None}


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def checked(identity: Any) -> dict[str, Any] | None:
    """An identity read back from a manifest: a dict of known keys and scalar values, else
    ValueError (the manifest is damaged)."""
    if identity is None:
        return None
    if not isinstance(identity, dict) or any(
        k not in FIELDS or not isinstance(v, str | int | type(None)) or isinstance(v, bool)
        for k, v in identity.items()
    ):
        raise ValueError(f"remote identity {identity!r} is not one Beamline writes")
    return dict(identity)


def describe(identity: dict[str, Any] | None) -> str:
    """One line: what identifies the input, or why nothing does."""
    if not identity:
        return "nothing recorded to identify it"
    if identity.get("error"):
        return f"could not be identified ({identity['error']})"
    parts = []
    if identity.get("generation"):
        parts.append(f"generation {identity['generation']}")
    if identity.get("etag"):
        parts.append(f"ETag {identity['etag']}")
    if identity.get("bytes") is not None:
        parts.append(f"{identity['bytes']:,} bytes")
    if identity.get("updated"):
        parts.append(f"updated {identity['updated']}")
    elif identity.get("mtime_ns"):
        parts.append(f"modified {identity['mtime_ns']} ns")
    return ", ".join(parts) or "nothing recorded to identify it"
