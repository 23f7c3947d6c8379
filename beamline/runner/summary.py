"""The end-of-run summary a person reads (pure: RunOutcome in, text out)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from beamline.runner.outcome import RunOutcome
from beamline.runner.scheduler import CACHED, COMPLETE
from beamline.settings import DEFAULT_REST_PORT, SERVING_DIR_NAME


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
    if outcome.anomalies:
        lines.append(f"  anomalies: {outcome.anomalies}")
    if outcome.error:
        lines.append(f"  error in {outcome.failed_node}: {outcome.error}")
    if outcome.blessed is None:
        lines.append("  model: not evaluated")
    else:
        lines.append(f"  model blessed: {'yes' if outcome.blessed else 'no'}")
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
    elif outcome.blessed is not None or outcome.ok:
        lines.append("  pushed: nothing (model not blessed)" if outcome.blessed is False
                     else "  pushed: nothing")
    if serving_dir and outcome.ok:
        name = outcome.pipeline_name
        lines += ["  serve it:", f"    {_serve_command(name, serving_dir, port)}",
                  f"    curl -s localhost:{port}/v1/models/{name}"]
        if sample_instance:
            body = json.dumps({"instances": [sample_instance]})
            lines.append(
                f"    curl -s -d {shlex.quote(body)} localhost:{port}/v1/models/{name}:predict"
            )
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
