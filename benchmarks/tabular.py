"""Benchmark: the pipeline `beamline init --data` generates, against gradient boosting (not a test).

For each table (bundled with scikit-learn or palmerpenguins, so nothing is downloaded):
1. the table is written as a CSV, its column names made TF-safe (letters, digits, _);
2. `beamline init DIR --data CSV --label COLUMN` (task decided by auto, checked against the
   expected one), then `beamline run NAME --no-tune` and `beamline run NAME --tune`, each in a
   fresh run root and its own process (imports included), one at a time, wall-timed;
3. the train and eval rows are read back from the CsvExampleGen's Examples artifact of the run
   (`Split-train` / `Split-eval`, found through MLMD), so every model is judged on the same rows:
   scikit-learn's HistGradientBoosting{Classifier,Regressor} (defaults, random_state=0) is
   fitted on the train rows; Beamline's model is the Trainer's SavedModel (what the Pusher
   pushes when blessed), called through its `classification` / `regression` signature on the
   eval rows' serialized tf.Examples; both are scored with scikit-learn's metrics. The
   Evaluator's own figure (TFMA, on the same eval split) is printed beside it as a check.
4. per table: task, metric (binary: AUC and accuracy; multiclass: accuracy; regression: RMSE),
   Beamline without / with the Tuner, HGB, the gap and whether it meets the target (AUC and
   accuracy within 0.02 of HGB's; RMSE at most 1.10x HGB's), the walls, the Tuner's choice.

    .venv/bin/python benchmarks/tabular.py [--tables breast_cancer,wine,diabetes,penguins]
        [--no-tuner] [--json OUT] [--keep DIR]

Tables: breast_cancer (binary), wine (multiclass), diabetes (regression), penguins
(multiclass, missing cells and text features) by default; iris and digits (multiclass) too.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# Targets: how close the generated pipeline's model must come to gradient boosting.
POINTS = 0.02  # AUC and accuracy: at most this far below HGB
RMSE_RATIO = 1.10  # RMSE: at most this multiple of HGB's
NO_TUNE, TUNE = "notune", "tune"


@dataclass(frozen=True)
class Table:
    name: str
    label: str
    task: str  # what `init --task auto` should decide


TABLES = {
    t.name: t
    for t in (
        Table("breast_cancer", "diagnosis", "binary"),
        Table("wine", "cultivar", "multiclass"),
        Table("diabetes", "progression", "regression"),
        Table("penguins", "species", "multiclass"),
        Table("iris", "species", "multiclass"),
        Table("digits", "digit", "multiclass"),
    )
}
DEFAULT_TABLES = ("breast_cancer", "wine", "diabetes", "penguins")


def tf_safe(name: str) -> str:
    """A column name `beamline init` accepts: letters, digits and _, starting with a letter."""
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    return cleaned if cleaned[:1].isalpha() else f"c_{cleaned}"


def load_frame(table: Table):
    """The table as a DataFrame with TF-safe column names, the label column included."""
    import pandas as pd

    if table.name == "penguins":
        from importlib.util import find_spec

        # The shipped CSV, found without importing the package (its __init__ imports the
        # deprecated pkg_resources, which warns).
        [package] = find_spec("palmerpenguins").submodule_search_locations
        frame = pd.read_csv(Path(package) / "data" / "penguins.csv")
    else:
        from sklearn import datasets

        loader = {
            "breast_cancer": datasets.load_breast_cancer,
            "wine": datasets.load_wine,
            "iris": datasets.load_iris,
            "digits": datasets.load_digits,
        }.get(table.name)
        if loader is None:  # diabetes: the raw values (age in years, ...), not sklearn's scaled
            bunch = datasets.load_diabetes(as_frame=True, scaled=False)
        else:
            bunch = loader(as_frame=True)
        frame = bunch.frame.rename(columns={"target": table.label})
        if table.name in ("breast_cancer", "wine", "iris"):
            names = list(bunch.target_names)
            frame[table.label] = frame[table.label].map(lambda i: names[int(i)])
    # Whole-valued float columns (wine's magnesium, 127.0) written as integers: `init` types a
    # CSV column of whole numbers INT while the CSV ExampleGen types the text "127.0" FLOAT, and
    # the run then stops at the ExampleValidator (beamline/tabular/frame.py, reported).
    for name in frame.columns:
        values = frame[name].dropna()
        if values.dtype.kind == "f" and (values == values.round()).all():
            frame[name] = frame[name].astype("Int64")
    return frame.rename(columns=tf_safe)


def _cli(args: list[str], cwd: Path, log: Path) -> tuple[float, str]:
    """Runs `beamline ARGS` in `cwd`; (wall seconds, stdout). Exits with the log on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", *args], cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"`beamline {' '.join(args)}` failed ({proc.returncode}); see {log}\n"
                 + proc.stdout[-2000:] + proc.stderr[-2000:])
    return wall, proc.stdout


