"""`beamline reproduce`: a model version's run again, from the data and code it kept.

Three steps, each a function here so the command stays a thin shell:

1. `find_original`: the run that trained the version (the first run that pushed it and kept a
   data version), its settings as recorded (overrides; the hyperparameters that reached its
   Trainer, read as `beamline experiments` reads them) and its kept data and code versions.
2. `restore`: the kept files written out (beamline.versions.checkout) under the new root's
   `checkout/` (data, code, and an import path on which the kept code shadows the installed
   examples), and `run_arguments`/`run_environment`: the `beamline run` that runs it there with
   the recorded settings fixed (every hyperparameter by `--set`, so no Tuner search), on the
   Beam profile the original ran on, TensorFlow's deterministic ops on, recorded with trigger
   `reproduce`.
3. `compare` and `render`: what differs between the original and the reproduction (inputs by
   data version, code by code version, settings, metrics), the metrics through
   beamline.lineage.diff's comparison of two runs, here across two stores.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline.errors import BeamlineError, ConfigError, DataError
from beamline.metadata import run_context as rc
from beamline.metadata.records import TriggerKind

# A metric reproduced when |reproduced - original| <= TOLERANCE * max(1, |original|).
DEFAULT_TOLERANCE = 1e-6
CHECKOUT_DIR = "checkout"  # under the new root: data/, code/, python/
DETERMINISM_ENV = {"TF_DETERMINISTIC_OPS": "1", "PYTHONHASHSEED": "0"}
OVERALL = "Overall"
BEAM_SETTING = "beam"  # the Beam profile, among the compared settings


class UnknownVersion(ConfigError):
    """No run in the store pushed the model version (or no version holds the label)."""


@dataclass
class Original:
    """The run that trained a model version, as its records say."""

    pipeline: str
    version: int
    run_id: str
    data_key: str
    code_key: str
    overrides: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    tuned: bool = False  # its Trainer took a search's hyperparameters (its own or an earlier)
    span: int | None = None
    extra_spans: tuple[int, ...] = ()
    beam_profile: str | None = None  # None: recorded before runs recorded their profile

    def fixed_sets(self) -> list[tuple[str, Any]]:
        """The `--set` pairs of the reproduction: the run's own overrides, then every
        hyperparameter that reached its Trainer and that `--set` can fix (numbers)."""
        pairs = list(self.overrides.items())
        pairs += [(k, v) for k, v in self.hyperparameters.items()
                  if k not in self.overrides and _settable(v)]
        return pairs

    def unfixed(self) -> list[str]:
        """Hyperparameters `--set` cannot fix (not numbers): a search chooses them again."""
        return [k for k, v in self.hyperparameters.items()
                if k not in self.overrides and not _settable(v)]


def _settable(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def set_text(name: str, value: Any) -> str:
    """NAME=VALUE as `--set` reads it back to the same value (floats by repr: exact)."""
    if isinstance(value, bool):
        return f"{name}={str(value).lower()}"
    if isinstance(value, float):
        return f"{name}={value!r}"
    return f"{name}={value}"


# ---------------------------------------------------------------- 1. the original run


def pipelines_of(store) -> list[str]:
    """Every pipeline with a run in the store."""
    from ml_metadata import errors as mlmd_errors

    try:
        contexts = store.get_contexts_by_type(rc.RUN_CONTEXT)
    except mlmd_errors.NotFoundError:
        return []
    return sorted({str(p) for c in contexts if (p := rc.properties_of(c).get(rc.PIPELINE))})


def version_of(store, ref: str, pipeline: str | None, source: str) -> tuple[str, int]:
    """(pipeline, model version) REF names: a version number, or a label held now."""
    from beamline.metadata import labels
    from beamline.versions import log as vlog

    pipelines = [pipeline] if pipeline else pipelines_of(store)
    if ref.isdigit():
        version = int(ref)
        found = [p for p in pipelines
                 if any(version in r.pushed for r in vlog.runs_of(store, p, kept_only=False))]
        if not found:
            raise UnknownVersion(
                f"No run in {source} pushed model version {ref}"
                + (f" of pipeline {pipeline!r}" if pipeline else "")
                + ". `beamline models PIPELINE` lists the pushed versions and `beamline labels "
                "PIPELINE` the labels; check --root and --metadata."
            )
        if len(found) > 1:
            raise ConfigError(
                f"Model version {ref} was pushed by runs of {len(found)} pipelines "
                f"({', '.join(found)}). Say whose with --pipeline NAME."
            )
        return found[0], version
    held = {}
    for name in pipelines:
        holder = labels.holders(labels.history(store, name)).get(ref)
        if holder is not None:
            held[name] = holder
    if not held:
        raise UnknownVersion(
            f"{ref!r} is neither a model version (a number) nor a label a version holds now in "
            f"{source}. `beamline labels PIPELINE` shows which version holds each label, "
            "`beamline models PIPELINE` the versions."
        )
    if len(held) > 1:
        holders = ", ".join(f"{name} (version {v})" for name, v in held.items())
        raise ConfigError(
            f"Label {ref!r} is held in {len(held)} pipelines: {holders}. Say whose with "
            "--pipeline NAME, or give the version number."
        )
    return next(iter(held.items()))


def trained_by(store, pipeline: str, version: int):
    """The run whose kept data and code a reproduction restores: the first run that pushed
    `version` and kept both (a fast-path replay of it names the same version and versions)."""
    from beamline.versions import log as vlog

    pushers = [r for r in vlog.runs_of(store, pipeline, kept_only=False) if version in r.pushed]
    kept = [r for r in pushers if r.data_key and r.code_key]
    if not kept:
        first = pushers[0].run_id if pushers else "?"
        raise DataError(
            f"Model version {version} of {pipeline!r} cannot be reproduced: run {first}, which "
            "trained it, kept no data and code version (it ran with --no-versions, or before "
            "Beamline kept versions), so its input files and code are not in the store. "
            f"`beamline data log {pipeline}` lists the versions whose data was kept."
        )
    return kept[0]


def find_original(store, graph, pipeline: str, version: int, objects) -> Original:
    """The original run of `version`: its versions, settings and span (manifest read and
    checked: a missing or corrupt manifest object is named here, before anything is written)."""
    from beamline.experiments import table
    from beamline.versions import manifest as mf

    run = trained_by(store, pipeline, version)
    data = mf.load(objects, run.data_key, mf.DATA_KIND)
    mf.load(objects, run.code_key, mf.CODE_KIND)
    graph_run = graph.runs[run.run_id]
    row = table.run_row(graph, graph_run, {})
    return Original(
        pipeline=pipeline,
        version=version,
        run_id=run.run_id,
        data_key=run.data_key,
        code_key=run.code_key,
        overrides=dict(row.get("overrides") or {}),
        hyperparameters=dict(row.get("hyperparameters") or {}),
        tuned=row.get("tuned_in") is not None,
        span=data.span,
        extra_spans=data.extra_spans,
        beam_profile=str(graph_run.properties.get(rc.BEAM_PROFILE) or "") or None,
    )


# ---------------------------------------------------------------- 2. restore and run


def default_target(root: Path, pipeline: str, version: int, now_text: str) -> Path:
    """A fresh directory beside the run root, named after what it reproduces."""
    stamp = re.sub(r"[^0-9A-Za-z]", "", now_text)[:15]
    return root.parent / f"{root.name}-reproduce-{pipeline}-{version}-{stamp}"


@dataclass(frozen=True)
class Restored:
    data_dir: Path
    code_dir: Path
    python_dir: Path


def restore(objects, original: Original, target: Path) -> Restored:
    """Writes the original's data and code under `target/checkout/` (each file hash-checked),
    with a project file for the code and an import path on which the kept module files
    (`beamline_components`) shadow the installed ones."""
    from beamline.versions import manifest as mf
    from beamline.versions.checkout import require_empty, write_version

    require_empty(target)
    base = target / CHECKOUT_DIR
    restored = Restored(base / "data", base / "code", base / "python")
    restored.data_dir.mkdir(parents=True)
    data = write_version(objects, original.data_key, mf.DATA_KIND, restored.data_dir)
    if data.remote:
        raise DataError(
            f"Run {original.run_id} read remote inputs whose bytes were not kept "
            f"({', '.join(data.remote)}): its data cannot be restored, so it cannot be "
            "reproduced from the store."
        )
    restored.code_dir.mkdir()
    write_version(objects, original.code_key, mf.CODE_KIND, restored.code_dir)
    code = restored.code_dir
    if not (code / "pipelines" / f"{original.pipeline}.py").is_file():
        raise DataError(
            f"The kept code version {original.code_key[:12]} of run {original.run_id} has no "
            f"pipelines/{original.pipeline}.py (a pipeline file outside a project's pipelines/ "
            "directory, or a project with its own layout): `beamline reproduce` runs the "
            f"project form only. `beamline data checkout --run {original.run_id} --code` "
            "restores the code to run by hand."
        )
    (code / "pyproject.toml").write_text(
        "# Written by `beamline reproduce`: the kept code as a project.\n"
        '[tool.beamline]\npipelines = "pipelines"\nschemas = "schemas"\n'
        'components = "components"\n'
    )
    restored.python_dir.mkdir()
    # The bundled examples import their module files as the `beamline_components` package:
    # kept as `beamline_components/` (an installed wheel) or `components/` (a source checkout).
    for name in ("beamline_components", "components"):
        kept = code / name
        if (kept / "tabular_pipeline.py").is_file():
            (restored.python_dir / "beamline_components").symlink_to(kept.resolve())
            break
    return restored


def beam_profile_for(original: Original, asked: str | None) -> str | None:
    """The profile the reproduction runs on: `asked` (`reproduce --beam`), else the original's
    (None: neither known, the run's own default chooses)."""
    return asked or original.beam_profile


def run_arguments(original: Original, root: Path, restored: Restored,
                  beam_profile: str | None = None) -> list[str]:
    """`beamline run` arguments that run the original again in `root` (on `beam_profile`, else
    the original's)."""
    args = ["run", original.pipeline, "--root", str(root), "--data", str(restored.data_dir),
            "--trigger", TriggerKind.REPRODUCE]
    profile = beam_profile_for(original, beam_profile)
    if profile:
        args += ["--beam", profile]
    if original.extra_spans:
        spans = (original.span, *original.extra_spans)
        args += ["--span-range", f"{min(spans)}:{max(spans)}"]
    elif original.span is not None:
        args += ["--span", str(original.span)]
    if not original.tuned:
        args.append("--no-tune")
    for name, value in original.fixed_sets():
        args += ["--set", set_text(name, value)]
    return args


def run_environment(restored: Restored, environ: Mapping[str, str]) -> dict[str, str]:
    """The run's environment: the kept code as the project and first on the import path,
    TensorFlow's deterministic ops on and a fixed hash seed."""
    from beamline.project import PROJECT_ENV

    env = dict(environ)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(restored.python_dir), *parts])
    env[PROJECT_ENV] = str(restored.code_dir)
    env.update(DETERMINISM_ENV)
    return env


