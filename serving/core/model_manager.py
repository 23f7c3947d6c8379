"""Which model versions are served: discovery, version policies, loading, unloading, labels.

Each poll lists `<base_path>/<int64 version>/` directories; a version counts only once its
`saved_model.pb` exists (TFX's Pusher copies it last). The version policy picks the aspired
versions; new ones are loaded before old ones are unloaded, and an old version is unloaded only
once an aspired version is AVAILABLE (or nothing is aspired any more), so a version that fails to
load (state END with its error) leaves the previous one serving. Version labels follow the rules
of serving/core/routing.py: a label moves only onto an AVAILABLE version, and every version a
label holds stays loaded. Requests look servables up in an immutable routing snapshot that is
swapped atomically, so lookups never take a lock.

Nothing here knows TensorFlow: loading is the `loader` callback's job.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from beamline_serving.core import routing, storage
from beamline_serving.core.config import ModelSpec
from beamline_serving.core.servable import SAVED_MODEL_FILES
from beamline_serving.core.serving_root import CANARY, STABLE
from beamline_serving.errors import (
    Code,
    ServingError,
    failed_precondition,
    from_exception,
    invalid_argument,
    not_found,
)

log = logging.getLogger("beamline.serving")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
MAX_INT64 = 2**63 - 1
HISTORY_PER_MODEL = 50  # END records kept per model for status answers


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: Code = Code.OK
    error_message: str = ""


@dataclass
class _Version:
    version: int
    path: str
    state: str = START
    error: ServingError | None = None
    servable: object | None = None
    fingerprint: tuple | None = None

    def status(self) -> VersionStatus:
        if self.error is None:
            return VersionStatus(self.version, self.state)
        return VersionStatus(self.version, self.state, self.error.code, self.error.message)


@dataclass
class _Model:
    spec: ModelSpec
    versions: dict[int, _Version] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # the labels served now


@dataclass(frozen=True)
class _Route:
    default: object | None  # unversioned requests: `stable` (if routed so) or the latest
    by_version: dict[int, object]
    labels: dict[str, int]
    canary: object | None = None  # the `canary` version, when a percentage goes to it
    canary_buckets: int = 0  # of routing.BUCKETS


def _choose(route: _Route, key: str | None):
    """The servable of an unversioned request."""
    if route.canary is not None:
        if key is None:
            drawn = random.random() * routing.BUCKETS
        else:
            drawn = routing.bucket(key)
        if drawn < route.canary_buckets:
            return route.canary
    return route.default


Loader = Callable[[str, int, str], object]


def list_versions(base_path: str) -> dict[int, tuple[str, tuple]]:
    """Complete versions under a base path: {version: (dir, fingerprint of saved_model.pb)}."""
    found: dict[int, tuple[str, tuple]] = {}
    for name, path in storage.child_dirs(base_path):
        if not name.isdigit():
            continue  # TF Serving ignores children that are not int64 version numbers
        version = int(name)
        if version > MAX_INT64 or version in found:
            continue
        for pb in SAVED_MODEL_FILES:
            fingerprint = storage.fingerprint(storage.join(path, pb))
            if fingerprint is not None:
                found[version] = (path, (pb, *fingerprint))
                break
    return found


class ModelManager:
    """Keeps the served versions of every configured model in line with the file system."""

    def __init__(
        self,
        loader: Loader,
        specs: Callable[[], list[ModelSpec]],
        *,
        allow_unavailable_labels: bool = False,
        unloader: Callable[[object], None] | None = None,
        unversioned_to_stable: bool = False,
    ) -> None:
        self._loader = loader
        self._specs = specs
        self._unloader = unloader or (lambda servable: getattr(servable, "close", lambda: None)())
        self._allow_unavailable_labels = allow_unavailable_labels
        self._unversioned_to_stable = unversioned_to_stable
        self._routing = routing.Routing()
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()  # guards _models and version records
        self._poll_lock = threading.RLock()  # one poll (load/unload pass) at a time
        self._routes: dict[str, _Route] = {}

    # -- configuration --------------------------------------------------------------------

    def set_specs(self, specs: Callable[[], list[ModelSpec]]) -> None:
        """Replaces the source of model specs (config reload); takes effect at the next poll."""
        self._specs = specs

    def specs_source(self) -> Callable[[], list[ModelSpec]]:
        return self._specs

    def set_routing(self, canary: routing.Routing) -> None:
        """New canary percentages, applied at once."""
        self._routing = canary
        self._publish()

    def refresh(self) -> bool:
        """Applies the current model specs without loading anything: models added or dropped,
        labels moved onto versions already AVAILABLE. Returns False if reading them failed.
        New versions load at the next poll."""
        try:
            specs = {spec.name: spec for spec in self._specs()}
        except Exception:
            log.exception("Reading the model list failed; keeping the current models")
            return False
        with self._lock:
            for name in list(self._models):
                if name not in specs:
                    self._remove_model(name)
            for name, spec in specs.items():
                model = self._models.get(name)
                if model is None:
                    self._models[name] = _Model(spec)
                else:
                    model.spec = spec
        self._publish()
        return True

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def serves(self, name: str) -> bool:
        """Whether `name` is a configured model; from the routing snapshot, without a lock."""
        return name in self._routes

    # -- polling --------------------------------------------------------------------------

    def poll(self) -> None:
        """One pass: apply the model list, load new aspired versions, unload superseded ones."""
        with self._poll_lock:
            if not self.refresh():
                return
            with self._lock:
                models = list(self._models.values())
            for model in models:
                try:
                    self._poll_model(model)
                except Exception:
                    log.exception("Polling model %s failed", model.spec.name)
            self._publish()

    def _poll_model(self, model: _Model) -> None:
        spec = model.spec
        present = list_versions(spec.base_path)
        with self._lock:
            # Versions a label holds stay loaded (and load again if they were unloaded).
            held = set(model.labels.values()) & set(present)
        aspired = spec.policy.select(list(present)) | held
        for version in sorted(aspired, reverse=True):
            path, fingerprint = present[version]
            with self._lock:
                record = model.versions.get(version)
                if record is not None and record.state in (AVAILABLE, LOADING):
                    continue
                if record is not None and record.error is not None:
                    if record.fingerprint == fingerprint:
                        continue  # failed before and unchanged since: do not retry every poll
                record = _Version(version, path, LOADING, fingerprint=fingerprint)
                model.versions[version] = record
            self._load(model, record)
        with self._lock:
            loaded = [r for r in model.versions.values() if r.state == AVAILABLE]
            any_aspired_available = any(r.version in aspired for r in loaded)
            to_unload = [
                r
                for r in loaded
                if r.version not in aspired and (any_aspired_available or not aspired)
            ]
            for record in to_unload:
                record.state = UNLOADING
        if to_unload:
            self._publish()
        for record in to_unload:
            self._unload(model, record)
        self._trim_history(model)

    def _load(self, model: _Model, record: _Version) -> None:
        name = model.spec.name
        log.info("Loading servable version {name: %s version: %d}", name, record.version)
        try:
            servable = self._loader(name, record.version, record.path)
        except Exception as exc:  # a bad version must never stop the poll loop
            error = from_exception(exc)
            with self._lock:
                record.state, record.error = END, error
            log.error(
                "Loading servable version {name: %s version: %d} failed: %s",
                name,
                record.version,
                error.status_string(),
            )
            return
        with self._lock:
            dropped = self._models.get(name) is not model  # removed from the config meanwhile
            if not dropped:
                record.state, record.servable = AVAILABLE, servable
        if dropped:
            self._unloader(servable)
            return
        self._publish()
        log.info(
            "Successfully loaded servable version {name: %s version: %d}", name, record.version
        )

    def _unload(self, model: _Model, record: _Version) -> None:
        servable = record.servable
        with self._lock:
            record.servable = None
            record.state = END
        try:
            if servable is not None:
                self._unloader(servable)
        except Exception:
            log.exception("Unloading %s version %d failed", model.spec.name, record.version)
        log.info(
            "Done unloading servable version {name: %s version: %d}",
            model.spec.name,
            record.version,
        )

    def _remove_model(self, name: str) -> None:
        # Called with _lock held: a model dropped from the config stops serving at once.
        model = self._models.pop(name)
        for record in model.versions.values():
            if record.servable is not None:
                try:
                    self._unloader(record.servable)
                except Exception:
                    log.exception("Unloading %s version %d failed", name, record.version)
                record.servable, record.state = None, END

    def _trim_history(self, model: _Model) -> None:
        with self._lock:
            ended = sorted(v for v, r in model.versions.items() if r.state == END)
            for version in ended[:-HISTORY_PER_MODEL]:
                del model.versions[version]

    def _publish(self) -> None:
        """Builds a new routing snapshot and swaps it in (readers never lock)."""
        with self._lock:
            routes = {}
            canary = self._routing
            for name, model in self._models.items():
                by_version = {
                    v: r.servable
                    for v, r in model.versions.items()
                    if r.state == AVAILABLE and r.servable is not None
                }
                labels = routing.resolve_labels(
                    model.spec.label_map,
                    model.labels,
                    set(by_version),
                    self._allow_unavailable_labels,
                )
                if labels != model.labels:
                    log.info("Model %s now serves labels %s", name, labels or "(none)")
                model.labels = labels
                routes[name] = self._route(name, by_version, labels, canary.percent(name))
            self._routes = routes

    def _route(
        self, name: str, by_version: dict[int, object], labels: dict[str, int], percent: float
    ) -> _Route:
        default = by_version[max(by_version)] if by_version else None
        stable = by_version.get(labels.get(STABLE, -1))
        if self._unversioned_to_stable and stable is not None:
            default = stable
        canary = by_version.get(labels.get(CANARY, -1))
        buckets = round(percent * routing.BUCKETS / 100)
        if canary is None or canary is default or buckets <= 0:
            return _Route(default, by_version, labels)
        return _Route(default, by_version, labels, canary, buckets)

    def check_labels(self) -> None:
        """Raises FAILED_PRECONDITION if a configured version label could not be served
        (TF Serving refuses such configs unless told to allow them)."""
        with self._lock:
            problems = [
                (name, version)
                for name, model in sorted(self._models.items())
                for label, version in sorted(model.spec.label_map.items())
                if model.labels.get(label) != version
            ]
        for name, version in problems:
            raise failed_precondition(
                f"Request to assign label to version {version} of model {name}, which "
                "is not currently available for inference"
            )

    # -- lookups --------------------------------------------------------------------------

    def get(
        self,
        name: str,
        version: int | None = None,
        label: str | None = None,
        key: str | None = None,
    ):
        """The servable for a request; raises NOT_FOUND / INVALID_ARGUMENT as TF Serving does.
        `key`: the client's request key (a checked one), for the canary choice."""
        route = self._routes.get(name)
        if label is not None:
            if route is None or label not in route.labels:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            version = route.labels[label]
        if version is None:
            servable = _choose(route, key) if route is not None else None
            if servable is not None:
                return servable
            raise not_found(f"Servable not found for request: Latest({name})")
        servable = route.by_version.get(version) if route is not None else None
        if servable is None:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return servable

    def status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        """Version states, newest first (GetModelStatus)."""
        if label is not None:
            route = self._routes.get(name)
            if route is None or label not in route.labels:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            version = route.labels[label]
        with self._lock:
            model = self._models.get(name)
            records = dict(model.versions) if model is not None else {}
            statuses = {v: r.status() for v, r in records.items()}
        if version is not None:
            if version not in statuses:
                raise not_found(f"Could not find version {version} of model {name}")
            return [statuses[version]]
        if not statuses:
            raise not_found(f"Could not find any versions of model {name}")
        return [statuses[v] for v in sorted(statuses, reverse=True)]

    def servables(self) -> list[object]:
        """Every loaded servable (for shutdown)."""
        return [s for route in self._routes.values() for s in route.by_version.values()]


