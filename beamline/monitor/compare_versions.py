"""`monitor --compare A B`: which versions A and B are, and their traffic in the window.

A and B are labels (`stable`, `canary`, any promoted label: their holders now, from the label
history in ML Metadata) or version numbers. The outcome files give requests, errors and
latency; the PredictionLog records give the predicted classes, or a regression model's
predicted numbers (beamline.monitor.canary).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from beamline.errors import ConfigError, DataError
from beamline.monitor.canary import CompareThresholds, Comparison, Side, compare_sides, side_of
from beamline.monitor.trained import pushed_versions, served_name
from beamline.monitor.window import MonitorInputError, describe_bound, read_window
from beamline_serving.request_log.outcomes import outcome_files, read_outcomes


def resolve(store, pipeline: str, name: str) -> int:
    """The version a label holds now, or the version a number names."""
    from beamline.metadata import labels

    if name.isdigit():
        return int(name)
    held = labels.holders(labels.history(store, pipeline))
    if name not in held:
        known = ", ".join(f"{k} (version {v})" for k, v in sorted(held.items())) or "none"
        raise ConfigError(
            f"--compare {name!r}: no version of pipeline {pipeline!r} holds that label (labels "
            f"held now: {known}). Name a held label or a version number, e.g. "
            f"--compare stable canary or --compare 3 4."
        )
    return held[name]


def _ms(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def compare_versions(
    pipeline: str,
    requests_dir: Path,
    graph,
    store,
    names: tuple[str, str],
    since: dt.datetime | None,
    until: dt.datetime | None,
    limits: CompareThresholds,
) -> Comparison:
    versions = [resolve(store, pipeline, n) for n in names]
    if versions[0] == versions[1]:
        raise ConfigError(
            f"--compare {names[0]} {names[1]}: both are version {versions[0]}, so there is "
            "nothing to compare. Compare two different versions (is there a canary?: "
            f"beamline labels {pipeline})."
        )
    pushed = pushed_versions(graph)
    missing = [v for v in versions if v not in pushed]
    if missing:
        raise ConfigError(
            f"--compare: version {missing[0]} was never pushed by pipeline {pipeline!r} in "
            f"{graph.source} (pushed: {', '.join(map(str, sorted(pushed))) or 'none'})."
        )
    model_name = served_name(pushed[versions[0]])
    named = list(zip(names, versions, strict=True))
    sides = sides_in_window(requests_dir, model_name, named, since, until)
    return compare_sides(pipeline, model_name, sides[0], sides[1], limits)


def sides_in_window(
    requests_dir: Path,
    model_name: str,
    named: list[tuple[str, int]],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[Side]:
    """Each (name, version)'s traffic in the window: outcomes give requests, errors and
    latency; PredictionLog records give the predictions. Refuses a directory without
    outcome files and a window in which none of the versions answered."""
    if not outcome_files(requests_dir):
        raise DataError(
            f"{requests_dir} holds no request outcome files (*.outcomes.tsv), which give the "
            "error rate and latency per version: serve with --request_log_dir pointing there "
            "(beamline serve writes them beside the request logs), send traffic, then compare."
        )
    outcomes: dict[int, list] = {version: [] for _, version in named}
    for outcome in read_outcomes(requests_dir, _ms(since), _ms(until)):
        if outcome.model_name == model_name and outcome.version in outcomes:
            outcomes[outcome.version].append(outcome)
    if not any(outcomes.values()):
        versions = " or ".join(str(version) for _, version in named)
        raise DataError(
            f"No request to versions {versions} of {model_name} was logged "
            f"in {requests_dir} between {describe_bound(since, 'the start')} and "
            f"{describe_bound(until, 'now')}. Widen --since/--until, or send traffic first."
        )
    try:
        traffic_of = read_window(requests_dir, since, until).traffic
    except MonitorInputError:  # no PredictionLog (sampling 0): no predictions to compare
        traffic_of = {}
    sides = []
    for name, version in named:
        traffic = traffic_of.get((model_name, version))
        predicted = traffic.predicted if traffic is not None else []
        values = traffic.predicted_values if traffic is not None else []
        sides.append(side_of(name, version, outcomes[version], predicted, values))
    return sides


def stable_and_canary(
    graph,
    requests_dir: Path,
    stable: int,
    canary: int,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> tuple[str, Side, Side]:
    """(model name, stable's side, canary's side) in the window: the sides the loop's canary
    review and the UI compare. Raises DataError as sides_in_window does, and when neither
    version has a push record (which names the model)."""
    from beamline.metadata.records import CANARY_LABEL, STABLE_LABEL

    pushed = pushed_versions(graph)
    known = pushed.get(stable) or pushed.get(canary)
    if known is None:
        raise DataError(
            f"Neither version {stable} nor {canary} has a push record in {graph.source}."
        )
    model_name = served_name(known)
    base, candidate = sides_in_window(
        requests_dir, model_name, [(STABLE_LABEL, stable), (CANARY_LABEL, canary)], since, until
    )
    return model_name, base, candidate
