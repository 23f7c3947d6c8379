"""Which kept objects `beamline gc` deletes, and where the store's bytes go (`beamline data du`).

A run *keeps* its data and code versions (and every object their manifests name) when it is

- live: stamped `running` and its runner not known dead (beamline.metadata.liveness), so
  whatever it named is what it reads now;
- one of its pipeline's newest N runs with a version (`gc --keep-data N`; without it, every
  run keeps its versions and gc frees only objects no run names);
- of a pipeline other than `gc --pipeline NAME`'s;
- one that pushed a model version that holds a label or ever held one (`--labelled ever`, the
  default), or only one that holds a label now or that a label's rollback returns to
  (`--labelled now`): beamline.models.retention.labelled_versions.

Every object no kept run names goes. Candidates come from listing the store directory, never
from a record: a key a record names only ever keeps an object. A kept run whose manifest cannot
be read (corrupted, forged) names objects gc cannot know, so then nothing is deleted, and the
run is named. Objects are deleted under the store's exclusive lock, which a run holds shared from
keeping its versions to naming them (beamline.versions.record.keep_run): an object a live
run has put but not named yet is never seen as unreferenced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from beamline.errors import BeamlineError
from beamline.metadata import run_context as rc
from beamline.versions import manifest as mf
from beamline.versions.store import ObjectStore, StoreBusy, check_key


@dataclass(frozen=True)
class Policy:
    """What gc keeps: see the module docstring. `labelled`: (pipeline, model version) -> why
    its data stays (beamline.models.retention.labelled_versions reads the label history)."""

    keep_runs: int | None = None
    labelled: dict[tuple[str, int], str] = field(default_factory=dict)
    pipeline: str | None = None


@dataclass(frozen=True)
class RunRef:
    """A run that names a data or code version."""

    run_id: str
    pipeline: str
    time_ms: int
    data_key: str
    code_key: str
    live: bool

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(k, kind) for k, kind in ((self.data_key, mf.DATA_KIND),
                                          (self.code_key, mf.CODE_KIND)) if k]


@dataclass
class Plan:
    """What gc would delete (`free`: key -> bytes) and why the rest stays."""

    objects: dict[str, int]  # every object in the store -> its size
    free: dict[str, int] = field(default_factory=dict)
    kept_runs: dict[str, list[str]] = field(default_factory=dict)  # run id -> why
    dropped_runs: list[str] = field(default_factory=list)  # runs whose versions may go
    missing: list[str] = field(default_factory=list)  # kept keys whose object is gone
    refused: list[str] = field(default_factory=list)
    blocked: str | None = None  # why nothing is deleted

    @property
    def free_bytes(self) -> int:
        return sum(self.free.values())


@dataclass
class Swept:
    """What gc deleted (or, in a dry run, would delete)."""

    plan: Plan
    dry_run: bool
    removed: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    skipped: str | None = None

    def to_json(self) -> dict:
        plan = self.plan
        return {
            "dry_run": self.dry_run,
            "objects": len(plan.objects),
            "bytes": sum(plan.objects.values()),
            "freed_objects": len(self.removed),
            "freed_bytes": sum(self.removed.values()),
            "removed": sorted(self.removed),
            "kept_runs": len(plan.kept_runs),
            "dropped_runs": list(plan.dropped_runs),
            "missing": list(plan.missing),
            "refused": plan.refused + self.refused,
            "skipped": self.skipped or plan.blocked,
        }

    def describe(self) -> str:
        plan = self.plan
        why = self.skipped or plan.blocked
        if why:
            return f"objects: nothing deleted: {why}"
        verb = "would free" if self.dry_run else "freed"
        return (
            f"objects: {verb} {len(self.removed)} object(s), {sum(self.removed.values()):,} "
            f"bytes; kept {len(plan.objects) - len(self.removed)} object(s) named by "
            f"{len(plan.kept_runs)} run(s)"
        )


def run_refs(store) -> list[RunRef]:
    """Every run that named a data or code version, oldest first."""
    from beamline.metadata.liveness import runner_alive
    from beamline.versions.log import run_contexts

    refs = []
    for ctx in run_contexts(store):
        props = rc.properties_of(ctx)
        data, code = str(props.get(rc.DATA_VERSION) or ""), str(props.get(rc.CODE_VERSION) or "")
        if not (data or code):
            continue
        # Unknown liveness (no runner stamps) counts as live: gc never guesses a run dead.
        live = props.get(rc.STATE) == rc.RunState.RUNNING and runner_alive(props) is not False
        refs.append(RunRef(ctx.name, str(props.get(rc.PIPELINE) or ""),
                           ctx.create_time_since_epoch, data, code, live))
    return refs


def _kept_runs(store, refs: list[RunRef], policy: Policy) -> dict[str, list[str]]:
    """run id -> why it keeps its versions (runs with no reason are left out)."""
    from beamline.versions.log import pushed_by_runs

    kept: dict[str, list[str]] = {}
    newest: dict[str, list[RunRef]] = {}
    for ref in refs:
        newest.setdefault(ref.pipeline, []).append(ref)
    for ref in refs:
        why = kept.setdefault(ref.run_id, [])
        if ref.live:
            why.append("it is running")
        if policy.pipeline is not None and ref.pipeline != policy.pipeline:
            why.append(f"pipeline {ref.pipeline!r} is not the one gc cleans")
        if policy.keep_runs is None:
            why.append("every run keeps its versions (no --keep-data)")
        elif ref in newest[ref.pipeline][-policy.keep_runs:]:
            why.append(f"one of the newest {policy.keep_runs} run(s) of {ref.pipeline!r}")
    if policy.labelled:
        pushers = pushed_by_runs(store)
        for key, why in policy.labelled.items():
            for ctx in pushers.get(key, []):
                if ctx.name in kept:
                    kept[ctx.name].append(f"it pushed {why}")
    return {run: why for run, why in kept.items() if why}


def plan(objects: ObjectStore, store, policy: Policy) -> Plan:
    """What gc would delete under `policy` (nothing yet is deleted)."""
    listing = objects.listing()
    result = Plan(dict(listing.sizes), refused=list(listing.refused))
    refs = run_refs(store)
    result.kept_runs = _kept_runs(store, refs, policy)
    result.dropped_runs = [r.run_id for r in refs if r.run_id not in result.kept_runs]
    keep: set[str] = set()
    for ref in refs:
        if ref.run_id not in result.kept_runs:
            continue
        for key, kind in ref.keys:
            try:
                keep |= closure(objects, key, kind, listing.sizes)
            except _Missing:
                result.missing.append(key)
            except BeamlineError as exc:
                result.blocked = (
                    f"run {ref.run_id} (kept: {'; '.join(result.kept_runs[ref.run_id])}) names "
                    f"a version gc cannot read, so it cannot know which objects that version "
                    f"needs: {exc}"
                )
                return result
    if policy.pipeline is not None:
        # Only objects the pipeline's own dropped runs named: another pipeline's, and objects
        # no run names, are not this gc's to take.
        named: set[str] = set()
        for ref in refs:
            if ref.pipeline == policy.pipeline and ref.run_id not in result.kept_runs:
                for key, kind in ref.keys:
                    try:
                        named |= closure(objects, key, kind, listing.sizes)
                    except BeamlineError:
                        continue  # gone or unreadable: nothing it names can be listed
        candidates: Iterable[str] = named & set(listing.sizes)
    else:
        candidates = listing.sizes
    result.free = {k: listing.sizes[k] for k in sorted(candidates) if k not in keep}
    return result


class _Missing(BeamlineError):
    """A manifest key with no object (removed earlier): it names nothing that is there."""


def closure(objects: ObjectStore, key: str, kind: str, present: dict[str, int]) -> set[str]:
    """`key` and every object its manifest names. BadKey for a forged key, DataError for a
    manifest that cannot be read, _Missing when the manifest object is not there."""
    return _named(objects, key, kind, present)[0]


def _named(
    objects: ObjectStore, key: str, kind: str, present: dict[str, int]
) -> tuple[set[str], int]:
    """`closure`, and how many files the manifest lists."""
    check_key(key)
    if key not in present:
        raise _Missing(key)
    manifest = mf.load(objects, key, kind)
    return {key} | {e.sha256 for e in manifest.files if e.sha256}, len(manifest.files)


def sweep(objects: ObjectStore, store, policy: Policy, dry_run: bool) -> Swept:
    """Deletes (with `dry_run`, only lists) what `plan` frees, under the store's exclusive
    lock; a store in use by a run or a checkout is left alone and said so."""
    if not objects.directory.is_dir() and not objects.directory.is_symlink():
        return Swept(Plan({}), dry_run)
    try:
        with objects.locked(exclusive=True, wait=False):
            result = plan(objects, store, policy)
            swept = Swept(result, dry_run)
            if result.blocked:
                return swept
            for key, size in result.free.items():
                if dry_run:
                    swept.removed[key] = size
                    continue
                try:
                    swept.removed[key] = objects.remove(key)
                except (BeamlineError, OSError) as exc:
                    swept.refused.append(str(exc))
            return swept
    except StoreBusy as busy:
        return Swept(Plan({}), dry_run, skipped=str(busy))


@dataclass
class VersionUsage:
    """One data or code version's share of the store."""

    key: str
    kind: str
    pipelines: list[str]
    runs: list[str]
    files: int = 0
    stored_bytes: int = 0  # its objects (manifest included) that are in the store
    unique_bytes: int = 0  # of those, the ones no other version names
    gc_frees_bytes: int = 0  # of those, the ones gc would delete
    kept: bool = False  # a run gc keeps names it
    problem: str | None = None  # missing or unreadable manifest

    def to_json(self) -> dict:
        name = "data_version" if self.kind == mf.DATA_KIND else "code_version"
        return {
            name: self.key, "pipelines": self.pipelines, "runs": len(self.runs),
            "files": self.files, "bytes": self.stored_bytes, "unique_bytes": self.unique_bytes,
            "shared_bytes": self.stored_bytes - self.unique_bytes, "kept_by_gc": self.kept,
            "gc_frees_bytes": self.gc_frees_bytes, "problem": self.problem,
        }


