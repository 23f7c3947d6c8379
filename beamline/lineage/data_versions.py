"""A pipeline's data versions as `beamline data log` and the UI's data version page show them:
one home for the row both print (files, bytes, rows, span, the runs that read it, the model
versions trained on it with their labels, the command that restores it).

Rows are counted from what the runs recorded, never by re-reading the input files: the
ExampleStatistics of the first run of the version that ran StatisticsGen (train + eval splits).
"""

from __future__ import annotations

from pathlib import Path

from beamline.errors import BeamlineError
from beamline.lineage.payloads import examples_counted
from beamline.versions import log as vlog
from beamline.versions import manifest as mf


def version_rows(
    store, objects, pipeline: str, key: str | None = None, root: Path | None = None,
    metadata: str | None = None,
) -> list[dict]:
    """The pipeline's data versions, oldest first (with `key`: that one only, or none), each
    as a JSON-ready dict. A version whose manifest is gone or damaged is still listed, with
    `problem` saying why and no files."""
    versions = vlog.data_versions(vlog.runs_of(store, pipeline))
    if key is not None:
        versions = [v for v in versions if v.key == key]
    labels = vlog.labels_held(store, pipeline) if versions else {}
    return [_row(store, objects, v, labels, root, metadata) for v in versions]


def _row(store, objects, version: vlog.DataVersion, labels: dict[int, list[str]],
         root: Path | None, metadata: str | None) -> dict:
    problem = None
    try:
        manifest = mf.load(objects, version.key, mf.DATA_KIND)
    except BeamlineError as exc:  # deleted by gc, corrupt, forged: said, not raised
        manifest, problem = None, str(exc)
    return {
        "data_version": version.key,
        "files": [e.to_json() for e in manifest.files] if manifest else [],
        "bytes": manifest.total_bytes if manifest else None,
        "rows": examples_counted(vlog.statistics_uri(store, version)),
        "span": manifest.span if manifest else None,
        "extra_spans": list(manifest.extra_spans) if manifest else [],
        "runs": len(version.runs),
        "first_run": {"run_id": version.first.run_id, "time_ms": version.first.time_ms},
        "last_run": {"run_id": version.last.run_id, "time_ms": version.last.time_ms},
        "read_by": [{"run_id": r.run_id, "time_ms": r.time_ms, "code_version": r.code_key,
                     "pushed": r.pushed} for r in version.runs],
        "code_versions": sorted({r.code_key for r in version.runs if r.code_key}),
        "models": [{"version": v, "labels": labels.get(v, [])} for v in version.models],
        "checkout": vlog.run_checkout_command(version.first.run_id, root, metadata),
        "problem": problem,
    }
