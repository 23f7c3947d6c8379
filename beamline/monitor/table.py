"""The per-feature table `beamline monitor` prints."""

from __future__ import annotations

import json

from beamline.monitor.compare import FeatureResult, Measure
from beamline.monitor.monitor import MonitorReport
from beamline.monitor.quality import QualityResult
from beamline.monitor.thresholds import L_INFINITY, PREDICTION

SHORT = {"infinity_norm": "L-inf", "jensen_shannon_divergence": "JSD"}


def _cell(measure: Measure | None) -> tuple[str, str]:
    if measure is None:
        return "-", "-"
    mark = "  CROSSED" if measure.crossed else ""
    return (
        f"{SHORT.get(measure.measure, measure.measure)} {measure.value:.3f}{mark}",
        f"{measure.threshold:g} ({measure.source})",
    )


def report_text(report: MonitorReport) -> str:
    lines = [
        f"Monitored {report.records} logged request(s) in {report.files} file(s) under "
        f"{report.requests_dir} for pipeline {report.pipeline}."
    ]
    for path, why in sorted(report.damaged.items()):
        lines.append(f"  skipped the rest of {path}: {why}")
    for version in report.versions:
        lines.append("")
        lines.append(
            f"{version.model_name} version {version.version}: {version.requests} request row(s) "
            f"from {version.first_secs} to {version.last_secs} (unix s), trained in run "
            f"{version.training_run}; monitoring execution #{version.execution_id}"
            + (
                f", drift against execution #{version.previous_execution}"
                if version.previous_execution
                else ", no previous window (no drift check)"
            )
        )
        rows = [
            (
                "feature",
                "skew vs training",
                "threshold",
                "drift vs previous",
                "threshold",
                "schema",
                "verdict",
            )
        ]
        for f in version.features:
            skew, skew_t = _cell(f.skew)
            drift, drift_t = _cell(f.drift)
            rows.append(
                (
                    f.feature,
                    skew,
                    skew_t,
                    drift,
                    drift_t,
                    "; ".join(f.schema) or "ok",
                    "CROSSED" if f.crossed else "ok",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        lines.extend(
            prediction_line(f) for f in version.features if f.kind == PREDICTION and f.skew
        )
        if version.crossed:
            lines.append(f"  thresholds crossed: {', '.join(version.crossed)}")
        lines.extend(quality_lines(version.quality))
    lines.append("")
    lines.append(verdict_line(report))
    return "\n".join(lines)


def prediction_line(result: FeatureResult) -> str:
    """What the prediction row measured, named as the prediction drift it is."""
    measure = result.skew
    what = "classes" if measure.measure == L_INFINITY else "numbers"
    label = result.feature.removeprefix(PREDICTION).strip()  # "(species)"
    return (
        f"  prediction drift {label}: the predicted {what} against the labels of the eval "
        f"split, {SHORT.get(measure.measure, measure.measure)} {measure.value:.3f} "
        f"(threshold {measure.threshold:g}, {measure.source}): "
        + ("CROSSED" if measure.crossed else "ok")
    )


def quality_lines(quality: QualityResult | None) -> list[str]:
    """The data-quality part of one version's section: summary, example rows, never sent."""
    if quality is None:
        return []
    mark = "  DATA QUALITY" if quality.crossed else ""
    lines = [f"  data quality: {quality.summary()}{mark}"]
    for example in quality.examples:
        why = "; ".join(
            f"{v['feature']} {v['kind']} ({v['detail']})" for v in example["violations"]
        )
        lines.append(
            f"    request at {example['request_secs']}: {why}: "
            f"{json.dumps(example['row'], sort_keys=True)[:200]}"
        )
    if quality.never_sent:
        lines.append(
            "  never sent: the model takes "
            + ", ".join(quality.never_sent)
            + ", which no logged request carried (it answers with their defaults)"
        )
    return lines


def verdict_line(report: MonitorReport) -> str:
    if report.crossed:
        also = " (and data quality: see the violations above)" if report.data_quality else ""
        return f"verdict: THRESHOLD CROSSED (retrain: beamline run on the newest data){also}"
    if report.data_quality:
        return (
            "verdict: DATA QUALITY (requests violate the schema; fix the clients - retraining "
            "cannot fix bad requests)"
        )
    return "verdict: ok"
