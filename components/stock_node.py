"""A stock TFX component given another executor, and nothing else."""

from __future__ import annotations


class StockNode:
    """Mixin, listed before the stock TFX component class it subclasses, for a component that
    only swaps the executor (`EXECUTOR_SPEC`). The node stays the stock one to everything that
    reads a pipeline: its id (`NODE_ID`, the stock default) and its type name in the compiled
    pipeline and in MLMD, so cached executions are reused and no reader tells the two apart."""

    NODE_ID: str

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_id(self.NODE_ID)

    @classmethod
    def get_class_type(cls) -> str:
        stock = cls.__mro__[cls.__mro__.index(StockNode) + 1]
        return stock.get_class_type()
