"""The table of runs `beamline experiments` shows: one row per run, with rows for its Tuner's
trials (and, on request, its evaluation's slices) under it. Pure functions over a lineage Graph
and the small files runs leave (TFMA metrics, trial records, the Trainer's history); the caller
reads the store and the label history.

Columns are named as `--where`, `--sort` and `--columns` take them:

- the run: run, experiment, overrides, state, trigger, started, duration;
- its data: span, fingerprint (a short digest of the ExampleGen's input fingerprint);
- its model: hyperparameters (what reached the Trainer), tuned_in (the run whose Tuner chose
  them), trial_count (its own Tuner's trials), epochs;
- its evaluation: each Overall metric by its TFMA name (auc, root_mean_squared_error, ...),
  blessed;
- its push: version, labels (the labels that version holds now);
- each hyperparameter by its name (and as hp.NAME, which a metric of the same name cannot hide),
  each override as set.NAME, and each metric of the last training epoch as train.NAME
  (train.loss, train.val_loss);
- trial rows: trial, state (KerasTuner's status), score, best, epochs (those the Tuner
  recorded), and their hyperparameters and train.NAME (the trial's best epoch).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from beamline.errors import ConfigError, did_you_mean
from beamline.experiments import where as where_lang
from beamline.lineage import payloads
from beamline.lineage.epochs import History, history_of
from beamline.lineage.model import COMPLETE, Execution, Graph, Run, outputs_of_type
from beamline.lineage.runs import summarize
from beamline.lineage.spans import example_gen_outputs
from beamline.lineage.tfma import load_evaluation
from beamline.lineage.trials import Search, is_tuner, search_of
from beamline.lineage.why import original
from beamline.metadata import run_context as rc
from beamline.metrics import EXAMPLE_COUNT, headline
from beamline.timefmt import format_ms

RUN, TRIAL, SLICE = "run", "trial", "slice"
OVERALL = "Overall"
FINGERPRINT_PROPERTY = "input_fingerprint"  # TFX's ExampleGen records it
FINGERPRINT_DIGITS = 12
HP_PREFIX, OVERRIDE_PREFIX, TRAIN_PREFIX = "hp.", "set.", "train."

RUN_COLUMNS = (
    "run", "experiment", "overrides", "state", "trigger", "started", "duration", "span",
    "fingerprint", "hyperparameters", "tuned_in", "trial_count", "epochs", "blessed", "version",
    "labels",
)
TRIAL_COLUMNS = ("trial", "score", "best")
SLICE_COLUMNS = ("slice",)
# Shown unless --columns says otherwise; the metric columns go after `hyperparameters`.
DEFAULT_COLUMNS = (
    "run", "experiment", "overrides", "state", "hyperparameters", "blessed", "version",
    "labels", "span", "fingerprint", "trigger", "duration",
)


@dataclass
class Row:
    kind: str  # RUN, TRIAL or SLICE
    values: dict[str, Any]
    children: list[Row] = field(default_factory=list)  # a run's trials, then its slices
    history: History | None = None  # a run's Trainer (a trial row: the trial), epoch by epoch
    search: Search | None = None  # a run's own Tuner search
    slices: dict[str, dict[str, float]] = field(default_factory=dict)  # a run's, but Overall

    def get(self, column: str) -> Any:
        return self.values.get(column)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.values)
        if self.kind == TRIAL:  # a brief of its curve: 5,000 trials stay a small document
            data["history"] = self.history.brief() if self.history else None
        if self.kind == RUN:
            data["trials"] = [c.to_json() for c in self.children if c.kind == TRIAL]
            data["history"] = self.history.to_json() if self.history else None
            data["slices"] = self.slices
        return data


def fingerprint_digest(text: str | None) -> str | None:
    """A short, stable name for an input fingerprint (the same files give the same digest)."""
    if not text:
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_DIGITS]


def _input_fingerprint(graph: Graph, executions: list[Execution]) -> str | None:
    """On the Examples (TFX's ExampleGen), else on the execution that read the files (a cached
    ExampleGen's original)."""
    for ex, art in example_gen_outputs(graph, executions):
        recorded = art.prop(FINGERPRINT_PROPERTY) or original(graph, ex).prop(FINGERPRINT_PROPERTY)
        if recorded:
            return str(recorded)
    return None


def _evaluation(graph: Graph, executions: list[Execution]) -> dict[str, dict[str, float]]:
    """The candidate's metrics per slice, from the run's (or its cached) ModelEvaluation."""
    for aid in outputs_of_type(graph, executions, "ModelEvaluation"):
        found = payloads.safe(load_evaluation, graph.artifacts[aid].uri)
        if found is not None:
            return found.candidate()
    return {}


def _hyperparameters(graph: Graph, trainer: Execution | None,
                     tuners: Mapping[str, list[Execution]]) -> tuple[dict[str, Any], str | None]:
    """(the values that reached the Trainer, the run whose Tuner chose them): the tuned or
    imported ones, with those the run fixed (`beamline run --set`) over them."""
    if trainer is None:
        return {}, None
    fixed = _fixed_hyperparameters(trainer)
    values, tuned_in = _tuned(graph, trainer, tuners)
    return {**values, **fixed}, tuned_in


def _fixed_hyperparameters(trainer: Execution) -> dict[str, Any]:
    config = trainer.properties.get("custom_config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            return {}
    fixed = config.get(rc.FIXED_HYPERPARAMETERS_KEY) if isinstance(config, dict) else None
    return dict(fixed) if isinstance(fixed, dict) else {}


def tuners_by_uri(graph: Graph) -> dict[str, list[Execution]]:
    """The Tuner executions that output an artifact at each URI (in the Graph's order of
    artifacts, then of events): one pass over the Graph for every run's row."""
    found: dict[str, list[Execution]] = {}
    for art in graph.artifacts.values():
        for ex in graph.output_events(art.id):
            if is_tuner(ex):
                found.setdefault(art.uri, []).append(ex)
    return found


def _tuned(graph: Graph, trainer: Execution, tuners_at: Mapping[str, list[Execution]]
           ) -> tuple[dict[str, Any], str | None]:
    for aid in trainer.inputs.get("hyperparameters", []):
        art = graph.artifacts.get(aid)
        if art is None:
            continue
        values = payloads.safe(payloads.load_hyperparameters, art.uri, default={})
        # An Importer of an earlier search's directory: the Tuner that wrote that directory.
        tuners = tuners_at.get(art.uri, [])
        producer = graph.producer(art.id)
        tuner = (tuners or [producer])[0]
        return dict(values), (tuner.run_id or None) if tuner is not None else None
    return {}, None


def _named(values: dict[str, Any], taken: Iterable[str]) -> dict[str, Any]:
    """Bare-named columns for `values`, leaving out names another column already has."""
    taken = set(taken)
    return {k: v for k, v in values.items() if k not in taken}


def _trial_rows(run_id: str, search: Search) -> list[Row]:
    rows = []
    for trial in search.trials:
        values: dict[str, Any] = {
            "run": run_id, "trial": trial.trial_id, "state": trial.status,
            "hyperparameters": trial.hyperparameters, "score": trial.score, "best": trial.best,
            "epochs": trial.history.epochs if trial.history else None,
        }
        values.update(_named(trial.hyperparameters, values))
        values.update({HP_PREFIX + k: v for k, v in trial.hyperparameters.items()})
        values.update({TRAIN_PREFIX + k: trial.final(k) for k in trial.metrics})
        rows.append(Row(TRIAL, values, history=trial.history))
    return rows


def run_row(graph: Graph, run: Run, labels_by_version: Mapping[int, list[str]],
            with_slices: bool = False, tuners: Mapping[str, list[Execution]] | None = None
            ) -> Row:
    """One run's row, its trials (and slices) as children. `tuners`: tuners_by_uri(graph),
    computed once by a caller that builds many rows."""
    summary = summarize(graph, run)
    executions = graph.run_executions(run.id)
    trainer = next((e for e in executions if e.component == "Trainer"), None)
    own_tuner = next((e for e in executions if is_tuner(e) and e.state == COMPLETE), None)
    if tuners is None and trainer is not None and trainer.inputs.get("hyperparameters"):
        tuners = tuners_by_uri(graph)
    hparams, tuned_in = _hyperparameters(graph, trainer, tuners or {})
    history = history_of(graph, trainer) if trainer is not None else None
    search = search_of(graph, own_tuner) if own_tuner is not None else None
    by_slice = _evaluation(graph, executions)
    metrics = dict(by_slice.get(OVERALL, {}))
    overrides = rc.overrides_from(run.properties)
    version = summary.pushed_version
    values: dict[str, Any] = {
        "run": run.id,
        "experiment": run.properties.get(rc.EXPERIMENT) or None,
        "overrides": overrides,
        "state": summary.state,
        "trigger": summary.trigger,
        "started": format_ms(summary.start_ms) if summary.start_ms else None,
        "duration": round(summary.duration_s, 3),
        "span": summary.span,
        "fingerprint": fingerprint_digest(_input_fingerprint(graph, executions)),
        "hyperparameters": hparams,
        "tuned_in": tuned_in,
        "trial_count": len(search.trials) if search else None,
        "epochs": history.epochs if history else None,
        "blessed": summary.blessed,
        "version": version,
        "labels": list(labels_by_version.get(int(version), [])) if version and version.isdigit()
        else [],
    }
    values.update(_named(metrics, values))
    values.update(_named(hparams, values))
    values.update({HP_PREFIX + k: v for k, v in hparams.items()})
    values.update({OVERRIDE_PREFIX + k: v for k, v in overrides.items()})
    if history is not None:
        values.update({TRAIN_PREFIX + k: history.final(k) for k in history.metrics})
    row = Row(RUN, values, history=history, search=search)
    row.slices = {name: m for name, m in by_slice.items() if name != OVERALL}
    if search is not None:
        row.children.extend(_trial_rows(run.id, search))
    if with_slices:
        row.children.extend(slice_rows(run.id, row.slices))
    return row


def slice_rows(run_id: str, slices: Mapping[str, Mapping[str, float]]) -> list[Row]:
    """A run's rows for its evaluation's slices (but Overall), by slice name."""
    return [Row(SLICE, {"run": run_id, "slice": name, **metrics})
            for name, metrics in sorted(slices.items())]


def build(graph: Graph, pipeline: str, labels_by_version: Mapping[int, list[str]] | None = None,
          with_slices: bool = False) -> list[Row]:
    """A row per run of `pipeline`, oldest first."""
    tuners = tuners_by_uri(graph)
    return [
        run_row(graph, run, labels_by_version or {}, with_slices, tuners)
        for run in graph.sorted_runs(pipeline)
    ]


# ---------------------------------------------------------------- choosing and ordering


def run_columns(rows: list[Row]) -> list[str]:
    """Every column some run row has, the fixed ones first."""
    seen = dict.fromkeys(RUN_COLUMNS)
    for row in rows:
        seen.update(dict.fromkeys(row.values))
    return list(seen)


def all_columns(rows: list[Row]) -> list[str]:
    seen = dict.fromkeys(run_columns(rows))
    seen.update(dict.fromkeys((*TRIAL_COLUMNS, *SLICE_COLUMNS)))
    for row in rows:
        for child in row.children:
            seen.update(dict.fromkeys(child.values))
    return list(seen)


def metric_columns(rows: list[Row]) -> list[str]:
    """The evaluation's metrics the runs recorded, the headline metric first (not the example
    count)."""
    names: set[str] = set()
    firsts: set[str] = set()
    for row in rows:
        metrics = {
            k: v for k, v in row.values.items()
            if k not in RUN_COLUMNS and "." not in k and k not in row.get("hyperparameters")
            and isinstance(v, int | float) and not isinstance(v, bool)
        }
        names.update(metrics)
        first = headline(metrics)
        if first:
            firsts.add(first[0])
    names.discard(EXAMPLE_COUNT)
    return sorted(names, key=lambda n: (n not in firsts, n))


def default_columns(rows: list[Row]) -> list[str]:
    columns = list(DEFAULT_COLUMNS)
    at = columns.index("hyperparameters") + 1
    extra = metric_columns(rows)
    if any(c.kind == TRIAL for row in rows for c in row.children):
        extra.append("score")
    return columns[:at] + extra + columns[at:]


def choose_columns(rows: list[Row], requested: str | None) -> list[str]:
    """The columns `--columns a,b,c` names (ConfigError naming a column no row has)."""
    if not requested:
        return default_columns(rows)
    known = all_columns(rows)
    chosen = [c.strip() for c in requested.split(",") if c.strip()]
    for column in chosen:
        if column not in known:
            raise ConfigError(
                f"--columns names {column!r}, which no row of this table has. "
                f"{did_you_mean(column, known)}Columns: {', '.join(known)}."
            )
    if not chosen:
        raise ConfigError("--columns is empty: name columns separated by commas, e.g. "
                          "--columns run,blessed,version.")
    return chosen


def select(rows: list[Row], where: str | None = None, experiment: str | None = None
           ) -> list[Row]:
    """Runs of `experiment` (when given) that pass the `--where` expression."""
    if experiment is not None:
        rows = [r for r in rows if r.get("experiment") == experiment]
    if where is None:
        return rows
    tree = where_lang.parse(where, run_columns(rows))
    return [r for r in rows if where_lang.evaluate(tree, r.values)]


def _sort_key(value: Any) -> tuple:
    number = where_lang.as_number(value)  # one reading of numbers for --where and --sort
    if number is not None:
        return (0, number, "")
    if isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, where_lang.as_text(value))


def order(rows: list[Row], sort: str | None) -> list[Row]:
    """Rows by `--sort COLUMN` (ascending; `-COLUMN` descending), rows without a value last;
    newest first when no column is given."""
    if not sort:
        return sorted(rows, key=lambda r: (r.get("started") or "", r.get("run")), reverse=True)
    descending = sort.startswith("-")
    column = sort.lstrip("-+")
    known = run_columns(rows)
    if column not in known:
        raise ConfigError(
            f"--sort names {column!r}, which is no column of the runs. "
            f"{did_you_mean(column, known)}Columns: {', '.join(known)}. Put a - before the "
            "column for descending order (--sort -auc)."
        )
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    return sorted(present, key=lambda r: _sort_key(r.get(column)), reverse=descending) + missing
