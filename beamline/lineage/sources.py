"""Source data of an ExampleGen execution: its files and their fingerprints.

TFX records, per split, `input_fingerprint` = "split:S,num_files:N,total_bytes:B,xor_checksum:X,
sum_checksum:Y" where the checksums combine the files' modification times (seconds). Files are
found again by globbing `input_base`/`input_config` patterns; today's size and mtime are checked
against the recorded fingerprint, and each file's SHA-256 is computed. When the runner recorded
per-file hashes (`beamline_source_files`: JSON list of {path, bytes, sha256}), those win.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline.lineage.model import Execution

SOURCE_FILES_PROPERTY = "beamline_source_files"


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


def sha256_file(path: str, limit_bytes: int = 2 * 1024**3) -> str | None:
    """Hex SHA-256 of a file (None if unreadable or larger than `limit_bytes`)."""
    try:
        if os.path.getsize(path) > limit_bytes:
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


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
