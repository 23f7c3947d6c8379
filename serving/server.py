"""Wires the server together: model manager, data plane, gRPC and REST adapters, pollers.

Start-up follows TF Serving: the initial versions are loaded (or have failed) before the ports
open, so a client that can connect finds the models AVAILABLE. SIGTERM / SIGINT stop accepting,
let in-flight requests finish (gRPC grace period) and exit 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

from beamline_serving.core.config import (
    ModelSpec,
    ServerOptions,
    discover_models,
    model_specs_from_proto,
    read_model_config_file,
)
from beamline_serving.core.dataplane import DataPlane
from beamline_serving.core.metrics import Metrics
from beamline_serving.core.model_manager import (
    AVAILABLE,
    ModelManager,
    Periodic,
    call_at_low_priority,
)
from beamline_serving.core.root_files import RootFiles
from beamline_serving.core.routing import Routing
from beamline_serving.core.schema_contract import SchemaContract
from beamline_serving.errors import Code, ConfigError, ServingError
from beamline_serving.request_log.config import (
    RequestLogConfig,
    RequestLogConfigError,
    RequestLogSettings,
    check_prefixes_inside,
    configs_from_model_server_config,
    settings_from_flags,
)
from beamline_serving.request_log.logger import RequestLogRouter
from beamline_serving.workers import (
    FOLLOW_SECONDS,
    METRICS_SECONDS,
    SharedState,
    start_workers,
    stop_workers,
    wait_until_loaded,
)

log = logging.getLogger("beamline.serving")


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s serving] %(message)s"))
    root = logging.getLogger("beamline.serving")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def _configure_tensorflow(options: ServerOptions) -> None:
    # Measured on 2 cores: with TensorFlow's default inter-op pool, a small model's call handed
    # its ops to pool threads that spun after each request, doubling the CPU per request of a
    # lightly loaded server; one inter-op thread halved it and cut p50 latency by ~30%.
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(options.inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(options.intra_op_threads)
    # Create TensorFlow's thread pools here, at normal priority: created by a model loader
    # thread, they would inherit its lowered priority (see call_at_low_priority).
    tf.constant(0.0).numpy()


class ModelServer:
    """The whole server; `start()` loads models and opens the ports, `stop()` closes them."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics = Metrics()
        schemas = {
            model: SchemaContract.from_file(path) for model, path in options.schema_files.items()
        }
        self._config_text: str | None = None
        self.root_files: RootFiles | None = None
        self.manager = ModelManager(
            loader=lambda name, version, path: call_at_low_priority(
                self.dataplane.load, name, version, path
            ),
            specs=self._initial_specs(),
            allow_unavailable_labels=options.allow_version_labels_for_unavailable_models,
            unloader=lambda servable: servable.close(),
            unversioned_to_stable=options.unversioned_to_stable,
        )
        self.manager.set_routing(self._routing())
        self.dataplane = DataPlane(
            self.manager,
            self.metrics,
            batching=options.batching,
            per_model_batching=options.per_model_batching,
            schemas=schemas,
            warmup_iterations=options.num_request_iterations_for_warmup,
            enable_warmup=options.enable_model_warmup,
            method_name_check=options.enable_signature_method_name_check,
            run_threads=options.rest_api_num_threads or 8,
        )
        self._set_request_log(self._request_log_settings(self._config_text))
        self._pollers: list[Periodic] = []
        self._model_poller: Periodic | None = None
        self._grpc = None
        self._http = None
        self._reload_lock = threading.Lock()
        # Processes sharing the REST port (serving/workers.py): the primary creates the state
        # directory and starts the workers; a worker is given the directory.
        self.shared: SharedState | None = None
        self.workers: list = []
        self._followed_config: int | None = None
        if options.rest_worker_state_dir is not None:
            self.shared = SharedState(options.rest_worker_state_dir)
        elif options.rest_api_workers > 1:
            self.shared = SharedState.create()
        if self.shared is not None:
            self.metrics.peers = self.shared.peer_metrics

    def _initial_specs(self):
        options = self.options
        if options.labels_file is not None or options.routing_file is not None:
            labels_file = options.labels_file if options.model_config_file is None else None
            self.root_files = RootFiles(options.serving_root, labels_file, options.routing_file)
            self.root_files.poll(strict=True)  # a bad file at start-up is a config error
        if options.model_config_file is not None:
            self._config_text = options.model_config_file.read_text(encoding="utf-8")
            specs = read_model_config_file(options.model_config_file)
            return lambda: specs
        if options.models:
            specs = list(options.models)
            return lambda: specs
        if self.root_files is not None:
            return self.root_files.specs
        root = options.serving_root
        return lambda: discover_models(root)

    def _routing(self) -> Routing:
        percents = self.root_files.canary_percents if self.root_files is not None else {}
        return Routing(self.options.canary_percent, dict(percents))

    def _poll_root_files(self) -> None:
        """Applies a changed labels or routing file: labels move at once onto versions already
        loaded; a newly labelled version is loaded now and takes its label once AVAILABLE."""
        labels_changed, routing_changed = self.root_files.poll()
        if routing_changed:
            self.manager.set_routing(self._routing())
        if labels_changed:
            self.manager.refresh()
            if self._model_poller is not None and self._model_poller.running:
                self._model_poller.trigger()
            else:
                self.manager.poll()  # --file_system_poll_wait_seconds 0: no poller to wake

    # -- request logging --------------------------------------------------------------------

    def _request_log_settings(self, config_text: str | None) -> RequestLogSettings:
        options = self.options
        return settings_from_flags(
            options.request_log_dir,
            options.request_log_sample_rate,
            config_text,
            str(options.model_config_file),
            options.request_log_exclude,
            options.request_log_budget,
        )

    def _set_request_log(self, settings: RequestLogSettings) -> None:
        router = self.dataplane.request_log
        if router is not None:
            router.reconfigure(settings)
        elif settings.enabled:
            self.dataplane.request_log = RequestLogRouter(
                settings, self.metrics.request_log_count.inc
            )

    # -- config reloads -------------------------------------------------------------------

    def reload_from_client(self, config) -> None:
        """A gRPC client's HandleReloadConfigRequest, if this server takes them: neither port
        authenticates its clients, and a reload chooses what is loaded and where logs go."""
        options = self.options
        if not options.reloads_allowed():
            why = (
                "the server was started with --allow_reload_config=false"
                if options.allow_reload_config is False
                else f"the server listens on {options.host}, beyond loopback "
                "(--allow_reload_config=auto)"
            )
            raise ServingError(
                Code.PERMISSION_DENIED,
                f"HandleReloadConfigRequest is turned off: {why}. Change the models through "
                "--model_config_file (re-read with --model_config_file_poll_wait_seconds), or "
                "restart the server with --allow_reload_config=true behind an authenticating "
                "proxy.",
            )
        self.reload_config(config)

    def reload_config(self, config) -> None:
        """HandleReloadConfigRequest: serve exactly the models of a ModelServerConfig proto.
        Checked whole before anything changes: a refused request leaves the server as it was."""
        specs = model_specs_from_proto(config, "ReloadConfigRequest")
        base = self._request_log_settings(None)
        logging = configs_from_model_server_config(config, "ReloadConfigRequest")
        self._check_reload_log_places(logging, base.directory)
        self._apply(specs)
        if self.options.labels_file is not None and self.options.model_config_file is None:
            log.warning(
                "A ReloadConfig request replaced the served models: %s and discovery are not "
                "followed until the server restarts",
                self.options.labels_file,
            )
        self._set_request_log(
            dataclasses.replace(base, per_model=logging)  # the flags' rate, exclusions, budget
        )
        if self.shared is not None and self.options.rest_worker_state_dir is None:
            self.shared.publish_config(config.SerializeToString())  # the workers follow

    def _check_reload_log_places(
        self, logging: dict[str, RequestLogConfig], directory: str | None
    ) -> None:
        """A reload's filename_prefix must lie under --request_log_dir; without one, a reload
        may only name a prefix the operator's model config file already logs to."""
        where = "ReloadConfigRequest"
        if directory is not None:
            check_prefixes_inside(logging, directory, where)
            return
        operator = self._request_log_settings(self._config_text).per_model.values()
        known = {os.path.realpath(config.filename_prefix) for config in operator}
        for name, config in sorted(logging.items()):
            if os.path.realpath(config.filename_prefix) not in known:
                raise RequestLogConfigError(
                    f"{where}: model {name}'s logging_config filename_prefix "
                    f"{config.filename_prefix!r} is not one the server was started with, and "
                    "a reload may only log under --request_log_dir, which this server has "
                    "not got. Start the server with --request_log_dir DIR and give a prefix "
                    "under DIR, or leave logging_config out of the request."
                )

    def _publish_metrics(self) -> None:
        self.shared.publish_metrics(self.metrics.snapshot())

    def _follow_reloads(self) -> None:
        """A REST worker: applies the primary's last ReloadConfig, once."""
        published = self.shared.config()
        if published is None or published[0] == self._followed_config:
            return
        self._followed_config = published[0]
        from tensorflow_serving.config import model_server_config_pb2

        config = model_server_config_pb2.ModelServerConfig.FromString(published[1])
        self.reload_config(config)
        log.info("Applied the primary's reloaded model config")

    def _apply(self, specs: list[ModelSpec]) -> None:
        with self._reload_lock:
            previous = self.manager.specs_source()
            self.manager.set_specs(lambda: specs)
            self.manager.poll()
            try:
                self.manager.check_labels()
            except Exception:
                # Like TF Serving, a config whose labels cannot be honoured is refused whole.
                self.manager.set_specs(previous)
                self.manager.poll()
                raise

    def _poll_config_file(self) -> None:
        path = self.options.model_config_file
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            log.error("Cannot re-read model config file %s: %s", path, exc)
            return
        if text == self._config_text:
            return
        self._config_text = text
        try:
            settings = self._request_log_settings(text)
            self._apply(read_model_config_file(path))
            self._set_request_log(settings)
            log.info("Applied the changed model config file %s", path)
        except Exception as exc:
            log.error("The changed model config file %s was not applied: %s", path, exc)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        options = self.options
        self.manager.poll()
        if options.model_config_file is not None:
            try:
                self.manager.check_labels()
            except Exception as exc:
                raise ConfigError(f"{exc}. Fix version_labels in the model config file.") from exc
        elif self.root_files is not None:
            try:
                self.manager.check_labels()
            except Exception as exc:  # the labels file is promote's: serve what can be served
                log.error("%s; the label stays unassigned until that version loads", exc)
        if not self.manager.model_names():
            where = options.serving_root or options.model_config_file
            log.warning(
                "No models found under %s yet; serving them as soon as they are pushed.", where
            )
        self._model_poller = Periodic(
            options.file_system_poll_wait_seconds, self.manager.poll, "model-poller"
        )
        self._pollers.append(self._model_poller)
        if self.root_files is not None:
            self._pollers.append(
                Periodic(options.root_files_poll_seconds, self._poll_root_files, "labels-poller")
            )
        if options.model_config_file is not None:
            self._pollers.append(
                Periodic(
                    options.model_config_file_poll_wait_seconds,
                    self._poll_config_file,
                    "config-poller",
                )
            )
        if self.shared is not None:
            self._publish_metrics()
            self._pollers.append(
                Periodic(METRICS_SECONDS, self._publish_metrics, "metrics-publisher")
            )
            if options.rest_worker_state_dir is not None:
                self._pollers.append(Periodic(FOLLOW_SECONDS, self._follow_reloads, "reloads"))
            else:
                self.workers = start_workers(
                    options.rest_api_workers - 1, options.launch_command, self.shared
                )
        for poller in self._pollers:
            poller.start()

    async def start_network(self) -> None:
        """Opens the gRPC and REST ports on the running asyncio loop."""
        options = self.options
        if options.grpc_port:
            from beamline_serving.grpc.service import create_grpc_server

            self._grpc = create_grpc_server(
                self.dataplane,
                self.reload_from_client,
                max_message_bytes=options.max_request_bytes,
                max_concurrent_rpcs=options.grpc_max_threads,
            )
            address = f"{options.host}:{options.grpc_port}"
            try:
                bound = self._grpc.add_insecure_port(address)
            except RuntimeError:
                bound = 0
            if not bound:
                raise ConfigError(
                    f"Cannot listen for gRPC on {address}: the port is in use or not allowed. "
                    "Choose another with --port (0 disables gRPC)."
                )
            await self._grpc.start()
            log.info("Running gRPC ModelServer at %s ...", address)
        if options.rest_port:
            self._http = self.http_server()
            try:
                await self._http.listen(
                    options.host, options.rest_port, reuse_port=self.shared is not None
                )
            except OSError as exc:
                raise ConfigError(
                    f"Cannot listen for REST on {options.host}:{options.rest_port}: "
                    f"{exc.strerror}. Choose another port with --rest_api_port (0 disables REST)."
                ) from exc
            log.info("Exporting HTTP/REST API at:%s:%d ...", options.host, options.rest_port)

    def http_server(self):
        """The REST server (not listening yet), with this server's limits on its clients."""
        from beamline_serving.rest.api import RestApi, create_http_server

        options = self.options
        api = RestApi(self.dataplane, options.prometheus_path, options.rest_limits)
        return create_http_server(
            api, max_request_bytes=options.max_request_bytes, cors=options.cors
        )

    async def stop_network(self) -> None:
        """Stops accepting; in-flight gRPC calls get a few seconds to finish."""
        if self._http is not None:
            self._http.close()
        if self._grpc is not None:
            await self._grpc.stop(grace=5)

    def stop(self) -> None:
        for poller in self._pollers:
            poller.stop()
        if self.workers:
            stop_workers(self.workers)
            self.shared.remove()
        self.dataplane.close()