def output_artifacts(root: Path, pipeline: str, run_id: str, node: str, key: str) -> list:
    """The artifacts `node` output under `key` in run `run_id` (MLMD)."""
    import ml_metadata as mlmd

    from beamline.metadata.connection import sqlite_config
    from beamline.runner.outcome import node_outputs

    store = mlmd.MetadataStore(sqlite_config(root / "metadata.sqlite"))
    return node_outputs(store, pipeline, run_id, node).get(key, [])


def output_uri(root: Path, pipeline: str, run_id: str, node: str, key: str) -> str:
    [artifact] = output_artifacts(root, pipeline, run_id, node, key)
    return artifact.uri


def read_split(examples_uri: str, split: str) -> list[bytes]:
    """The serialized tf.Examples of one split of an Examples artifact, in file order."""
    import tensorflow as tf

    paths = sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not paths:
        sys.exit(f"no files under {examples_uri}/Split-{split}")
    dataset = tf.data.TFRecordDataset(paths, compression_type="GZIP")
    return [record.numpy() for record in dataset]


def examples_frame(records: list[bytes], columns: list[str]):
    """tf.Examples as a DataFrame with `columns` in that order: numbers as floats (missing:
    NaN), text as categories. The order is fixed because a protobuf map's iteration order
    changes from process to process, and HGB breaks ties between equally good splits by
    feature position (a table's score moved by one eval row between runs before)."""
    import pandas as pd
    import tensorflow as tf

    rows, text = [], set()
    for record in records:
        example = tf.train.Example.FromString(record)
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            if not values:
                row[name] = None
            elif kind == "bytes_list":
                row[name] = values[0].decode("utf-8")
                text.add(name)
            else:
                row[name] = values[0]
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    for name in frame.columns:
        frame[name] = frame[name].astype("category" if name in text else "float64")
    return frame


def hgb_scores(train, evaluation, table: Table, positive: str | None) -> dict[str, float]:
    """HistGradientBoosting fitted on the train rows, scored on the eval rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    features = [c for c in train.columns if c != table.label]
    x_train, x_eval = train[features], evaluation[features].copy()
    for name in features:  # one category set for both splits (HGB refuses unseen orderings)
        if str(x_train[name].dtype) == "category":
            x_eval[name] = x_eval[name].cat.set_categories(x_train[name].cat.categories)
    if table.task == "regression":
        model = HistGradientBoostingRegressor(random_state=0, categorical_features="from_dtype")
        model.fit(x_train, train[table.label])
        return regression_scores(evaluation[table.label], model.predict(x_eval))
    model = HistGradientBoostingClassifier(random_state=0, categorical_features="from_dtype")
    y_train = train[table.label].astype(str)
    model.fit(x_train, y_train)
    proba = model.predict_proba(x_eval)
    classes = [str(c) for c in model.classes_]
    return classifier_scores(evaluation[table.label].astype(str), classes, proba, positive)


def classifier_scores(truth, classes: list[str], scores, positive: str | None) -> dict:
    import numpy as np
    from sklearn.metrics import accuracy_score, roc_auc_score

    predicted = [classes[i] for i in np.argmax(scores, axis=1)]
    out = {"accuracy": float(accuracy_score(list(truth), predicted))}
    if positive is not None:
        truth_positive = [t == positive for t in truth]
        out["auc"] = float(roc_auc_score(truth_positive, scores[:, classes.index(positive)]))
    return out


def regression_scores(truth, predicted) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    return {
        "rmse": math.sqrt(mean_squared_error(truth, predicted)),
        "mae": float(mean_absolute_error(truth, predicted)),
    }


def beamline_scores(model_uri: str, eval_records: list[bytes], evaluation, table: Table):
    """The Trainer's SavedModel called on the eval rows; (scores, positive class or None)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform  # noqa: F401  (registers the ops the transform layer uses)

    loaded = tf.saved_model.load(os.path.join(model_uri, "Format-Serving"))
    inputs = tf.constant(eval_records)
    if table.task == "regression":
        outputs = loaded.signatures["regression"](inputs=inputs)["outputs"].numpy()
        return regression_scores(evaluation[table.label], np.reshape(outputs, [-1])), None
    answer = loaded.signatures["classification"](inputs=inputs)
    classes = [c.decode("utf-8") for c in answer["classes"].numpy()[0]]
    scores = answer["scores"].numpy()
    # Binary: the second column is the class the pipeline decided is positive.
    positive = classes[1] if table.task == "binary" else None
    truth = evaluation[table.label].astype(str)
    return classifier_scores(truth, classes, scores, positive), positive


