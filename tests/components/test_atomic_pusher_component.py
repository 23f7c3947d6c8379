"""The atomic Pusher as a component (TFX's declare/execute split): building a pipeline logs no
deprecation, and the node compiles exactly as TFX's Pusher given the atomic executor did."""

from __future__ import annotations

import logging
import warnings

import pytest

from beamline import registry
from beamline.settings import PipelineSettings
from beamline_components.atomic_pusher import executor
from beamline_components.atomic_pusher.component import NODE_ID, AtomicPusher


def _penguin(tmp_path):
    from beamline_pipelines import penguin

    return penguin.create_pipeline(PipelineSettings(
        pipeline_name="penguin",
        pipeline_root=str(tmp_path / "root"),
        data_root=str(tmp_path / "data"),
        serving_dir=str(tmp_path / "serving"),
        schema_path=str(registry.get("penguin").schema_path),
    ))


def test_building_the_penguin_pipeline_logs_and_warns_no_deprecation(tmp_path, caplog):
    _penguin(tmp_path)  # TFX's own first-import messages are not the subject here
    caplog.clear()
    caplog.set_level(logging.WARNING)  # absl's records go through the "absl" logger
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = _penguin(tmp_path)
    said = [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    assert not [line for line in said if "deprecated" in line], said
    assert isinstance({c.id: c for c in pipeline.components}[NODE_ID], AtomicPusher)


# Both pipelines share all nodes but the pusher, which TFX's DSL registry notices.
@pytest.mark.filterwarnings("ignore:Component .* is not found from the registry")
def test_the_pusher_compiles_as_tfx_pusher_with_the_atomic_executor(tmp_path):
    from tfx.components import Pusher
    from tfx.dsl.compiler.compiler import Compiler
    from tfx.dsl.components.base import executor_spec
    from tfx.orchestration.pipeline import Pipeline

    pipeline = _penguin(tmp_path)
    atomic = {c.id: c for c in pipeline.components}[NODE_ID]
    stock = Pusher(
        model=atomic.inputs["model"],
        model_blessing=atomic.inputs["model_blessing"],
        push_destination=atomic.exec_properties["push_destination"],
        custom_executor_spec=executor_spec.ExecutorClassSpec(executor.Executor),
    )
    others = [c for c in pipeline.components if c is not atomic]

    def compiled(pusher):
        ir = Compiler().compile(Pipeline(
            pipeline_name="penguin", pipeline_root=str(tmp_path / "root"),
            components=[*others, pusher],
        ))
        node = next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == NODE_ID)
        return node, ir.deployment_config

    assert compiled(atomic) == compiled(stock)
    node, _ = compiled(atomic)
    assert node.node_info.type.name == "tfx.components.pusher.component.Pusher"
