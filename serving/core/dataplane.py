"""The data plane's execution half: models in, requests run, independent of REST or gRPC.

Protocol adapters (serving/rest/, serving/grpc/) decode a request, build a checked `Job` with
`dataplane.jobs` (serving/core/jobs.py), run it here (`run` from a thread, `run_async` from the
event loop; batched or not) and encode the answer. Every failure is a ServingError whose code the
adapters map in one place (serving/errors.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from beamline_serving.core import answered_version, proto_codec, storage, warmup
from beamline_serving.core.batching import BatchQueue, BatchScheduler
from beamline_serving.core.config import BatchingOptions, parse_batching_parameters
from beamline_serving.core.jobs import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD,
    Arrays,
    Classifications,
    Job,
    JobBuilder,
)
from beamline_serving.core.metrics import UNSERVED_MODEL, Metrics
from beamline_serving.core.model_manager import ModelManager, VersionStatus
from beamline_serving.core.schema_contract import SchemaContract
from beamline_serving.core.servable import Servable, Signature, load_servable
from beamline_serving.errors import Code, ServingError, invalid_argument
from beamline_serving.request_log.logger import RequestLogRouter

log = logging.getLogger("beamline.serving")

PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"

# The APIs whose requests get an outcome record (inference, not metadata or status).
OUTCOME_APIS = frozenset({"predict", "classify", "regress", "multiinference"})


class DataPlane:
    """Finds servables and runs Predict / Classify / Regress / MultiInference on them."""

    def __init__(
        self,
        manager: ModelManager,
        metrics: Metrics,
        *,
        batching: BatchingOptions | None = None,
        per_model_batching: bool = False,
        schemas: dict[str, SchemaContract] | None = None,
        warmup_iterations: int = 1,
        enable_warmup: bool = True,
        method_name_check: bool = False,
        run_threads: int = 8,
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.batching = batching
        self.per_model_batching = per_model_batching and batching is not None
        self.scheduler = (
            BatchScheduler(batching.num_batch_threads) if batching is not None else None
        )
        self.jobs = JobBuilder(metrics, schemas, method_name_check)
        self.warmup_iterations = warmup_iterations
        self.enable_warmup = enable_warmup
        # Requests answered through `run_async` (REST and gRPC) are logged here when set.
        self.request_log: RequestLogRouter | None = None
        # Unbatched requests from the event loop run here (TensorFlow releases the GIL).
        self._executor = ThreadPoolExecutor(max_workers=run_threads, thread_name_prefix="run")

    # -- models ---------------------------------------------------------------------------

    def load(self, name: str, version: int, version_dir: str) -> Servable:
        """The model manager's loader: load, attach batching options, replay warm-up."""
        servable = load_servable(name, version, version_dir)
        if self.batching is not None:
            servable.batching = self.batching
            per_model = storage.join(version_dir, PER_MODEL_BATCHING_FILE)
            if self.per_model_batching and storage.is_file(per_model):
                servable.batching = parse_batching_parameters(
                    storage.read_text(per_model), per_model
                )
        if self.enable_warmup:
            start = time.perf_counter()
            status = "OK"
            records = 0
            try:
                records = warmup.replay(
                    version_dir, self.warmup_iterations, lambda log_: self._warm(servable, log_)
                )
            except ServingError as exc:
                status = exc.code.name
                raise
            finally:
                path = version_dir
                micros = (time.perf_counter() - start) * 1e6
                if records or status != "OK":
                    self.metrics.warmup_latency.observe(micros, path, status)
                    self.metrics.warmup_records.inc(path, status, by=records)
            if records:
                log.info("Warmed up %s version %d with %d record(s)", name, version, records)
            else:
                warmup.warm_signatures(servable)
        return servable

    def _warm(self, servable: Servable, log_) -> None:
        kind = log_.WhichOneof("log_type")
        if kind == "predict_log":
            request = log_.predict_log.request
            self.predict(
                servable,
                request.model_spec.signature_name,
                proto_codec.request_arrays(request.inputs),
                tuple(request.output_filter),
                batch=False,
            )
        elif kind == "classify_log":
            request = log_.classify_log.request
            self.classify(servable, request.model_spec.signature_name, request.input, batch=False)
        elif kind == "regress_log":
            request = log_.regress_log.request
            self.regress(servable, request.model_spec.signature_name, request.input, batch=False)
        elif kind == "multi_inference_log":
            self.multi_inference(servable, log_.multi_inference_log.request, batch=False)
        else:
            raise warmup.unsupported(log_)

    def unload(self, servable: Servable) -> None:
        servable.close()

    def servable(
        self,
        name: str,
        version: int | None = None,
        label: str | None = None,
        key: str | None = None,
    ):
        """The servable that answers; `key` (the client's checked request key) picks the
        canary share of unversioned requests (serving/core/routing.py)."""
        servable = self.manager.get(name, version, label, key)
        answered_version.note(servable.version)
        return servable

    def record_request(
        self, model: str, api: str, entrypoint: str, status: str, micros: float,
        scope: answered_version.AnsweredVersion | None = None,
    ) -> None:
        """TF Serving's request metrics; and, when the request reached a version and its model
        logs requests, the request's outcome (request_log/outcomes.py). A model name this
        server does not serve is the client's, and counted under one fixed label value."""
        label = model if self.manager.serves(model) else UNSERVED_MODEL
        self.metrics.record_request(label, api, entrypoint, status, micros)
        if (
            self.request_log is not None
            and scope is not None
            and scope.version is not None
            and api.lower() in OUTCOME_APIS
        ):
            self.request_log.outcome(model, scope.version, api.lower(), status, micros)

    def model_status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        if not name:
            raise invalid_argument("Missing model name in request.")
        return self.manager.status(name, version, label)

    def close(self) -> None:
        if self.request_log is not None:
            self.request_log.close()
        if self.scheduler is not None:
            self.scheduler.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- synchronous requests (warm-up replay, MultiInference) --------------------------------

    def predict(
        self,
        servable: Servable,
        signature_name: str,
        inputs: Arrays,
        output_filter: tuple[str, ...] = (),
        *,
        batch: bool = True,
    ) -> tuple[str, Arrays]:
        """Runs a signature; returns (signature name used, outputs)."""
        return self.run(self.jobs.predict(servable, signature_name, inputs, output_filter, batch))

    def classify(
        self, servable: Servable, signature_name: str, request_input, *, batch: bool = True
    ) -> tuple[str, Classifications]:
        return self.run(self.jobs.classify(servable, signature_name, request_input, batch))

    def regress(
        self, servable: Servable, signature_name: str, request_input, *, batch: bool = True
    ) -> tuple[str, np.ndarray]:
        return self.run(self.jobs.regress(servable, signature_name, request_input, batch))

    def multi_inference(self, servable: Servable, request, *, batch: bool = True) -> list:
        """Runs each classify/regress task of a MultiInferenceRequest on the same input.

        Returns [(task, kind, signature name, result)], kind "classify" or "regress".
        """
        if not request.tasks:
            raise invalid_argument("Tasks field is empty")
        seen: set[str] = set()
        results = []
        for task in request.tasks:
            if task.model_spec.name != servable.name:
                raise invalid_argument(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name."
                )
            sig = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if sig in seen:
                raise invalid_argument(f"Duplicate evaluation of signature: {sig}")
            seen.add(sig)
            if task.method_name == CLASSIFY_METHOD:
                name, result = self.classify(servable, sig, request.input, batch=batch)
                results.append((task, "classify", name, result))
            elif task.method_name == REGRESS_METHOD:
                name, result = self.regress(servable, sig, request.input, batch=batch)
                results.append((task, "regress", name, result))
            else:
                raise invalid_argument(f"Unsupported signature method_name: {task.method_name}")
        return results

    # -- metadata -------------------------------------------------------------------------

    def signature_def_map(self, servable: Servable):
        """A tensorflow.serving.SignatureDefMap of every signature def in the meta graph."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        cached = getattr(servable, "_signature_def_map_proto", None)
        if cached is None:
            cached = get_model_metadata_pb2.SignatureDefMap()
            for key, value in servable.signature_def_map.items():
                cached.signature_def[key].CopyFrom(value)
            servable._signature_def_map_proto = cached
        return cached

    # -- running --------------------------------------------------------------------------

    def run(self, job: Job):
        """Runs a job on the calling thread (waiting for its batch if batching)."""
        start = time.perf_counter()
        try:
            queue, size = self._batch_route(job)
            if queue is None:
                outputs = job.signature.run(job.inputs)
            else:
                future = self._submit(queue, job, size)
                outputs = job.signature.run(job.inputs) if future is None else future.result()
        finally:
            self._record_runtime(job, start)
        return job.finish(outputs)

    async def run_async(self, job: Job):
        """Runs a job from the event loop: batched jobs wait on their batch without holding a
        thread; unbatched ones run on the data plane's thread pool, or right here when the
        signature is known to answer within a couple of milliseconds."""
        start = time.perf_counter()
        try:
            queue, size = self._batch_route(job)
            future = self._submit(queue, job, size) if queue is not None else None
            if future is not None:
                outputs = await asyncio.wrap_future(future)
            elif job.signature.quick():
                # A call this short costs less than the two thread hops of the pool; running it
                # here keeps single-request latency close to an in-process call.
                outputs = job.signature.run(job.inputs)
            else:
                loop = asyncio.get_running_loop()
                outputs = await loop.run_in_executor(self._executor, job.signature.run, job.inputs)
        finally:
            self._record_runtime(job, start)
        result = job.finish(outputs)
        if self.request_log is not None:
            self._log(job, result)
        return result

    def _log(self, job: Job, result) -> None:
        """Hands the answered request to the request logger; the protos are built later, on its
        writer thread, from the arrays the job already holds."""
        from beamline_serving.core.log_encoding import log_protos

        servable, kind = job.servable, job.api.lower()
        signature_name, answer = result
        self.request_log.log(
            servable.name,
            servable.version,
            signature_name,
            kind,
            lambda exclude: log_protos(kind, job.inputs, answer, exclude),
            holds=(job.inputs, answer),  # what the queued record keeps in memory
        )

    def _record_runtime(self, job: Job, start: float) -> None:
        self.metrics.runtime_latency.observe(
            (time.perf_counter() - start) * 1e6, job.servable.name, job.api, "TF1"
        )

    def _batch_route(self, job: Job) -> tuple[BatchQueue | None, int]:
        options = job.servable.batching if job.batch else None
        if options is None or self.scheduler is None:
            return None, 0
        size = _batch_size(job.inputs)
        if size is None:
            return None, 0
        return self._queue(job.servable, job.signature, options), size

    def _submit(self, queue: BatchQueue, job: Job, size: int):
        """The batch future, or None if the queue closed (version unloaded after this request
        found it: it is still in memory, so the job runs directly instead of failing)."""
        try:
            return queue.submit(job.inputs, size)
        except ServingError as exc:
            if exc.code == Code.UNAVAILABLE and queue.shut:
                return None
            raise

    def _queue(self, servable: Servable, signature: Signature, options) -> BatchQueue:
        queue = servable.queues.get(signature.name)
        if queue is not None:
            return queue
        with servable.queue_lock:
            queue = servable.queues.get(signature.name)
            if queue is None:
                model = servable.name

                def run(arrays: Arrays, signature=signature, model=model) -> Arrays:
                    self.metrics.batch_size.observe(_batch_size(arrays) or 0, model)
                    return signature.run(arrays)

                queue = self.scheduler.new_queue(
                    options, run, f"{servable.name}/{servable.version}/{signature.name}"
                )
                if servable.closed:
                    queue.close()
                servable.queues[signature.name] = queue
        return queue


def _batch_size(inputs: Arrays) -> int | None:
    """The shared 0th dimension of all inputs, or None if they cannot be batched."""
    size = None
    for array in inputs.values():
        if array.ndim == 0:
            return None
        if size is None:
            size = array.shape[0]
        elif array.shape[0] != size:
            return None
    return size
