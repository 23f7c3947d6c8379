"""A real SQLite MLMD store laid out as TFX's IR runner writes it: a pipeline, runs, a Pusher
execution per push with its blessing input and PushedModel output, and version directories."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from beamline.metadata import run_context as rc
from beamline.settings import RootLayout

PIPELINE = "p"


@dataclass
class Store:
    store: object
    layout: RootLayout

    def _type(self, kind: str, name: str) -> int:
        from ml_metadata.proto import metadata_store_pb2 as pb

        put = {"context": (self.store.put_context_type, pb.ContextType),
               "execution": (self.store.put_execution_type, pb.ExecutionType),
               "artifact": (self.store.put_artifact_type, pb.ArtifactType)}[kind]
        return put[0](put[1](name=name), can_add_fields=True, can_omit_fields=True)

    def context(self, type_name: str, name: str, **custom):
        from ml_metadata.proto import metadata_store_pb2 as pb

        found = self.store.get_context_by_type_and_name(type_name, name) if self._type(
            "context", type_name) else None
        if found is not None:
            return found
        ctx = pb.Context(type_id=self._type("context", type_name), name=name)
        for key, value in custom.items():
            ctx.custom_properties[key].string_value = str(value)
        [cid] = self.store.put_contexts([ctx])
        [ctx] = self.store.get_contexts_by_id([cid])
        return ctx

    def push(self, run_id: str, version: int, blessed: int | None = 1, on_disk: bool = True,
             state: str = "COMPLETE", policy: str | None = None) -> int:
        """A run whose Pusher pushed `version`; returns the PushedModel artifact id."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        pipeline = self.context(rc.PIPELINE_CONTEXT, PIPELINE)
        custom = {rc.PIPELINE: PIPELINE}
        if policy:
            custom["beamline_push_policy"] = policy
        run = self.context(rc.RUN_CONTEXT, run_id, **custom)
        self.store.put_parent_contexts([pb.ParentContext(child_id=run.id, parent_id=pipeline.id)])
        node = self.context(rc.NODE_CONTEXT, f"{PIPELINE}.Pusher")
        destination = self.layout.serving_dir(PIPELINE) / str(version)
        pairs = []
        if blessed is not None:
            blessing = pb.Artifact(type_id=self._type("artifact", "ModelBlessing"),
                                   uri=str(self.layout.root / f"blessing-{version}"))
            blessing.custom_properties["blessed"].int_value = blessed
            event = pb.Event(type=pb.Event.INPUT)
            event.path.steps.add().key = "model_blessing"
            pairs.append((blessing, event))
        pushed = pb.Artifact(type_id=self._type("artifact", "PushedModel"),
                             uri=str(self.layout.root / f"pushed-{version}"))
        pushed.custom_properties["pushed"].int_value = 1
        pushed.custom_properties["pushed_version"].string_value = str(version)
        pushed.custom_properties["pushed_destination"].string_value = str(destination)
        event = pb.Event(type=pb.Event.OUTPUT)
        event.path.steps.add().key = "pushed_model"
        pairs.append((pushed, event))
        execution = pb.Execution(
            type_id=self._type("execution", "tfx.components.pusher.component.Pusher"),
            last_known_state=getattr(pb.Execution, state),
        )
        _, ids, _ = self.store.put_execution(execution, pairs, [pipeline, run, node])
        if on_disk:
            (destination / "variables").mkdir(parents=True, exist_ok=True)
            (destination / "saved_model.pb").write_bytes(f"model {version}".encode())
        return ids[-1]

    def graph(self):
        from beamline.lineage.load import load_graph

        return load_graph(self.store, PIPELINE, source="test store")


@pytest.fixture
def mlmd(tmp_path) -> Store:
    import ml_metadata as mlmd_lib

    from beamline.metadata.connection import sqlite_config

    layout = RootLayout(tmp_path / "root")
    layout.root.mkdir()
    return Store(mlmd_lib.MetadataStore(sqlite_config(layout.metadata_path)), layout)