TFMA_NAMES = {
    "auc": "auc", "binary_accuracy": "accuracy", "sparse_categorical_accuracy": "accuracy",
    "root_mean_squared_error": "rmse", "mean_absolute_error": "mae",
}


def evaluator_scores(root: Path, pipeline: str, run_id: str) -> tuple[dict, bool | None]:
    """The Evaluator's overall metrics for the candidate (TFMA) and whether it blessed it."""
    from beamline.lineage.tfma import load_evaluation

    evaluation = load_evaluation(output_uri(root, pipeline, run_id, "Evaluator", "evaluation"))
    overall = evaluation.candidate().get("Overall", {})
    scores = {TFMA_NAMES[k]: v for k, v in overall.items() if k in TFMA_NAMES}
    [blessing] = output_artifacts(root, pipeline, run_id, "Evaluator", "blessing")
    blessed = blessing.custom_properties.get("blessed")
    return scores, (bool(blessed.int_value) if blessed is not None else None)


@dataclass
class Result:
    table: str
    task: str
    decided_task: str
    label: str
    rows: int
    train_rows: int
    eval_rows: int
    train_steps: int | None
    walls: dict = field(default_factory=dict)  # init / notune / tune -> seconds
    nodes: dict = field(default_factory=dict)  # notune / tune -> node -> seconds (as printed)
    hgb: dict = field(default_factory=dict)
    beamline: dict = field(default_factory=dict)  # notune / tune -> metric -> value
    evaluator: dict = field(default_factory=dict)  # notune / tune -> metric -> value (TFMA)
    blessed: dict = field(default_factory=dict)
    tuned_hyperparameters: dict = field(default_factory=dict)
    same_split: bool = True


def metrics_for(task: str) -> list[str]:
    return {"binary": ["auc", "accuracy"], "multiclass": ["accuracy"]}.get(task, ["rmse"])


def verdict(metric: str, ours: float, hgb: float) -> tuple[str, bool]:
    """The gap as printed, and whether it meets the target."""
    if metric == "rmse":
        ratio = ours / hgb
        return f"x{ratio:.2f}", ratio <= RMSE_RATIO
    gap = ours - hgb
    return f"{gap:+.3f}", gap >= -POINTS - 1e-9


def run_table(table: Table, base: Path, tuner: bool) -> Result:
    work = base / table.name
    work.mkdir(parents=True)
    frame = load_frame(table)
    csv = work / f"{table.name}.csv"
    frame.to_csv(csv, index=False)
    project = work / "project"
    walls, nodes = {}, {}
    walls["init"], _ = _cli(
        ["init", str(project), "--data", str(csv), "--label", table.label],
        work, work / "init.log",
    )
    pipeline_text = (project / "pipelines" / f"{table.name}.py").read_text()
    decided = re.search(r"task=['\"](\w+)['\"]", pipeline_text).group(1)
    steps = re.search(r"^TRAIN_STEPS = (\d+)", pipeline_text, re.M)
    modes = [NO_TUNE] + ([TUNE] if tuner else [])
    roots = {mode: work / f"root-{mode}" for mode in modes}
    for mode in modes:
        flag = "--no-tune" if mode == NO_TUNE else "--tune"
        print(f"  {table.name}: beamline run {flag} ...", flush=True)
        walls[mode], out = _cli(
            ["run", table.name, flag, "--root", str(roots[mode]), "--run-id", f"bench-{mode}"],
            project, work / f"run-{mode}.log",
        )
        nodes[mode] = {n: float(s) for n, s in re.findall(r"(\w+)\s+executed\s+([\d.]+)s", out)}
    examples = {
        mode: output_uri(roots[mode], table.name, f"bench-{mode}", "CsvExampleGen", "examples")
        for mode in modes
    }
    train_records = read_split(examples[NO_TUNE], "train")
    eval_records = read_split(examples[NO_TUNE], "eval")
    same_split = all(
        sorted(read_split(examples[m], "eval")) == sorted(eval_records) for m in modes[1:]
    )
    columns = [str(c) for c in frame.columns]
    train = examples_frame(train_records, columns)
    evaluation = examples_frame(eval_records, columns)
    result = Result(
        table=table.name, task=table.task, decided_task=decided, label=table.label,
        rows=len(frame), train_rows=len(train), eval_rows=len(evaluation),
        train_steps=int(steps.group(1)) if steps else None, walls=walls, nodes=nodes,
        same_split=same_split,
    )
    positive = None
    for mode in modes:
        model = output_uri(roots[mode], table.name, f"bench-{mode}", "Trainer", "model")
        result.beamline[mode], positive = beamline_scores(model, eval_records, evaluation, table)
        result.evaluator[mode], result.blessed[mode] = evaluator_scores(
            roots[mode], table.name, f"bench-{mode}"
        )
    if tuner:
        from beamline.lineage.payloads import load_hyperparameters

        uri = output_uri(roots[TUNE], table.name, f"bench-{TUNE}", "Tuner", "best_hyperparameters")
        result.tuned_hyperparameters = load_hyperparameters(uri)
    result.hgb = hgb_scores(train, evaluation, table, positive)
    return result


