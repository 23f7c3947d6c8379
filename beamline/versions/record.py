"""Keeping a run's data and code versions, and naming them on its MLMD run context.

Order matters: every object, then the manifests, then the keys on the run context. A run killed
at any point leaves either no key (and perhaps objects nothing names yet, or a temporary file
`remove_dead_temp_files` removes) or a key whose objects are all there. The runner does all of it
under the store's shared lock (`keep_run(..., name_on=...)`), which `beamline gc` must hold
exclusively to delete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from beamline.metadata import run_context as rc
from beamline.settings import RootLayout
from beamline.versions import manifest as mf
from beamline.versions.store import ObjectStore


@dataclass(frozen=True)
class RunVersions:
    data: mf.KeptVersion
    code: mf.KeptVersion

    def describe(self) -> str:
        files = self.data.manifest.files
        added = self.data.added_bytes + self.code.added_bytes
        return (
            f"data version {self.data.key[:12]} ({len(files)} file(s), "
            f"{self.data.manifest.total_bytes:,} bytes), code version {self.code.key[:12]} "
            f"({len(self.code.manifest.files)} file(s)); "
            + (f"{added:,} new bytes kept" if added else "nothing new to keep")
        )


def keep_run(
    layout: RootLayout,
    data_root: Path,
    data_files: Iterable[Path | str],
    code_files: Iterable[tuple[str, Path]],
    span: int | None = None,
    extra_spans: Iterable[int] = (),
    name_on: tuple[object, str] | None = None,
) -> RunVersions:
    """Keeps the run's input files (named relative to `data_root`) and code files; with
    `name_on` (an MLMD store, a run id), names them on that run too, all of it under the
    store's shared lock: `beamline gc` deletes under the exclusive one, so it never takes an
    object a run has put (or found already there) but not yet named for one nothing names."""
    store = ObjectStore(layout.objects_dir)
    store.remove_dead_temp_files()
    inputs = [
        (str(f), f) if isinstance(f, str) else (f.relative_to(data_root).as_posix(), f)
        for f in data_files
    ]
    with store.locked():
        data = mf.keep(store, mf.DATA_KIND, inputs, span, extra_spans)
        code = mf.keep(store, mf.CODE_KIND, code_files)
        kept = RunVersions(data, code)
        if name_on is not None:
            name_on_run(name_on[0], name_on[1], kept)
    return kept


def name_on_run(store, run_id: str, versions: RunVersions) -> None:
    """Stamps the versions' keys on run `run_id`'s context (which the run claimed already)."""
    ctx = store.get_context_by_type_and_name(rc.RUN_CONTEXT, run_id)
    if ctx is None:
        return
    ctx.custom_properties[rc.DATA_VERSION].string_value = versions.data.key
    ctx.custom_properties[rc.CODE_VERSION].string_value = versions.code.key
    store.put_contexts([ctx])
