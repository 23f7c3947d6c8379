"""The serving view of the label history: `<root>/serving/models.config` (+ `routing.json`).

`models.config` is a text `ModelServerConfig` as TF Serving reads it with `--model_config_file`:
one `config` per pipeline that has labels, its `specific` version policy listing every labelled
version and `version_labels` naming them. It is always rewritten whole from the MLMD history
(never edited in place), atomically (temp file, fsync, rename), under `<root>/locks/labels.lock`
so that concurrent promotes serialize and each one's record and file agree. Nothing here needs
a live server: a server started later reads the file as it is.

`routing.json` holds Beamline's extensions TF Serving has no field for:
`{"models": {"<name>": {"canary_percent": N}}}`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from beamline.settings import RootLayout

MODELS_CONFIG = "models.config"
ROUTING_FILE = "routing.json"
LABELS_LOCK = "labels.lock"
# How long a label move waits for a live server to load the version it moves to.
LOAD_TIMEOUT_S = 30.0
_POLL_S = 0.05


def models_config_path(layout: RootLayout) -> Path:
    return layout.serving_root / MODELS_CONFIG


def routing_path(layout: RootLayout) -> Path:
    return layout.serving_root / ROUTING_FILE


@contextlib.contextmanager
def labels_lock(layout: RootLayout) -> Iterator[None]:
    """Holds `<root>/locks/labels.lock` (waiting for another holder: label changes take
    milliseconds). The kernel releases it when the holder dies, even by kill -9."""
    path = layout.locks_dir / LABELS_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _quote(text: str) -> str:
    return json.dumps(text)  # a valid text-proto string literal for these characters


def render(
    layout: RootLayout,
    labels: Mapping[str, Mapping[str, int]],
    extra_versions: Mapping[str, set[int]] | None = None,
) -> str:
    """The ModelServerConfig text for `labels` (pipeline -> label -> version); `extra_versions`
    are loaded too without a label (the first step of a label move, see apply_change)."""
    lines = [
        "# Written by Beamline from the label history in ML Metadata (beamline labels).",
        "# Do not edit: the next promote, rollback or push rewrites it.",
        "model_config_list {",
    ]
    for pipeline in sorted(labels):
        held = labels[pipeline]
        versions = set(held.values()) | set((extra_versions or {}).get(pipeline, ()))
        if not versions:
            continue
        lines += [
            "  config {",
            f"    name: {_quote(pipeline)}",
            f"    base_path: {_quote(str(layout.serving_dir(pipeline)))}",
            '    model_platform: "tensorflow"',
            "    model_version_policy {",
            "      specific {",
            *(f"        versions: {v}" for v in sorted(versions)),
            "      }",
            "    }",
        ]
        for label in sorted(held):
            lines += [
                "    version_labels {",
                f"      key: {_quote(label)}",
                f"      value: {held[label]}",
                "    }",
            ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """`text` at `path`, all or nothing: temp file, fsync, rename, fsync of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def current_labels(store) -> dict[str, dict[str, int]]:
    """pipeline -> label -> version, now, for every pipeline with a label history."""
    from beamline.metadata.labels import history, holders, pipelines_with_labels

    return {p: holders(history(store, p)) for p in pipelines_with_labels(store)}


def sync(store, layout: RootLayout) -> Path:
    """Rewrites models.config from the store's history (call under labels_lock)."""
    path = models_config_path(layout)
    write_atomically(path, render(layout, current_labels(store)))
    return path


def apply_change(
    store,
    layout: RootLayout,
    before: Mapping[str, Mapping[str, int]],
    rest_port: int | None,
    timeout_s: float = LOAD_TIMEOUT_S,
) -> Path:
    """Writes models.config for the store's labels now, `before` being the labels before the
    change just recorded (call under labels_lock).

    TF Serving checks labels before it loads new versions: one config that both adds version N
    to `specific` and moves a label to N fails on every reload. So a move to a version that was
    not loaded goes in two writes: first the new versions beside the old labels, then, once a
    live server on 127.0.0.1:`rest_port` reports them AVAILABLE (or none answers, or
    `timeout_s` passed), the labels. A server that is down reads the final file when it starts.
    """
    after = current_labels(store)
    new_versions = {
        p: set(held.values()) - set(before.get(p, {}).values()) for p, held in after.items()
    }
    path = models_config_path(layout)
    if any(new_versions.values()):
        staged = {p: dict(before.get(p, {})) for p in after}
        write_atomically(path, render(layout, staged, extra_versions=after_versions(after)))
        for pipeline, versions in new_versions.items():
            for version in sorted(versions):
                wait_until_available(pipeline, version, rest_port, timeout_s)
    write_atomically(path, render(layout, after))
    return path


def after_versions(labels: Mapping[str, Mapping[str, int]]) -> dict[str, set[int]]:
    return {p: set(held.values()) for p, held in labels.items()}


def model_states(pipeline: str, rest_port: int | None, timeout_s: float = 0.5
                 ) -> dict[int, str] | None:
    """version -> state a live server reports for the model; None when no server answers
    ({} when one answers without the model)."""
    import urllib.error
    import urllib.request

    if not rest_port:
        return None
    url = f"http://127.0.0.1:{rest_port}/v1/models/{pipeline}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError:
        return {}
    except (OSError, ValueError):
        return None
    return {
        int(s["version"]): str(s.get("state", ""))
        for s in body.get("model_version_status", [])
        if str(s.get("version", "")).isdigit()
    }


def wait_until_available(
    pipeline: str, version: int, rest_port: int | None, timeout_s: float
) -> bool:
    """Polls a live server until it has `version` AVAILABLE; False when none answers, when the
    one answering does not serve this model at all (another root's server), when the version
    failed to load (END) or `timeout_s` passed."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        states = model_states(pipeline, rest_port)
        if not states:
            return False
        state = states.get(int(version), "")
        if state == "END":
            return False
        if state == "AVAILABLE":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def read_routing(layout: RootLayout) -> dict:
    path = routing_path(layout)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"models": {}}
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        return {"models": {}}
    return data


def set_canary_percent(layout: RootLayout, pipeline: str, percent: float) -> Path:
    """Sets one model's canary share in routing.json (call under labels_lock)."""
    data = read_routing(layout)
    data["models"].setdefault(pipeline, {})["canary_percent"] = percent
    path = routing_path(layout)
    write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path
