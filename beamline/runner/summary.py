"""The end-of-run summary a person reads (pure: RunOutcome in, text out)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from beamline.runner.outcome import RunOutcome
from beamline.runner.scheduler import CACHED, COMPLETE
from beamline.settings import DEFAULT_REST_PORT, SERVING_DIR_NAME

# Blessed, said where a newcomer first meets the word (docs/get-started.md defines it too).
BLESSED = "yes (the Evaluator passed it: only a blessed model is pushed)"
NOT_BLESSED = "no (below the Evaluator's thresholds, so not pushed: `beamline why Pusher`)"
# A run built without its Pusher (a sweep's variant, `beamline run --set A=1,2`).
NO_PUSHER = "  pushed: nothing (this run has no Pusher; a sweep pushes with --push best)"


def format_summary(outcome: RunOutcome) -> str:
    serving_dir, sample_instance = outcome.serving_dir, outcome.sample_instance
    port = DEFAULT_REST_PORT
    states = outcome.node_states
    executed = sum(1 for s in states.values() if s == COMPLETE)
    cached = sum(1 for s in states.values() if s == CACHED)
    lines = [
        "",
        f"Run {outcome.run_id} of '{outcome.pipeline_name}': "
        + ("succeeded" if outcome.ok else "FAILED"),
        f"  nodes: {executed} executed, {cached} cached, {len(states)} in all",
    ]
    if outcome.rows_without_label:
        lines.append(f"  rows without a label: {outcome.rows_without_label:,} (left out of "
                     "training and evaluation)")
    if outcome.anomalies:
        lines.append(f"  anomalies: {outcome.anomalies}")
    if outcome.error:
        lines.append(f"  error in {outcome.failed_node}: {outcome.error}")
    no_pusher = bool(states) and "Pusher" not in states
    if outcome.blessed is None:
        lines.append("  model: not evaluated")
    elif no_pusher:
        lines.append(f"  model blessed: {'yes' if outcome.blessed else 'no'}")
    else:
        lines.append(f"  model blessed: {BLESSED if outcome.blessed else NOT_BLESSED}")
    pusher_cached = states.get("Pusher") == CACHED
    if outcome.pushed and pusher_cached:
        lines.append(
            f"  pushed: nothing new (unchanged: version {outcome.pushed_version} stays at "
            f"{outcome.pushed_path})"
        )
    elif outcome.pushed:
        lines.append(f"  pushed: version {outcome.pushed_version} -> {outcome.pushed_path}")
        if outcome.labels:
            lines.append(f"  labels: {', '.join(outcome.labels)} (`beamline labels "
                         f"{outcome.pipeline_name}`)")
    elif no_pusher and outcome.ok:
        lines.append(NO_PUSHER)
    elif outcome.blessed is not None or outcome.ok:
        lines.append("  pushed: nothing (model not blessed)" if outcome.blessed is False
                     else "  pushed: nothing")
    if serving_dir and outcome.ok:
        name = outcome.pipeline_name
        lines += ["  serve it:", f"    {_serve_command(name, serving_dir, port)}",
                  f"    curl -s localhost:{port}/v1/models/{name}"]
        if sample_instance:
            lines.append(f"    {predict_curl(name, sample_instance, f'localhost:{port}')}")
    if outcome.log_path:
        lines.append(f"  log: {outcome.log_path}")
    return "\n".join(lines) + "\n"


def _serve_command(name: str, serving_dir: str, port: int) -> str:
    """`serve --root` for a run root's serving directory: it follows the version labels (a
    canary push must not serve unversioned traffic); a directory elsewhere is served as is."""
    directory = Path(serving_dir)
    if directory.name == name and directory.parent.name == SERVING_DIR_NAME:
        return (f"beamline serve --root {shlex.quote(str(directory.parent.parent))} "
                f"--rest_api_port {port}")
    return (f"beamline serve --model_name {name} --model_base_path "
            f"{shlex.quote(serving_dir)} --rest_api_port {port}")


def predict_curl(name: str, sample_instance: dict, base_url: str) -> str:
    """The curl that asks model `name` at `base_url` to predict the pipeline's SAMPLE_INSTANCE
    (the run summary's, and `beamline serve`'s ready line's)."""
    body = json.dumps({"instances": [sample_instance]})
    return f"curl -s -d {shlex.quote(body)} {base_url}/v1/models/{name}:predict"