# ---------------------------------------------------------------- 3. compare


@dataclass
class MetricRow:
    slice: str
    name: str
    original: float | None
    reproduced: float | None

    @property
    def difference(self) -> float | None:
        if self.original is None or self.reproduced is None:
            return None
        return self.reproduced - self.original

    def within(self, tolerance: float) -> bool:
        d = self.difference
        if d is None or not math.isfinite(d):
            return self.original == self.reproduced
        return abs(d) <= tolerance * max(1.0, abs(self.original))

    def to_json(self) -> dict[str, Any]:
        return {"slice": self.slice, "metric": self.name, "original": self.original,
                "reproduced": self.reproduced, "difference": self.difference}


@dataclass
class Comparison:
    """What differs between a run and its reproduction."""

    pipeline: str
    version: int
    original_run: str
    reproduced_run: str
    root: str
    data: tuple[str, str]  # data version keys (original, reproduction)
    code: tuple[str, str]
    settings: dict[str, tuple[Any, Any]]  # NAME -> (original, reproduced), every setting
    metrics: list[MetricRow]
    tolerance: float = DEFAULT_TOLERANCE
    code_files: list[str] = field(default_factory=list)  # files that differ, when code does
    pushed_version: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def setting_changes(self) -> dict[str, tuple[Any, Any]]:
        return {k: v for k, v in self.settings.items() if v[0] != v[1]}

    @property
    def exact(self) -> bool:
        return bool(self.metrics) and all(m.original == m.reproduced for m in self.metrics)

    @property
    def largest(self) -> MetricRow | None:
        known = [m for m in self.metrics if m.difference is not None]
        return max(known, key=lambda m: abs(m.difference), default=None)

    @property
    def within_tolerance(self) -> bool:
        return bool(self.metrics) and all(m.within(self.tolerance) for m in self.metrics)

    def verdict(self) -> str:
        if not self.metrics:
            return "no metrics to compare (neither run recorded an evaluation)"
        if self.exact:
            return f"reproduced exactly: all {len(self.metrics)} metrics equal bit for bit"
        big = self.largest
        how = (f"largest difference {_signed(big.difference)} in {big.slice} {big.name}"
               if big is not None else "a metric is missing on one side")
        if self.within_tolerance:
            return f"reproduced within tolerance {self.tolerance:g} ({how})"
        return f"NOT reproduced within tolerance {self.tolerance:g} ({how})"

    def to_json(self) -> dict[str, Any]:
        big = self.largest
        return {
            "pipeline": self.pipeline, "version": self.version,
            "original_run": self.original_run, "reproduced_run": self.reproduced_run,
            "root": self.root, "pushed_version": self.pushed_version,
            "data_version": {"original": self.data[0], "reproduced": self.data[1],
                             "same": self.data[0] == self.data[1]},
            "code_version": {"original": self.code[0], "reproduced": self.code[1],
                             "same": self.code[0] == self.code[1], "files": self.code_files},
            "settings": {k: {"original": a, "reproduced": b, "same": a == b}
                         for k, (a, b) in self.settings.items()},
            "metrics": [m.to_json() for m in self.metrics],
            "exact": self.exact, "tolerance": self.tolerance,
            "within_tolerance": self.within_tolerance,
            "largest_difference": abs(big.difference) if big is not None else None,
            "verdict": self.verdict(), "notes": self.notes,
        }


