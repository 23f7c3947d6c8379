"""One `beamline monitor` pass: read the window, find each version's training data, compare,
then write the window's statistics and one MLMD execution per version.

Every check that can fail on bad input (log directory, window, lineage, statistics files) runs
before anything is written: the monitoring directory is built under a temporary name, renamed
when complete, and recorded in MLMD last; a failure removes it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline.errors import DataError
from beamline.monitor.compare import (
    FeatureResult,
    compare,
    in_environment,
    label_features,
    monitored_features,
    prediction_result,
    prediction_values_result,
)
from beamline.monitor.quality import (
    DEFAULT_MAX_INVALID_FRACTION,
    QualityResult,
    check_rows,
    serving_inputs,
)
from beamline.monitor.record import SERVING_SPLIT, previous_window, record_monitoring
from beamline.monitor.statistics import generate_statistics, load_schema_text, load_statistics
from beamline.monitor.trained import (
    EVAL_SPLIT,
    TRAIN_SPLIT,
    Trained,
    pushed_versions,
    served_name,
    trained_for,
)
from beamline.monitor.window import VersionTraffic, Window, read_window, write_examples
from beamline.timefmt import format_secs, format_time

STATS_FILE = "FeatureStats.pb"

# A window's verdict (also the `verdict` of its monitoring execution in MLMD).
OK = "ok"
THRESHOLD_CROSSED = "threshold crossed"  # a distribution moved: skew, drift, predictions
DATA_QUALITY = "data quality"  # too many requests violate the schema (nothing moved)


class UnknownVersion(DataError):
    """Logged traffic was answered by a version whose lineage this store does not hold."""


@dataclass
class VersionReport:
    model_name: str
    version: int
    requests: int
    first_secs: int
    last_secs: int
    training_run: str
    features: list[FeatureResult] = field(default_factory=list)
    previous_execution: int | None = None
    execution_id: int | None = None
    directory: str = ""
    quality: QualityResult | None = None

    @property
    def crossed(self) -> list[str]:
        """Features whose distribution moved (skew/drift), over the valid request rows."""
        return [f.feature for f in self.features if f.crossed]

    @property
    def data_quality(self) -> bool:
        return self.quality is not None and self.quality.crossed

    @property
    def verdict(self) -> str:
        """Drift first: it is measured on the rows that match the schema, so it is real; a
        window with both is reported with both (`data_quality` stays true)."""
        if self.crossed:
            return THRESHOLD_CROSSED
        return DATA_QUALITY if self.data_quality else OK

    def to_json(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "requests": self.requests,
            "first_request": format_secs(self.first_secs),
            "last_request": format_secs(self.last_secs),
            "training_run": self.training_run,
            "previous_execution": self.previous_execution,
            "execution_id": self.execution_id,
            "directory": self.directory,
            "crossed": self.crossed,
            "verdict": self.verdict,
            "data_quality": self.quality.to_json() if self.quality else None,
            "features": [f.to_json() for f in self.features],
        }


@dataclass(frozen=True)
class MonitorRequest:
    """What one monitoring of a window asks for (`beamline monitor`, a loop step), as data.

    Attributes:
        pipeline: The pipeline whose pushed versions answered the traffic.
        requests_dir: The request log directory (`beamline serve --request_log_dir`).
        monitoring_root: Where each window's statistics go (the run root's monitoring/).
        since: The window's start; None: the first logged request.
        until: The window's end (exclusive); None: the last logged request.
        overrides: Threshold per feature (`--threshold FEATURE=VALUE`).
        beam_profile: The Beam profile of the statistics (`--beam`): a local one (auto,
            direct, direct-multi) computes them in this process, a cluster's runs TFDV's Beam
            job there.
        max_invalid_fraction: Share of rows that may violate the schema before the verdict is
            data quality.
    """

    pipeline: str
    requests_dir: Path
    monitoring_root: Path
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    overrides: dict[str, float] = field(default_factory=dict)
    beam_profile: str = "auto"
    max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION

    def beam_args(self, input_bytes: int) -> list[str]:
        """The statistics job's Beam flags, sized to the window's examples."""
        from beamline.beam import beam_args

        return beam_args(self.beam_profile, input_bytes)

    @property
    def statistics_in_process(self) -> bool:
        """The window's rows are in this process already: with a local profile their
        statistics are computed here (beamline.monitor.statistics, TFDV's figures without
        TensorFlow), not by a Beam job whose start-up cost a loop step more than all its other
        work. A cluster profile was asked for on purpose: it still gets TFDV's Beam job."""
        from beamline.beam import AUTO, PROFILES

        local = "--runner=DirectRunner"
        return self.beam_profile == AUTO or local in PROFILES.get(self.beam_profile, ())


