"""The Flink configuration `beamline flink up` writes: Flink's shipped config.yaml (it carries
the JVM flags Java 17 needs) with this machine's sizes and every address on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from beamline.flink.home import FlinkHome, flink_ports
from beamline.flink.settings import (
    FLINK_HOST,
    FLINK_JOBMANAGER_PROCESS_SIZE,
    FLINK_NETWORK_MEMORY,
    FLINK_SLOTS,
    FLINK_SORT_SHUFFLE_MIN_BUFFERS,
    FLINK_TASKMANAGER_PROCESS_SIZE,
)


def overrides(home: FlinkHome) -> dict[str, object]:
    """Flat Flink keys this cluster sets over the shipped defaults."""
    ports = flink_ports()
    return {
        "jobmanager.rpc.address": FLINK_HOST,
        "jobmanager.rpc.port": ports.rpc,
        "jobmanager.bind-host": FLINK_HOST,
        "jobmanager.memory.process.size": FLINK_JOBMANAGER_PROCESS_SIZE,
        "taskmanager.bind-host": FLINK_HOST,
        "taskmanager.host": FLINK_HOST,
        "taskmanager.numberOfTaskSlots": FLINK_SLOTS,
        "taskmanager.memory.process.size": FLINK_TASKMANAGER_PROCESS_SIZE,
        "taskmanager.memory.network.min": FLINK_NETWORK_MEMORY,
        "taskmanager.memory.network.max": FLINK_NETWORK_MEMORY,
        "taskmanager.network.sort-shuffle.min-buffers": FLINK_SORT_SHUFFLE_MIN_BUFFERS,
        # One slot per Beam job: two nodes may run at once on the two slots.
        "parallelism.default": 1,
        "rest.address": FLINK_HOST,
        "rest.bind-address": FLINK_HOST,
        "rest.port": ports.rest,
        # Flink's default, "*", lets any web page the user opens read the REST API's answers
        # (jar ids, jobs); only Flink's own web UI, served from this origin, may.
        "web.access-control-allow-origin": f"http://{FLINK_HOST}:{ports.rest}",
        # A TaskManager that died is noticed in 20 s, not 50: its job fails instead of hanging.
        "heartbeat.timeout": 20000,
        "io.tmp.dirs": str(home.tmp_dir),
        "web.tmpdir": str(home.tmp_dir / "web"),
        "web.upload.dir": str(home.tmp_dir / "uploads"),
        "blob.storage.directory": str(home.tmp_dir / "blobs"),
    }


def _nest(flat: dict[str, object]) -> dict:
    nested: dict = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def write_config(home: FlinkHome) -> Path:
    """conf/ for the cluster: config.yaml merged, Flink's logging configs copied."""
    shipped = home.flink_dist / "conf"
    home.conf_dir.mkdir(parents=True, exist_ok=True)
    for d in (home.log_dir, home.tmp_dir / "web", home.tmp_dir / "uploads", home.tmp_dir / "blobs"):
        d.mkdir(parents=True, exist_ok=True)
    for item in shipped.iterdir():
        if item.name != "config.yaml" and item.is_file():
            shutil.copyfile(item, home.conf_dir / item.name)
    base = yaml.safe_load((shipped / "config.yaml").read_text()) or {}
    # Flat keys in the shipped file and nested ones must not both hold a key: nest everything.
    merged = _merge(_nest(_flatten(base)), _nest(overrides(home)))
    path = home.conf_dir / "config.yaml"
    path.write_text(
        "# Written by `beamline flink up` (beamline/flink/config.py); rewritten on every up.\n"
        + yaml.safe_dump(merged, sort_keys=True)
    )
    return path