@dataclass
class Usage:
    """Where the store's bytes go (`beamline data du`)."""

    objects: dict[str, int]
    versions: list[VersionUsage]
    unnamed: dict[str, int]  # objects no version names
    plan: Plan

    def to_json(self, pipeline: str | None) -> dict:
        mine = [v for v in self.versions if pipeline is None or pipeline in v.pipelines]
        code = [v for v in mine if v.kind == mf.CODE_KIND]
        return {
            "pipeline": pipeline,
            "objects": len(self.objects),
            "bytes": sum(self.objects.values()),
            "data_versions": [v.to_json() for v in mine if v.kind == mf.DATA_KIND],
            "code_versions": [v.to_json() for v in code],
            "code_bytes": sum(v.stored_bytes for v in code),
            "named_by_no_run": {"objects": len(self.unnamed),
                                "bytes": sum(self.unnamed.values())},
            "gc_would_free": {"objects": len(self.plan.free), "bytes": self.plan.free_bytes,
                              "blocked": self.plan.blocked},
            "refused": list(self.plan.refused),
        }


def usage(objects: ObjectStore, store, policy: Policy) -> Usage:
    """Every version's bytes, unique and shared, and what gc under `policy` would free."""
    result = plan(objects, store, policy)
    present = result.objects
    by_key: dict[tuple[str, str], VersionUsage] = {}
    for ref in run_refs(store):
        for key, kind in ref.keys:
            version = by_key.setdefault((key, kind), VersionUsage(key, kind, [], []))
            if ref.pipeline not in version.pipelines:
                version.pipelines.append(ref.pipeline)
            version.runs.append(ref.run_id)
            version.kept = version.kept or ref.run_id in result.kept_runs
    named: dict[tuple[str, str], set[str]] = {}
    counts: dict[str, int] = {}
    for (key, kind), version in by_key.items():
        try:
            named[(key, kind)], version.files = _named(objects, key, kind, present)
        except _Missing:
            version.problem = "its manifest is not in the store (deleted by an earlier gc)"
            continue
        except BeamlineError as exc:
            version.problem = str(exc)
            continue
        for obj in named[(key, kind)]:
            counts[obj] = counts.get(obj, 0) + 1
    for pair, keys in named.items():
        version = by_key[pair]
        there = [k for k in keys if k in present]
        version.stored_bytes = sum(present[k] for k in there)
        version.unique_bytes = sum(present[k] for k in there if counts[k] == 1)
        version.gc_frees_bytes = sum(present[k] for k in there if k in result.free)
    unnamed = {k: size for k, size in present.items() if k not in counts}
    return Usage(present, list(by_key.values()), unnamed, result)
