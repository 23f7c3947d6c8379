"""Declares AtomicPusher: TFX's Pusher whose executor copies, then renames into place.

The component declares, the executor (executor.py) works: TFX's own split, as
strict_validator/component.py follows it. TFX 1.16 deprecates `Pusher(custom_executor_spec=...)`
and logs a warning at every pipeline construction.
"""

from __future__ import annotations

from tfx.components import Pusher
from tfx.dsl.components.base import executor_spec

from beamline_components.atomic_pusher import executor
from beamline_components.stock_node import StockNode

# The node id every Beamline pipeline has given its pusher (TFX's default for its Pusher): the
# run summary, `beamline why Pusher`, lineage readers and the push recovery look for it.
NODE_ID = "Pusher"


class AtomicPusher(StockNode, Pusher):
    """Pusher that no model server ever sees half-written: copy, then one rename.

    The node stays TFX's Pusher to everything that reads a pipeline (its id and its type name in
    the compiled pipeline and in MLMD), as it was when TFX's Pusher was given this executor, so
    earlier runs' cached pushes are reused and no reader tells the two apart.
    """

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
    NODE_ID = NODE_ID
