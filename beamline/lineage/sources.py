"""Source data of an ExampleGen execution: its files and their fingerprints.

TFX records, per split, `input_fingerprint` = "split:S,num_files:N,total_bytes:B,xor_checksum:X,
sum_checksum:Y" where the checksums combine the files' modification times (seconds). Files are
found again by globbing `input_base`/`input_config` patterns; today's size and mtime are checked
against the recorded fingerprint, and each file's SHA-256 is computed. When the runner recorded
per-file hashes (`beamline_source_files`: JSON list of {path, bytes, sha256}), those win.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.lineage.model import Execution

SOURCE_FILES_PROPERTY = "beamline_source_files"
# Larger source files are listed without a hash.
MAX_HASHED_BYTES = 2 * 1024**3
# Hashes remembered (one per file version); a pipeline's sources are rarely more files.
HASH_CACHE_ENTRIES = 4096


@dataclass
class SplitFingerprint:
    split: str
    num_files: int
    total_bytes: int
    xor_checksum: int
    sum_checksum: int

    def describe(self) -> str:
        return f"{self.num_files} file(s), {self.total_bytes} bytes"


def parse_fingerprint(text: str | None) -> list[SplitFingerprint]:
    """TFX's `input_fingerprint` (one line per split) as records; unparsable parts are skipped."""
    out = []
    for line in (text or "").splitlines():
        fields = dict(part.split(":", 1) for part in line.split(",") if ":" in part)
        try:
            out.append(
                SplitFingerprint(
                    split=fields.get("split", ""),
                    num_files=int(fields.get("num_files", 0)),
                    total_bytes=int(fields.get("total_bytes", 0)),
                    xor_checksum=int(fields.get("xor_checksum", 0)),
                    sum_checksum=int(fields.get("sum_checksum", 0)),
                )
            )
        except ValueError:
            continue
    return out


def fingerprint_files(split: str, paths: list[str]) -> SplitFingerprint:
    """TFX's fingerprint of `paths` as they are now (tfx.utils.io_utils.generate_fingerprint)."""
    total = xor = summed = 0
    for path in paths:
        stat = os.stat(path)
        total += stat.st_size
        mtime = int(stat.st_mtime_ns // 1_000_000_000)
        xor ^= mtime
        summed += mtime
    return SplitFingerprint(split, len(paths), total, xor, summed)


def sha256_file(path: str, limit_bytes: int = MAX_HASHED_BYTES) -> str | None:
    """Hex SHA-256 of a regular file (None if unreadable, not a regular file, or larger than
    `limit_bytes`). Remembered per file version: see `_cached_sha256`."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit_bytes:
        return None
    try:
        return _cached_sha256(
            path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns
        )
    except OSError:
        return None


@functools.lru_cache(maxsize=HASH_CACHE_ENTRIES)
def _cached_sha256(
    path: str, dev: int, inode: int, size: int, mtime_ns: int, ctime_ns: int
) -> str | None:
    """The run page shows source hashes on every render, and a live run's page re-renders every
    2 s: without this, each view re-read every source file (up to 2 GiB each). The stat fields
    are the key, so a rewritten or replaced file is hashed again."""
    del dev, inode, mtime_ns, ctime_ns  # only the key
    # O_NONBLOCK: a pipe swapped in after the stat above cannot hang the caller.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        left = size
        while left > 0:
            block = handle.read(min(left, 1 << 20))
            if not block:
                break
            digest.update(block)
            left -= len(block)
        return digest.hexdigest()


@dataclass
class SourceFile:
    path: str
    split: str
    bytes: int | None
    sha256: str | None
    recorded: bool  # hash recorded at run time (else computed now)


@dataclass
class SourceData:
    """What an ExampleGen execution read."""

    execution_id: int
    input_base: str
    fingerprints: list[SplitFingerprint]
    files: list[SourceFile] = field(default_factory=list)
    # Per split: do today's files still match the fingerprint recorded at run time?
    unchanged_since_run: dict[str, bool] = field(default_factory=dict)
    span: int | None = None
    version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _patterns(ex: Execution) -> list[tuple[str, str]]:
    config = ex.prop("input_config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            config = None
    splits = (config or {}).get("splits") or [{"name": "single_split", "pattern": "*"}]
    return [(s.get("name", ""), s.get("pattern", "*")) for s in splits]


def is_example_gen(ex: Execution) -> bool:
    return ex.prop("input_base") is not None


def source_data(ex: Execution, fingerprint_from: Execution | None = None) -> SourceData:
    """Files behind an ExampleGen execution (`fingerprint_from`: the execution that recorded the
    fingerprint, when `ex` is a cached reuse that did not)."""
    recorder = fingerprint_from or ex
    base = str(ex.prop("input_base") or "")
    data = SourceData(
        execution_id=ex.id,
        input_base=base,
        fingerprints=parse_fingerprint(recorder.prop("input_fingerprint")),
        span=recorder.prop("span"),
        version=recorder.prop("version"),
    )
    recorded = recorder.prop(SOURCE_FILES_PROPERTY)
    if isinstance(recorded, str):
        try:
            recorded = json.loads(recorded)
        except ValueError:
            recorded = None
    if isinstance(recorded, list) and recorded:
        for item in recorded:
            data.files.append(
                SourceFile(
                    path=str(item.get("path", "")),
                    split=str(item.get("split", "")),
                    bytes=item.get("bytes"),
                    sha256=item.get("sha256"),
                    recorded=True,
                )
            )
    by_split = {fp.split: fp for fp in data.fingerprints}
    for split, pattern in _patterns(ex):
        if os.path.isfile(base):
            paths = [base]
        else:
            paths = sorted(p for p in glob.glob(os.path.join(base, pattern)) if os.path.isfile(p))
        if split in by_split:
            now = fingerprint_files(split, paths)
            then = by_split[split]
            data.unchanged_since_run[split] = (
                now.num_files,
                now.total_bytes,
                now.xor_checksum,
                now.sum_checksum,
            ) == (then.num_files, then.total_bytes, then.xor_checksum, then.sum_checksum)
        if not (isinstance(recorded, list) and recorded):
            for path in paths:
                data.files.append(
                    SourceFile(
                        path=path,
                        split=split,
                        bytes=os.path.getsize(path),
                        sha256=sha256_file(path),
                        recorded=False,
                    )
                )
    return data


def file_matches(ex: Execution, path: str) -> bool:
    """Whether data file `path` is (or was) among the files `ex`'s input_base/patterns cover."""
    base = str(ex.prop("input_base") or "")
    if not base:
        return False
    path = os.path.abspath(path)
    base_abs = os.path.abspath(base)
    if path == base_abs:
        return True
    if os.path.isdir(path):
        return base_abs == path or base_abs.startswith(path.rstrip(os.sep) + os.sep)
    for _, pattern in _patterns(ex):
        if fnmatch.fnmatch(path, os.path.join(base_abs, pattern)):
            return True
    return False
