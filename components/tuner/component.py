"""Declares RecordingTuner: TFX's Tuner whose executor keeps every trial's record.

The component declares, the executor (executor.py) works: TFX's own split, as
atomic_pusher/component.py follows it.
"""

from __future__ import annotations

from tfx.components import Tuner
from tfx.dsl.components.base import executor_spec

from beamline_components.stock_node import StockNode
from beamline_components.tuner import executor

# The node id every Beamline pipeline has given its Tuner (TFX's default for its Tuner): the
# hyperparameter reuse (beamline/runner/tuned.py) and the lineage readers look for it.
NODE_ID = "Tuner"


class RecordingTuner(StockNode, Tuner):
    """Tuner that keeps each trial (status, hyperparameters, score, metrics).

    The node stays TFX's Tuner to everything that reads a pipeline (its id and its type name in
    the compiled pipeline and in MLMD), so readers of runs and the search reuse do not tell the
    two apart.
    """

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
    NODE_ID = NODE_ID