@dataclass
class MonitorReport:
    pipeline: str
    requests_dir: str
    since: str | None
    until: str | None
    files: int
    records: int
    damaged: dict[str, str]
    versions: list[VersionReport] = field(default_factory=list)

    @property
    def crossed(self) -> bool:
        """A distribution moved in some version's traffic (exit 8 in `monitor`)."""
        return any(v.crossed for v in self.versions)

    @property
    def data_quality(self) -> bool:
        """Too many schema violations in some version's traffic (exit 9 when nothing moved)."""
        return any(v.data_quality for v in self.versions)

    @property
    def verdict(self) -> str:
        if self.crossed:
            return THRESHOLD_CROSSED
        return DATA_QUALITY if self.data_quality else OK

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "requests_dir": self.requests_dir,
            "since": self.since,
            "until": self.until,
            "log_files": self.files,
            "log_records": self.records,
            "damaged_files": self.damaged,
            "verdict": self.verdict,
            "versions": [v.to_json() for v in self.versions],
        }


def _load_stats(path: str, what: str):
    if not os.path.isfile(path):
        raise DataError(
            f"The {what} {path} is missing, though MLMD records it: the run root was moved or "
            "cleaned. Monitor against the run root that holds the pipeline's artifacts."
        )
    return load_statistics(path)


def _traffic_to_monitor(
    window: Window, graph, pipeline: str
) -> list[tuple[VersionTraffic, Trained]]:
    pairs = []
    names_in_pipeline = {n for n in _served_names(graph)}
    for (name, version), traffic in sorted(window.traffic.items()):
        if name not in names_in_pipeline:
            continue  # another model on the same server
        pushed = pushed_versions(graph, name).get(version)
        trained = trained_for(graph, pushed, version) if pushed is not None else None
        if trained is None:
            known = ", ".join(str(v) for v in sorted(pushed_versions(graph, name))) or "none"
            raise UnknownVersion(
                f"{len(traffic.rows)} logged request row(s) of model {name!r} were answered by "
                f"version {version}, whose lineage (push, training data, schema) is not in "
                f"{graph.source} for pipeline {pipeline!r} (versions pushed there: {known}). "
                "Point --root/--metadata at the store of the run that pushed it, or narrow "
                "--since/--until to traffic of known versions."
            )
        pairs.append((traffic, trained))
    if not pairs:
        served = ", ".join(sorted({n for n, _ in window.traffic})) or "none"
        raise DataError(
            f"No logged request in the window was for a model pipeline {pipeline!r} pushed "
            f"(models in the logs: {served}; served names of the pipeline's pushes: "
            f"{', '.join(sorted(names_in_pipeline)) or 'none'}). Check the pipeline name and "
            "--requests."
        )
    return pairs


def _served_names(graph) -> set[str]:
    return {served_name(art) for art in pushed_versions(graph).values()}


def _statistics(request: MonitorRequest, rows: list, examples: Path, output: Path):
    """The window's statistics (`rows`, also written to `examples` as tf.Examples), written to
    `output`."""
    if request.statistics_in_process:
        stats = generate_statistics(rows)
    else:
        import tensorflow_data_validation as tfdv
        from apache_beam.options.pipeline_options import PipelineOptions

        stats = tfdv.generate_statistics_from_tfrecord(
            data_location=str(examples),
            output_path=str(output.parent / "stats.tfrecord"),
            pipeline_options=PipelineOptions(request.beam_args(examples.stat().st_size)),
        )
        (output.parent / "stats.tfrecord").unlink(missing_ok=True)
    output.write_bytes(stats.SerializeToString())
    return stats


