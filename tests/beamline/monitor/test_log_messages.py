"""Request logs are read back without TensorFlow: the rows of a window (predict tensors of each
encoding, serialized tf.Examples, predicted classes) are those TensorFlow's own classes give,
in a process where `tensorflow` is never imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import prediction_log_pb2

from beamline.monitor.log_messages import PREDICTION_LOG, messages, to_array
from beamline_serving.core.tensors import NUMPY_DTYPES, make_tensor_proto
from beamline_serving.request_log.tfrecord import frame
from tests.hypothesis_budget import examples
from tests.serving.core.test_tensors import _arrays_of as arrays_of

STAMP = 1_800_000_000


def _predict(inputs: dict, outputs: dict | None = None):
    record = prediction_log_pb2.PredictionLog()
    record.log_metadata.model_spec.name = "penguin"
    record.log_metadata.model_spec.version.value = 3
    record.log_metadata.timestamp_secs = STAMP
    for name, tensor in inputs.items():
        record.predict_log.request.inputs[name].CopyFrom(tensor)
    for name, tensor in (outputs or {}).items():
        record.predict_log.response.outputs[name].CopyFrom(tensor)
    return record


def _logs(directory):
    example = tf.train.Example()
    example.features.feature["island"].bytes_list.value.append(b"Torgersen")
    example.features.feature["mass"].float_list.value.append(3100.5)
    bill = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[41.5])
    bill.tensor_shape.dim.add().size = 1
    undecodable = _predict({"x": tf.make_tensor_proto([1.0])})
    undecodable.predict_log.request.inputs["x"].dtype = 20  # DT_RESOURCE: no decoder reads it
    records = [
        # tensor_content (what tf.make_tensor_proto writes for numbers) and string_val.
        _predict(
            {"island": tf.make_tensor_proto([b"Biscoe", b"Dream"]),
             "mass": tf.make_tensor_proto([[4000], [5000]], tf.int64)},
            {"scores": tf.make_tensor_proto([[0.9, 0.1], [0.2, 0.8]]),
             "classes": tf.make_tensor_proto([[b"A", b"G"], [b"A", b"G"]])},
        ),
        # The typed value fields (what Beamline's server and TF Serving's JSON path write).
        _predict({"bill": bill}),
        # A serving_examples signature: serialized tf.Examples in one string tensor.
        _predict({"examples": tf.make_tensor_proto([example.SerializeToString()])}),
        undecodable,
    ]
    directory.mkdir()
    with open(directory / "requests-1.tfrecord", "wb") as out:
        for record in records:
            out.write(frame(record.SerializeToString()))


READ = textwrap.dedent(
    """
    import json, sys
    from beamline.monitor.window import read_window
    window = read_window(sys.argv[1])
    [traffic] = window.traffic.values()
    rows = [{k: [v.decode() if isinstance(v, bytes) else v for v in vs] for k, vs in r.items()}
            for r in traffic.rows]
    print(json.dumps({
        "rows": rows, "predicted": traffic.predicted, "undecodable": window.undecodable,
        "tensorflow": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow"),
    }))
    """
)


def test_a_window_is_read_without_importing_tensorflow(tmp_path):
    _logs(tmp_path / "logs")
    proc = subprocess.run(
        [sys.executable, "-c", READ, str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    read = json.loads(proc.stdout)
    assert read["tensorflow"] == []
    assert read["rows"] == [
        {"island": ["Biscoe"], "mass": [4000]},
        {"island": ["Dream"], "mass": [5000]},
        {"bill": [41.5]},
        {"island": ["Torgersen"], "mass": [3100.5]},
    ]
    assert read["predicted"] == ["A", "G"]
    assert read["undecodable"] == 1


@pytest.mark.parametrize("dtype", list(NUMPY_DTYPES.values()), ids=str)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_logged_tensor_of_every_dtype_the_server_takes_decodes_as_tensorflow_does(dtype, data):
    """The loop reads a logged tensor as a message of its own pool (not TensorFlow's class):
    each encoding a log holds (tensor_content, as tf.make_tensor_proto writes numbers, and the
    typed value fields, as the server and TF Serving's JSON path write) decodes to what
    tf.make_ndarray gives for the same bytes."""
    array = data.draw(arrays_of(dtype))
    for tensor in (tf.make_tensor_proto(array), make_tensor_proto(array)):
        logged = messages()[PREDICTION_LOG].FromString(
            _predict({"x": tensor}).SerializeToString()
        )
        ours = to_array(logged.predict_log.request.inputs["x"])
        theirs = tf.make_ndarray(tensor)
        assert ours.shape == theirs.shape
        if dtype == np.dtype(object):
            np.testing.assert_array_equal(ours.astype(bytes), theirs.astype(bytes))
        else:
            assert ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours, theirs)
