"""A run root whose SQLite MLMD store was forged to name directories outside the root.

Run `r1` of pipeline `p` is stamped RUNNING by a runner on another host whose heartbeat is 1 ms
after the epoch, so cleanup counts it dead from the store alone. Its RUNNING executions name:

- a stateful working directory index that is an absolute path (`absolute`);
- one that climbs out of the root with `..` (`relative`);
- a node whose name climbs out with `..`, where `<node>/<key>/<id>` and
  `<node>/.system/executor_execution/<id>` are victims too (`node`);
- and a real Trainer execution whose output key directory `linked` is a symlink to a directory
  outside the root holding `<id>/` (`linked`).

The Trainer execution's real leftovers inside the pipeline root are what cleanup should remove.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from beamline.metadata import run_context as rc
from beamline.settings import RootLayout

PIPELINE = "p"
RUN = "r1"
STATEFUL_INDEX = "__stateful_working_dir_index__"


@dataclass
class Forged:
    layout: RootLayout
    store: object
    victims: dict[str, Path]  # what the records name outside the root, each holding a file
    leftovers: set[Path]  # what the dead run really left inside the pipeline root


def _victim(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "precious.txt").write_text("not Beamline's to delete\n")
    return path


def forged_root(base: Path) -> Forged:
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata.connection import sqlite_config

    layout = RootLayout(base / "root")
    layout.root.mkdir()
    outside = base / "outside"
    store = metadata_store.MetadataStore(sqlite_config(layout.metadata_path))

    def context(type_name: str, name: str, **props: str) -> int:
        type_id = store.put_context_type(pb.ContextType(name=type_name))
        ctx = pb.Context(type_id=type_id, name=name)
        for key, value in props.items():
            ctx.custom_properties[key].string_value = value
        [cid] = store.put_contexts([ctx])
        return cid

    pipeline = context(rc.PIPELINE_CONTEXT, PIPELINE)
    run = context(
        rc.RUN_CONTEXT, RUN,
        **{rc.PIPELINE: PIPELINE, rc.STATE: rc.RunState.RUNNING, rc.RUNNER_PID: "1",
           rc.RUNNER_HOST: "some-other-host", rc.HEARTBEAT_MS: "1"},
    )
    exec_type = store.put_execution_type(pb.ExecutionType(name="Trainer"))
    trainer, absolute, relative, climbing = store.put_executions(
        [pb.Execution(type_id=exec_type, last_known_state=pb.Execution.RUNNING)] * 4
    )
    pipeline_root = layout.pipeline_root(PIPELINE)
    stateful = pipeline_root / "Trainer" / ".system" / "stateful_working_dir"
    node_victim = outside / "node"
    victims = {
        "absolute": _victim(outside / "absolute"),
        "relative": _victim(outside / "relative"),
        "node_output": _victim(node_victim / "model" / str(climbing)),
        "node_executor": _victim(node_victim / ".system" / "executor_execution" / str(climbing)),
        "linked": _victim(outside / "linked" / str(trainer)),
    }
    indexes = {
        trainer: "real-index",
        absolute: str(victims["absolute"]),
        relative: os.path.relpath(victims["relative"], stateful),
    }
    leftovers = {
        pipeline_root / "Trainer" / "model" / str(trainer),
        pipeline_root / "Trainer" / ".system" / "executor_execution" / str(trainer),
        stateful / "real-index",
    }
    for path in leftovers:
        path.mkdir(parents=True)
    (pipeline_root / "Trainer" / "linked").symlink_to(outside / "linked")

    trainer_node = context(rc.NODE_CONTEXT, f"{PIPELINE}.Trainer")
    climbing_node = context(
        rc.NODE_CONTEXT, f"{PIPELINE}.{os.path.relpath(node_victim, pipeline_root)}"
    )
    updated = []
    for execution in store.get_executions_by_id(list(indexes)):
        execution.custom_properties[STATEFUL_INDEX].string_value = indexes[execution.id]
        updated.append(execution)
    store.put_executions(updated)
    associations = [
        pb.Association(context_id=ctx, execution_id=eid)
        for eid, node in [(trainer, trainer_node), (absolute, trainer_node),
                          (relative, trainer_node), (climbing, climbing_node)]
        for ctx in (pipeline, run, node)
    ]
    store.put_attributions_and_associations([], associations)
    return Forged(layout, store, victims, leftovers)


def victims_intact(forged: Forged) -> bool:
    return all((v / "precious.txt").is_file() for v in forged.victims.values())
