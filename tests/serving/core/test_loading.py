"""Model loading helpers: the low-priority loader thread and the synthetic warm-up inputs."""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from beamline_serving.core.model_manager import LOADER_NICENESS, call_at_low_priority
from beamline_serving.core.servable import TensorInfo
from beamline_serving.core.tensors import DT_FLOAT, DT_INT64, DT_STRING
from beamline_serving.core.warmup import synthetic_inputs, warm_signatures


def test_loads_run_on_another_thread_at_lower_priority():
    def probe(x):
        return threading.get_ident(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), x

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    ident, niceness, value = call_at_low_priority(probe, 7)
    assert ident != threading.get_ident() and value == 7
    assert niceness == min(before + LOADER_NICENESS, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_load_errors_reach_the_caller():
    def fail():
        raise ValueError("bad version")

    with pytest.raises(ValueError, match="bad version"):
        call_at_low_priority(fail)


def test_synthetic_inputs_follow_the_signature():
    signature = SimpleNamespace(
        inputs={
            "x": TensorInfo("x", DT_FLOAT, (-1, 3)),
            "n": TensorInfo("n", DT_INT64, None),
            "examples": TensorInfo("examples", DT_STRING, (-1,)),
        }
    )
    arrays = synthetic_inputs(signature)
    assert arrays["x"].shape == (1, 3) and arrays["x"].dtype == np.float32
    assert arrays["n"].shape == (1,) and arrays["n"].dtype == np.int64
    assert arrays["examples"].tolist() == [b""]  # an empty string is an empty tf.Example


def test_warm_up_counts_accepted_signatures_and_ignores_refusals():
    calls = []

    def accept(arrays):
        calls.append(arrays)

    def refuse(arrays):
        raise RuntimeError("model refuses zeros")

    infos = {"x": TensorInfo("x", DT_FLOAT, (-1,))}
    servable = SimpleNamespace(
        name="m",
        signatures={
            "a": SimpleNamespace(inputs=infos, warm=accept),
            "b": SimpleNamespace(inputs=infos, warm=refuse),
        },
    )
    assert warm_signatures(servable) == 1
    assert calls[0]["x"].tolist() == [0.0]