class Periodic:
    """Calls `action` every `interval` seconds on a daemon thread (interval <= 0: never);
    `trigger()` runs it at once (e.g. a config change that needs a version loaded now).

    TF Serving's poll flags: zero means poll exactly once (done at start-up), negative never.
    """

    def __init__(self, interval: float, action: Callable[[], None], name: str) -> None:
        self._interval = interval
        self._action = action
        self._name = name
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._interval > 0:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def trigger(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._action()
            except Exception:
                log.exception("%s failed; retrying at the next interval", self._name)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


LOADER_NICENESS = 10


def call_at_low_priority(function: Callable, *args):
    """`function(*args)` on a fresh thread whose CPU priority is lowered (nice +10), waited for.

    Loading a SavedModel is seconds of GIL-heavy Python. Measured on 2 busy cores with 4 REST
    clients: at normal priority it raised the serving version's p99 to ~1.8x its steady p99 during
    a push; at nice +10 the kernel lets the serving threads run first (1.0x), and the load takes
    longer instead. A fresh thread, because a thread's niceness cannot be lowered back without
    privileges, and threads it starts inherit it.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOADER_NICENESS)
        except (AttributeError, OSError):
            pass  # not Linux, or not allowed: load at normal priority
        try:
            outcome["result"] = function(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="model-loader", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
