"""The data plane: models and requests, independent of REST or gRPC.

Protocol adapters (serving/rest.py, serving/grpc_service.py) decode a request into arrays or
protos, call one method here, and encode the answer; every failure is a ServingError whose code
the adapters map in one place (serving/errors.py). Signature checks and their messages follow
TF Serving's predict_util.cc, classifier.cc and regressor.cc.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from serving.core import proto_codec, storage, warmup
from serving.core.batching import BatchQueue, BatchScheduler
from serving.core.config import BatchingOptions, parse_batching_parameters
from serving.core.errors import (
    Code,
    ServingError,
    failed_precondition,
    internal,
    invalid_argument,
)
from serving.core.metrics import Metrics
from serving.core.model_manager import ModelManager, VersionStatus
from serving.core.schema_contract import SchemaContract
from serving.core.servable import Servable, Signature, load_servable
from serving.core.tensors import DT_FLOAT, DT_STRING

log = logging.getLogger("beamline.serving")

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Classifications:
    classes: np.ndarray | None  # [batch, k] bytes
    scores: np.ndarray | None  # [batch, k] float32


@dataclass
class Job:
    """A checked request, ready to run: `run()` (any thread) or `await run_async()` (the event
    loop) executes the signature, directly or through its batch queue, and returns `finish`'s
    result on the outputs."""

    servable: Servable
    signature: Signature
    inputs: Arrays
    batch: bool
    api: str
    finish: Callable[[Arrays], object]


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
        self.schemas = schemas or {}
        self.warmup_iterations = warmup_iterations
        self.enable_warmup = enable_warmup
        self.method_name_check = method_name_check
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

    def servable(self, name: str, version: int | None = None, label: str | None = None):
        return self.manager.get(name, version, label)

    def model_status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        if not name:
            raise invalid_argument("Missing model name in request.")
        return self.manager.status(name, version, label)

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- predict --------------------------------------------------------------------------

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
        return self.run(self.predict_job(servable, signature_name, inputs, output_filter, batch))

    def predict_job(
        self,
        servable: Servable,
        signature_name: str,
        inputs: Arrays,
        output_filter: tuple[str, ...] = (),
        batch: bool = True,
    ) -> Job:
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature(name)
        if signature is None:
            raise failed_precondition(f'Serving signature key "{name}" not found.')
        if signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
            raise internal(
                "Expected prediction signature method_name to be one of "
                f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: "
                f"{signature.method_name}"
            )
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{','.join(sorted(signature.outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        signature.check_inputs(inputs)
        schema = self._schema(servable.name)
        if schema is not None:
            schema.check_arrays(inputs)

        def finish(outputs: Arrays) -> tuple[str, Arrays]:
            if output_filter:
                outputs = {alias: outputs[alias] for alias in output_filter}
            return name, outputs

        return Job(servable, signature, inputs, batch, "Predict", finish)

    # -- classify / regress ---------------------------------------------------------------

    def _example_signature(self, servable: Servable, signature_name: str, method: str):
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature(name)
        if signature is None:
            raise invalid_argument(f"No signature was found with the name: {name}")
        what = "classification" if method == CLASSIFY_METHOD else "regression"
        if self.method_name_check and signature.method_name != method:
            raise invalid_argument(
                f"Expected {what} signature method_name to be {method}. Was: "
                f"{signature.method_name}"
            )
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        if "inputs" not in signature.inputs:
            raise invalid_argument(
                f"No {what} inputs found in SignatureDef: {self._debug(servable, name)}"
            )
        return name, signature

    def _debug(self, servable: Servable, name: str) -> str:
        return str(servable.signature_def_map[name])

    def _examples(self, servable: Servable, request_input) -> np.ndarray:
        serialized, examples = proto_codec.serialized_examples(request_input)
        schema = self._schema(servable.name)
        if schema is not None:
            has_context = request_input.WhichOneof("kind") == "example_list_with_context"
            schema.check_examples(
                proto_codec.merged_examples(serialized) if has_context else examples
            )
        self.metrics.record_examples(servable.name, len(serialized))
        return serialized

    def classify(
        self, servable: Servable, signature_name: str, request_input, *, batch: bool = True
    ) -> tuple[str, Classifications]:
        return self.run(self.classify_job(servable, signature_name, request_input, batch))

    def classify_job(
        self, servable: Servable, signature_name: str, request_input, batch: bool = True
    ) -> Job:
        name, signature = self._example_signature(servable, signature_name, CLASSIFY_METHOD)
        if len(signature.outputs) not in (1, 2):
            raise invalid_argument(
                f"Expected one or two output Tensors, found {len(signature.outputs)}"
            )
        if "classes" not in signature.outputs and "scores" not in signature.outputs:
            raise invalid_argument(
                'Expected classification signature outputs to contain at least one of "classes" '
                f'or "scores". Signature was: {self._debug(servable, name)}'
            )
        serialized = self._examples(servable, request_input)
        n = serialized.shape[0]

        def finish(outputs: Arrays) -> tuple[str, Classifications]:
            classes, scores = outputs.get("classes"), outputs.get("scores")
            for what, tensor, dtype in (
                ("classes", classes, DT_STRING),
                ("scores", scores, DT_FLOAT),
            ):
                if tensor is None:
                    continue
                if tensor.ndim != 2:
                    raise invalid_argument(
                        f"Expected Tensor shape: [batch_size num_classes] but got "
                        f"[{','.join(str(d) for d in tensor.shape)}]"
                    )
                ok = tensor.dtype == object if dtype == DT_STRING else tensor.dtype == np.float32
                if not ok:
                    kind = "DT_STRING" if dtype == DT_STRING else "DT_FLOAT"
                    raise invalid_argument(f"Expected {what} Tensor of {kind}. Got: {tensor.dtype}")
                if tensor.shape[0] != n:
                    raise invalid_argument(
                        f"Expected {what} output batch size of {n}. Got: {tensor.shape[0]}"
                    )
            if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
                raise invalid_argument(
                    "Tensors class and score should match in dim_size(1). Got "
                    f"{classes.shape[1]} vs. {scores.shape[1]}"
                )
            return name, Classifications(classes, scores)

        return Job(servable, signature, {"inputs": serialized}, batch, "Classify", finish)

    def regress(
        self, servable: Servable, signature_name: str, request_input, *, batch: bool = True
    ) -> tuple[str, np.ndarray]:
        return self.run(self.regress_job(servable, signature_name, request_input, batch))

    def regress_job(
        self, servable: Servable, signature_name: str, request_input, batch: bool = True
    ) -> Job:
        name, signature = self._example_signature(servable, signature_name, REGRESS_METHOD)
        if len(signature.outputs) != 1:
            raise invalid_argument("Expected one output Tensor.")
        if "outputs" not in signature.outputs:
            raise invalid_argument(
                f"No regression outputs found in SignatureDef: {self._debug(servable, name)}"
            )
        serialized = self._examples(servable, request_input)
        n = serialized.shape[0]

        def finish(outputs: Arrays) -> tuple[str, np.ndarray]:
            values = outputs["outputs"]
            if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
                raise invalid_argument(
                    "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
                    f"but got [{','.join(str(d) for d in values.shape)}]"
                )
            if values.shape[0] != n:
                raise invalid_argument(
                    f"Input batch size did not match output batch size: {n} vs. {values.shape[0]}"
                )
            if values.dtype != np.float32:
                raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype}")
            return name, values.reshape(-1)

        return Job(servable, signature, {"inputs": serialized}, batch, "Regress", finish)

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

    def _schema(self, model: str) -> SchemaContract | None:
        return self.schemas.get(model) or self.schemas.get("")

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
        return job.finish(outputs)

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