def settings_of(overrides: Mapping[str, Any], hyperparameters: Mapping[str, Any]
                ) -> dict[str, Any]:
    """A run's settings as compared: the hyperparameters that reached its Trainer (hp.NAME)
    and its overrides that are no hyperparameter (set.NAME). A reproduction fixes every
    hyperparameter with `--set`, so its overrides hold them too: they count once, as hp."""
    out = {f"hp.{k}": v for k, v in hyperparameters.items()}
    out.update({f"set.{k}": v for k, v in overrides.items() if k not in hyperparameters})
    return out


def compare_settings(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))}


def metric_rows(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[MetricRow]:
    """beamline.lineage.diff's metrics (slice -> metric -> {a, b, ...}) as rows, Overall
    first."""
    return [
        MetricRow(slice_name, name, values.get("a"), values.get("b"))
        for slice_name, by_metric in metrics.items()
        for name, values in by_metric.items()
    ]


def changed_files(before, after) -> list[str]:
    """Paths whose content differs between two manifests (added and removed included)."""
    a = {e.path: e.sha256 for e in before.files}
    b = {e.path: e.sha256 for e in after.files}
    return sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))


def compare(original: Original, graph_a, graph_b, run_b: str, objects_a, objects_b,
            props_b: Mapping[str, Any], root_b: Path,
            tolerance: float = DEFAULT_TOLERANCE) -> Comparison:
    """The original run (graph_a) against its reproduction (run_b in graph_b)."""
    from beamline.experiments import table
    from beamline.lineage.diff import diff_runs
    from beamline.versions import manifest as mf

    run_a = graph_a.runs[original.run_id]
    diff = diff_runs(graph_a, run_a, graph_b.runs[run_b], graph_b=graph_b)
    row_b = table.run_row(graph_b, graph_b.runs[run_b], {})
    data_b = str(props_b.get(rc.DATA_VERSION) or "")
    code_b = str(props_b.get(rc.CODE_VERSION) or "")
    files: list[str] = []
    if code_b and code_b != original.code_key:
        files = changed_files(mf.load(objects_a, original.code_key, mf.CODE_KIND),
                              mf.load(objects_b, code_b, mf.CODE_KIND))
    settings = compare_settings(
        {**settings_of(original.overrides, original.hyperparameters),
         BEAM_SETTING: original.beam_profile},
        {**settings_of(row_b.get("overrides") or {}, row_b.get("hyperparameters") or {}),
         BEAM_SETTING: props_b.get(rc.BEAM_PROFILE) or None},
    )
    notes = list(diff.notes)
    if original.beam_profile is None:
        notes.append(f"run {original.run_id} recorded no Beam profile (it ran before Beamline "
                     "recorded one): the reproduction ran on its own default")
    return Comparison(
        pipeline=original.pipeline, version=original.version, original_run=original.run_id,
        reproduced_run=run_b, root=str(root_b), data=(original.data_key, data_b),
        code=(original.code_key, code_b), settings=settings,
        metrics=metric_rows(diff.metrics), tolerance=tolerance, code_files=files,
        pushed_version=diff.pushed_version[1], notes=notes,
    )


