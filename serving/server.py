"""Wires the server together: model manager, data plane, gRPC and REST adapters, pollers.

Start-up follows TF Serving: the initial versions are loaded (or have failed) before the ports
open, so a client that can connect finds the models AVAILABLE. SIGTERM / SIGINT stop accepting,
let in-flight requests finish (gRPC grace period) and exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading

from beamline_serving.core.config import (
    ModelSpec,
    ServerOptions,
    discover_models,
    model_specs_from_proto,
    read_model_config_file,
)
from beamline_serving.core.dataplane import DataPlane
from beamline_serving.core.errors import ConfigError
from beamline_serving.core.metrics import Metrics
from beamline_serving.core.model_manager import ModelManager, Periodic, call_at_low_priority
from beamline_serving.core.root_files import RootFiles
from beamline_serving.core.routing import Routing
from beamline_serving.core.schema_contract import SchemaContract
from beamline_serving.request_log.config import (
    RequestLogSettings,
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

    def reload_config(self, config) -> None:
        """HandleReloadConfigRequest: serve exactly the models of a ModelServerConfig proto."""
        specs = model_specs_from_proto(config, "ReloadConfigRequest")
        base = self._request_log_settings(None)
        logging = configs_from_model_server_config(config, "ReloadConfigRequest")
        self._apply(specs)
        if self.options.labels_file is not None and self.options.model_config_file is None:
            log.warning(
                "A ReloadConfig request replaced the served models: %s and discovery are not "
                "followed until the server restarts",
                self.options.labels_file,
            )
        self._set_request_log(
            RequestLogSettings(logging, base.directory, base.sample_rate, base.exclude_fields)
        )
        if self.shared is not None and self.options.rest_worker_state_dir is None:
            self.shared.publish_config(config.SerializeToString())  # the workers follow

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
                self.workers = start_workers(options.rest_api_workers - 1, sys.argv, self.shared)
        for poller in self._pollers:
            poller.start()

    async def start_network(self) -> None:
        """Opens the gRPC and REST ports on the running asyncio loop."""
        options = self.options
        if options.grpc_port:
            from beamline_serving.grpc.service import create_grpc_server

            self._grpc = create_grpc_server(
                self.dataplane,
                self.reload_config,
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
            from beamline_serving.rest.api import RestApi, create_http_server

            api = RestApi(self.dataplane, options.prometheus_path)
            self._http = create_http_server(
                api, max_request_bytes=options.max_request_bytes, cors=options.cors
            )
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


def run(options: ServerOptions) -> None:
    """Runs the server until SIGTERM / SIGINT."""
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
        role = "REST worker " if options.rest_worker_state_dir is not None else ""
        print(
            f"beamline serve: {role}ready (pid {os.getpid()}); gRPC port "
            f"{options.grpc_port or 'off'}, "
            f"REST port {options.rest_port or 'off'} on {options.host}",
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
