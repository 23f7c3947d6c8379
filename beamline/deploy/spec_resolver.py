"""Vertex `resolver` tasks run by `beamline run --spec --as vertex`, against this root's record.

On Vertex a resolver task queries Vertex ML Metadata with the filters TFX writes for its two
strategies (tfx/orchestration/kubeflow/v2/step_builder.py): LatestArtifactStrategy,
`schema_title="T" AND state=LIVE`; LatestBlessedModelStrategy, the latest
`schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1`, then the
Model whose `name` is that blessing's `current_model_id`. Here the store is the record earlier
spec runs left under `<root>/pipelines/<pipeline>/<task>/<run id>/`: each task's
`executor_input.json` (what it was to produce, with types) and `output_metadata.json` (what it
reported). The newest match (by run id, which starts with the run's UTC start time) wins; no
match gives the task no artifact, as Vertex gives an empty list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beamline.errors import ConfigError

_TITLE = re.compile(r"^title:\s*(\S+)", re.MULTILINE)
_INPUT_METADATA = re.compile(
    r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}"
)


def type_title(artifact_type: Mapping[str, Any]) -> str:
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    found = _TITLE.search(artifact_type.get("instanceSchema", ""))
    return found.group(1) if found else ""


def recorded(pipeline_root: Path, current_run: str) -> list[dict[str, Any]]:
    """Every artifact earlier runs' tasks produced: name, uri, metadata, type, run, title."""
    found = []
    for task_input in sorted(pipeline_root.glob("*/*/executor_input.json")):
        run_id = task_input.parent.name
        output_file = task_input.parent / "output_metadata.json"
        if run_id == current_run or not output_file.is_file():
            continue  # this run's own outputs, or a task that failed
        given = json.loads(task_input.read_text(encoding="utf-8"))["outputs"]["artifacts"]
        reported = json.loads(output_file.read_text(encoding="utf-8") or "{}").get("artifacts", {})
        for key, value in given.items():
            artifact = {**value["artifacts"][0],
                        **(reported.get(key, {}).get("artifacts") or [{}])[0]}
            found.append({**artifact, "run": run_id, "title": type_title(artifact["type"])})
    return found


def resolve(
    task: str, queries: Mapping[str, Any], inputs: Mapping[str, Any],
    artifacts: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Output key -> the newest recorded artifact matching its query (absent when none does)."""
    outputs = {}
    for key, query in queries.items():
        clauses = [_clause(task, c, inputs) for c in query.get("filter", "").split(" AND ")]
        matches = [a for a in artifacts if all(_matches(a, field, value)
                                               for field, value in clauses)]
        if matches:
            newest = max(matches, key=lambda a: a["run"])
            outputs[key] = {k: newest[k] for k in ("name", "uri", "metadata", "type")}
    return outputs


def _clause(task: str, clause: str, inputs: Mapping[str, Any]) -> tuple[str, str | None]:
    field, sep, value = clause.strip().partition("=")
    if not sep:
        raise ConfigError(f"Resolver task {task!r}: cannot read filter clause {clause!r}.")

    def from_input(match: re.Match) -> str:
        listed = inputs.get(match.group(1), {}).get("artifacts", [])
        value = listed[0].get("metadata", {}).get(match.group(2)) if listed else None
        return "" if value is None else str(value)

    value = _INPUT_METADATA.sub(from_input, value.strip())
    if "{{$" in value:
        raise ConfigError(f"Resolver task {task!r}: cannot fill placeholder in {clause!r}.")
    field = field.strip()
    if field not in ("schema_title", "state", "name") and not re.fullmatch(
        r"metadata\.\w+\.(number|string)_value", field
    ):
        raise ConfigError(f"Resolver task {task!r}: filter field {field!r} is not one TFX "
                          "writes (schema_title, state, name, metadata.KEY.number_value).")
    return field, value.strip('"') or None


def _matches(artifact: Mapping[str, Any], field: str, value: str | None) -> bool:
    if field == "state":
        return True  # nothing here deletes or marks artifacts: every recorded one is LIVE
    if value is None:
        return False  # a placeholder that resolved to nothing matches nothing
    if field == "schema_title":
        return artifact["title"] == value
    if field == "name":
        return artifact.get("name") == value
    _, key, kind = field.split(".")
    recorded_value = artifact.get("metadata", {}).get(key)
    if recorded_value is None:
        return False
    if kind == "number_value":
        return float(recorded_value) == float(value)
    return str(recorded_value) == value