def render(c: Comparison) -> str:
    """The comparison, diff-style: `=` the same, `-` the original, `+` the reproduction."""
    from beamline.lineage.format import number, table

    def num(value) -> str:
        return number(value, 10)

    lines = [
        f"--- original     {c.original_run} (model version {c.version} of {c.pipeline!r})",
        f"+++ reproduction {c.reproduced_run} (root {c.root})",
        "",
        "Inputs (data version):",
        *_pair(c.data),
        "Code (code version):",
        *_pair(c.code),
        *[f"  changed file: {path}" for path in c.code_files],
        "Settings:",
    ]
    changes = c.setting_changes
    if not c.settings:
        lines.append("  = none recorded (no overrides, no hyperparameters)")
    elif not changes:
        same = ", ".join(f"{k}={_value(v[0])}" for k, v in c.settings.items())
        lines.append(f"  = unchanged: {same}")
    for name, (a, b) in changes.items():
        lines.append(f"  - {name}={_value(a)}")
        lines.append(f"  + {name}={_value(b)}")
    lines.append("Metrics (candidate model; difference = reproduced - original):")
    if c.metrics:
        rows = [
            [m.slice, m.name, num(m.original), num(m.reproduced),
             _signed(m.difference) + ("" if m.original == m.reproduced else
                                      " (within)" if m.within(c.tolerance) else " (OUTSIDE)")]
            for m in c.metrics
        ]
        body = table(["SLICE", "METRIC", "ORIGINAL", "REPRODUCED", "DIFFERENCE"], rows)
        lines.append("  " + body.replace("\n", "\n  "))
    lines.append("")
    lines.append(f"Verdict: {c.verdict()}")
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _pair(keys: tuple[str, str]) -> list[str]:
    a, b = keys
    if a == b:
        return [f"  = {a[:12]} (the same)"]
    return [f"  - {a[:12] or 'none'}", f"  + {b[:12] or 'none kept'}"]


def _value(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def _signed(value: float | None) -> str:
    from beamline.lineage.format import signed

    return "0" if value == 0 else signed(value, 3)


def failed_run(code: int, target: Path, log_hint: str) -> BeamlineError:
    """The error for a reproduction run that did not succeed: its own exit code."""
    return BeamlineError(
        f"The reproduction run failed (exit {code}; its output is above{log_hint}). The kept "
        f"data and code are in {target / CHECKOUT_DIR}; the run root {target} holds its record "
        "(`beamline runs --root` there).",
        exit_code=code,
    )
