"""The framework's one writer of the serving-root files: `<root>/serving/models.config` and
`routing.json`.

What the files hold, their names and the checks the model server makes on them are one
contract, beamline_serving.core.serving_root, which `beamline serve` reads them by too. Every
text written here is first read back with the server's own readers: a file the server would
refuse is a ConfigError here, and nothing is written.

`models.config` is always rewritten whole from the label history in MLMD (never edited in
place), atomically (temp file, fsync, rename), under `<root>/locks/labels.lock` so that
concurrent promotes serialize and each one's record and file agree. Nothing here needs a live
server: a server started later reads the file as it is. `routing.json` holds each model's
canary share; promote sets one model's and keeps the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from beamline.errors import ConfigError
from beamline.settings import RootLayout
from beamline_serving.core import serving_root
from beamline_serving.errors import ConfigError as ServerConfigError

LABELS_LOCK = "labels.lock"
# How long a label move waits for a live server to load the version it moves to.
LOAD_TIMEOUT_S = 30.0
_POLL_S = 0.05


def models_config_path(layout: RootLayout) -> Path:
    return layout.serving_root / serving_root.LABELS_FILE_NAME


def routing_path(layout: RootLayout) -> Path:
    return layout.serving_root / serving_root.ROUTING_FILE_NAME


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


def render(
    layout: RootLayout,
    labels: Mapping[str, Mapping[str, int]],
    extra_versions: Mapping[str, set[int]] | None = None,
) -> str:
    """The models.config text for `labels` (pipeline -> label -> version), as the server reads
    it back; `extra_versions` are loaded too without a label (the first step of a label move,
    see apply_change). ConfigError when the server would refuse it (a pipeline name it cannot
    serve, a version out of range)."""
    from beamline_serving.core.config import parse_model_config_text

    text = serving_root.models_config_text(layout.serving_root, labels, extra_versions)
    path = models_config_path(layout)
    try:
        parse_model_config_text(text, str(path))
    except ServerConfigError as exc:
        raise ConfigError(
            f"{path} would not be written: the model server would refuse it ({exc}). The label "
            "history in MLMD names a model or version it cannot serve."
        ) from None
    return text


def check_labels(layout: RootLayout, labels: Mapping[str, Mapping[str, int]]) -> None:
    """Refuses (ConfigError) labels the server could not serve from models.config: called
    before a change is recorded, so that a refused one is neither recorded nor written."""
    render(layout, labels)


def with_moves(
    labels: Mapping[str, Mapping[str, int]], pipeline: str, moves: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """`labels` after `moves` (label -> version) of `pipeline`'s labels."""
    after = {p: dict(held) for p, held in labels.items()}
    after.setdefault(pipeline, {}).update(moves)
    return after


def write_atomically(path: Path, text: str) -> None:
    """`text` at `path`, all or nothing: temp file, fsync, rename, fsync of the directory. The
    temp file is removed when any step before the rename fails (or is interrupted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
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


def resync(store, layout: RootLayout) -> Path | None:
    """Rewrites models.config when it disagrees with the store's history (a kill between the
    record and the write; call under labels_lock); returns its path then."""
    path = models_config_path(layout)
    wanted = render(layout, current_labels(store))
    try:
        if path.read_text(encoding="utf-8") == wanted:
            return None
    except OSError:
        pass
    write_atomically(path, wanted)
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


def check_canary_percent(percent: float, where: str = "--canary-percent") -> float:
    """The canary share as the model server checks routing.json's (a number in 0..100; NaN and
    infinities refused): ConfigError naming `where` when it would refuse it."""
    try:
        return serving_root.check_percent(percent, where)
    except ServerConfigError as exc:
        raise ConfigError(f"{exc} It is the share of unversioned requests that go to the "
                          "canary label's version.") from None


def routing_text_with(layout: RootLayout, pipeline: str, percent: float) -> str:
    """routing.json as it would be with `pipeline`'s canary share at `percent`, every other
    model's kept; ConfigError, naming the field, when the server would refuse that file."""
    path = routing_path(layout)
    try:
        old = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        old = None  # none yet, or unreadable: the server cannot use it either
    try:
        return serving_root.routing_text_with(old, pipeline, percent, str(path))
    except ServerConfigError as exc:
        raise ConfigError(
            f"{exc} The model server would refuse {path} as a whole: fix or remove that entry, "
            "then set the share again."
        ) from None


def set_canary_percent(layout: RootLayout, pipeline: str, percent: float) -> Path:
    """Sets one model's canary share in routing.json (call under labels_lock)."""
    path = routing_path(layout)
    write_atomically(path, routing_text_with(layout, pipeline, percent))
    return path