def run_monitor(
    request: MonitorRequest, graph, store, window: Window | None = None
) -> MonitorReport:
    """Monitors the window; returns the report (records it in MLMD). `window`: the request
    rows already read (a caller that needed them first), else read here."""
    pipeline, requests_dir = request.pipeline, request.requests_dir
    window = window or read_window(requests_dir, request.since, request.until)
    pairs = _traffic_to_monitor(window, graph, pipeline)
    report = MonitorReport(
        pipeline=pipeline,
        requests_dir=str(requests_dir),
        since=format_time(request.since) if request.since else None,
        until=format_time(request.until) if request.until else None,
        files=len(window.scan.files),
        records=window.scan.records,
        damaged=dict(window.scan.damaged),
    )
    staged: list[tuple[VersionReport, Path, Path, Trained, dict[str, int]]] = []
    try:
        for traffic, trained in pairs:
            training = _load_stats(trained.statistics_path(TRAIN_SPLIT), "training statistics")
            evaluation = _load_stats(trained.statistics_path(EVAL_SPLIT), "eval split statistics")
            schema_path = trained.schema_path()
            if not os.path.isfile(schema_path):
                raise DataError(f"The schema {schema_path} recorded in MLMD is missing.")
            schema = load_schema_text(schema_path)
            sent = window.inputs_sent[(traffic.model_name, traffic.version)]
            features = monitored_features(schema, sent)
            quality, valid = check_rows(
                traffic.rows,
                traffic.stamps,
                schema,
                lambda f, schema=schema: in_environment(f, schema, "SERVING"),
                _model_inputs(trained),
                sent,
                request.max_invalid_fraction,
            )
            # Distributions are compared over the rows that match the schema: bad requests are
            # data quality, never drift. A window of nothing but bad rows keeps them all (its
            # statistics still describe the window) and claims no drift.
            valid_rows = [r for r, ok in zip(traffic.rows, valid, strict=True) if ok]
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            name = "-".join(
                map(str, (traffic.model_name, traffic.version, traffic.first_secs, stamp))
            )
            final = request.monitoring_root / pipeline / name
            work = final.with_name(f".{name}.tmp")
            (work / f"Split-{SERVING_SPLIT}").mkdir(parents=True, exist_ok=True)
            staged.append((None, work, final, trained, {}))
            examples = work / "requests.tfrecord"
            write_examples(valid_rows or traffic.rows, examples)
            logged = _statistics(
                request,
                valid_rows or traffic.rows,
                examples,
                work / f"Split-{SERVING_SPLIT}" / STATS_FILE,
            )
            previous = previous_window(store, pipeline, traffic.model_name, traffic.first_secs)
            previous_stats = None
            if previous is not None:
                previous_stats = _load_stats(
                    os.path.join(previous.statistics_uri, f"Split-{SERVING_SPLIT}", STATS_FILE),
                    "previous window's statistics",
                )
            results = compare(training, logged, previous_stats, schema, features, request.overrides)
            labels = label_features(schema)
            label = labels[0] if len(labels) == 1 else None
            predicted = prediction_result(
                _of_valid(traffic.predicted, valid), evaluation, label, request.overrides
            ) or prediction_values_result(
                _of_valid(traffic.predicted_values, valid), evaluation, label, request.overrides
            )
            if predicted is not None:
                results.append(predicted)
            if not valid_rows:
                for result in results:
                    result.skew = result.drift = None
            version_report = VersionReport(
                model_name=traffic.model_name,
                version=traffic.version,
                requests=len(traffic.rows),
                first_secs=traffic.first_secs,
                last_secs=traffic.last_secs,
                training_run=trained.run_id,
                features=results,
                previous_execution=previous.execution_id if previous else None,
                directory=str(final),
                quality=quality,
            )
            inputs = {
                "model": trained.model.id,
                "pushed_model": trained.pushed.id,
                "statistics": trained.statistics.id,
                "schema": trained.schema.id,
            }
            if previous is not None:
                inputs["previous_statistics"] = _artifact_of(store, previous.statistics_uri)
            staged[-1] = (version_report, work, final, trained, inputs)
        for version_report, work, final, _, _ in staged:
            (work / "result.json").write_text(json.dumps(version_report.to_json(), indent=2))
            work.rename(final)
        for version_report, _, final, _, inputs in staged:
            version_report.execution_id = record_monitoring(
                store,
                pipeline,
                {k: v for k, v in inputs.items() if v is not None},
                statistics_uri=str(final),
                result_uri=str(final / "result.json"),
                summary={
                    "model_name": version_report.model_name,
                    "version": version_report.version,
                    "first_secs": version_report.first_secs,
                    "last_secs": version_report.last_secs,
                    "requests": version_report.requests,
                    "verdict": version_report.verdict,
                    "crossed": version_report.crossed,
                    "invalid_rows": (
                        version_report.quality.invalid_rows if version_report.quality else 0
                    ),
                    "result": version_report.to_json(),
                },
            )
            report.versions.append(version_report)
    except BaseException:
        for version_report, work, final, _, _ in staged:
            if version_report is None or version_report.execution_id is None:
                shutil.rmtree(work, ignore_errors=True)
                shutil.rmtree(final, ignore_errors=True)
        raise
    return report


def _of_valid(answers: list, valid: list[bool]) -> list:
    """The answers to the rows that match the schema; none when some rows' answers are
    unknown (then answers and rows no longer line up)."""
    if len(answers) != len(valid):
        return []
    return [a for a, ok in zip(answers, valid, strict=True) if ok]


def _model_inputs(trained: Trained) -> set[str] | None:
    """The inputs of the pushed SavedModel's serving signature: the features it needs."""
    destination = trained.pushed.prop("pushed_destination")
    return serving_inputs(str(destination)) if destination else None


def _artifact_of(store, uri: str) -> int | None:
    found = [a for a in store.get_artifacts_by_uri(uri)]
    return found[-1].id if found else None