# (REST URL, names of the models AVAILABLE) -> a command to try, or None.
ReadyHint = Callable[[str, list[str]], "str | None"]


def ready_line(options: ServerOptions, available: list[str], hint: ReadyHint | None) -> str:
    """The line that says the server answers now: where, and (with a hint) what to try."""
    # A wildcard address is not one a client can use; this machine reaches it on loopback.
    host = "127.0.0.1" if options.host in ("", "0.0.0.0", "::") else options.host
    host = f"[{host}]" if ":" in host else host
    rest_url = f"http://{host}:{options.rest_port}"
    rest = f"REST on {rest_url}" if options.rest_port else "REST off"
    grpc = f"gRPC on {host}:{options.grpc_port}" if options.grpc_port else "gRPC off"
    role = "REST worker " if options.rest_worker_state_dir is not None else ""
    line = f"beamline serve: {role}ready (pid {os.getpid()}): {rest}, {grpc}"
    if not options.rest_port:
        return line
    if not available:
        return line + "; no model is AVAILABLE yet: pushed versions are served as they land"
    suggestion = hint(rest_url, available) if hint is not None else None
    return line + f"; try: {suggestion or f'curl {rest_url}/v1/models/{available[0]}'}"


def _available(manager: ModelManager) -> list[str]:
    """The models with a version AVAILABLE (the initial load is over when this is asked)."""
    names = []
    for name in manager.model_names():
        try:
            states = manager.status(name)
        except ServingError:  # no version at all
            continue
        if any(status.state == AVAILABLE for status in states):
            names.append(name)
    return names


def run(options: ServerOptions, ready_hint: ReadyHint | None = None) -> None:
    """Runs the server until SIGTERM / SIGINT. `ready_hint` (the framework's): a request to try,
    given the REST URL and the models AVAILABLE, appended to the ready line."""
    _configure_logging()
    _configure_tensorflow(options)
    server = ModelServer(options)
    server.start()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if options.rest_worker_state_dir is not None:  # a REST worker: after the primary
            server.shared.mark_loaded()
            await server.shared.wait_for_primary()
        elif server.workers:
            await wait_until_loaded(server.workers, server.shared)
        await server.start_network()
        if server.workers:
            server.shared.mark_primary_listening()
        worker = options.rest_worker_state_dir is not None
        print(
            ready_line(options, _available(server.manager), None if worker else ready_hint),
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
        log.info("Shutting down")
        await server.stop_network()

    try:
        asyncio.run(main())
    finally:
        server.stop()
