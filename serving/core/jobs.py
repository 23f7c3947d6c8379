"""Job builders: a decoded request checked against its signature, ready to run.

Every check that can refuse a request before the model runs lives here (signature lookup, output
filters, input types and shapes, the schema contract, classify/regress signature shapes), with
TF Serving's messages (predict_util.cc, classifier.cc, regressor.cc). The result is a `Job`;
serving/core/dataplane.py executes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from beamline_serving.core import proto_codec
from beamline_serving.core.metrics import Metrics
from beamline_serving.core.schema_contract import SchemaContract
from beamline_serving.core.servable import Servable, Signature
from beamline_serving.core.tensors import DT_FLOAT, DT_STRING
from beamline_serving.errors import failed_precondition, internal, invalid_argument

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Classifications:
    classes: np.ndarray | None  # [batch, k] bytes
    scores: np.ndarray | None  # [batch, k] float32


@dataclass
class Job:
    """A checked request, ready to run: the data plane executes the signature, directly or
    through its batch queue, and returns `finish`'s result on the outputs."""

    servable: Servable
    signature: Signature
    inputs: Arrays
    batch: bool
    api: str
    finish: Callable[[Arrays], object]


class JobBuilder:
    """Builds Predict / Classify / Regress jobs; knows the schema contracts, runs nothing."""

    def __init__(
        self,
        metrics: Metrics,
        schemas: dict[str, SchemaContract] | None = None,
        method_name_check: bool = False,
    ) -> None:
        self.metrics = metrics
        self.schemas = schemas or {}
        self.method_name_check = method_name_check

    def _schema(self, model: str) -> SchemaContract | None:
        return self.schemas.get(model) or self.schemas.get("")

    def predict(
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