def print_report(results: list[Result], tuner: bool) -> None:
    print("\nBeamline = the Trainer's SavedModel on the eval split, scored with scikit-learn; "
          "TFMA = the Evaluator's figure for the same model")
    header = ["table", "task", "rows (train/eval)", "metric", "Beamline no tuner"]
    if tuner:
        header.append("Beamline tuner")
    header += ["HGB", "gap (no tuner" + (" / tuner)" if tuner else ")"), "target met",
               "TFMA no tuner" + (" / tuner" if tuner else "")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        modes = [NO_TUNE] + ([TUNE] if tuner else [])
        for metric in metrics_for(r.task):
            ours = [r.beamline[m][metric] for m in modes]
            gaps = [verdict(metric, value, r.hgb[metric]) for value in ours]
            cells = [r.table, r.task, f"{r.rows} ({r.train_rows}/{r.eval_rows})", metric]
            cells += [f"{v:.4g}" if metric == "rmse" else f"{v:.3f}" for v in ours]
            cells.append(f"{r.hgb[metric]:.4g}" if metric == "rmse" else f"{r.hgb[metric]:.3f}")
            cells.append(" / ".join(g for g, _ in gaps))
            cells.append(" / ".join("yes" if ok else "no" for _, ok in gaps))
            cells.append(" / ".join(
                f"{r.evaluator[m].get(metric, float('nan')):.4g}" for m in modes
            ))
            lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))
    modes = [NO_TUNE] + ([TUNE] if tuner else [])
    runs = " / ".join(["init", "run --no-tune"] + (["run --tune"] if tuner else []))
    header = ["table", f"wall s: {runs}", "Transform / Tuner / Trainer / Evaluator s (tuned run)"
              if tuner else "Transform / Trainer / Evaluator s", "train steps", "blessed",
              "Tuner's choice"]
    lines = ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    shown = ["Transform", "Tuner", "Trainer", "Evaluator"] if tuner else [
        "Transform", "Trainer", "Evaluator"]
    for r in results:
        walls = " / ".join(f"{r.walls[k]:.0f}" for k in ["init", *modes])
        nodes = " / ".join(f"{r.nodes[modes[-1]].get(n, 0):.0f}" for n in shown)
        blessed = " / ".join("yes" if r.blessed.get(m) else "no" for m in modes)
        choice = ", ".join(f"{k} {v}" for k, v in r.tuned_hyperparameters.items()) or "-"
        notes = [] if r.decided_task == r.task else [f" (init decided {r.decided_task}!)"]
        if not r.same_split:
            notes.append(" (the tuned run's eval split differs!)")
        lines.append(f"| {r.table}{''.join(notes)} | {walls} | {nodes} | {r.train_steps} | "
                     f"{blessed} | {choice} |")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(DEFAULT_TABLES),
                        help=f"comma-separated, of: {', '.join(TABLES)}")
    parser.add_argument("--no-tuner", action="store_true", help="skip the run with the Tuner")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(TABLES)}")
    from beamline.settings import apply_tf_environment

    apply_tf_environment()  # before this process imports TensorFlow to read the splits
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-tabular-", dir=args.keep))
    print(f"working in {base}", flush=True)
    results = []
    for name in names:
        start = time.perf_counter()
        results.append(run_table(TABLES[name], base, tuner=not args.no_tuner))
        print(f"  {name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    print_report(results, tuner=not args.no_tuner)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
