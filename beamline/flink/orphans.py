"""Flink jobs left running by runs that died without cleaning up (kill -9 of everything).

A run's node records its Flink job ids on its execution (run_context.FLINK_JOBS) as soon as
they appear. A run whose runner is gone (beamline.metadata.liveness) but whose executions never
ended may have left those jobs running, holding slots: `beamline run` and `flink status` call
`cancel_orphans` first, which cancels each such job still live.

Only on the clusters this machine names (`known_masters`): the master recorded in the store is
whatever its writers put there, and a reader must not send requests (let alone cancellations)
to any host a store names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from beamline.beam import FLINK_MASTER_ENV
from beamline.flink.cluster import ClusterState
from beamline.flink.home import FlinkHome
from beamline.flink.rest import FlinkRest, RestError, base_url
from beamline.metadata import run_context as rc
from beamline.metadata.liveness import runner_alive


@dataclass(frozen=True)
class Orphan:
    run_id: str
    execution_id: int
    master: str
    jid: str


def recorded_jobs(execution) -> tuple[str, list[str]]:
    """(master, job ids) recorded on an execution; ("", []) when none."""
    value = execution.custom_properties.get(rc.FLINK_JOBS)
    if value is None or not value.string_value:
        return "", []
    try:
        data = json.loads(value.string_value)
    except ValueError:
        return "", []
    return str(data.get("master") or ""), [str(j) for j in data.get("jobs") or []]


def dead_run_jobs(store) -> list[Orphan]:
    """Recorded Flink jobs of unfinished executions of dead runs (any pipeline)."""
    unfinished = {"NEW", "RUNNING"}
    out = []
    for ctx in store.get_contexts_by_type(rc.RUN_CONTEXT):
        props = rc.properties_of(ctx)
        if props.get(rc.STATE) != rc.RunState.RUNNING or runner_alive(props) is not False:
            continue
        for execution in store.get_executions_by_context(ctx.id):
            state = type(execution).State.Name(execution.last_known_state)
            if state not in unfinished:
                continue
            master, jids = recorded_jobs(execution)
            out.extend(Orphan(ctx.name, execution.id, master, jid) for jid in jids if master)
    return out


def known_masters(
    environ: Mapping[str, str] | None = None, home: FlinkHome | None = None
) -> set[str]:
    """The Flink REST endpoints this machine names: the local cluster `flink up` recorded and
    $BEAMLINE_FLINK_MASTER (as base URLs)."""
    environ = os.environ if environ is None else environ
    home = home or FlinkHome.default()
    masters = {environ.get(FLINK_MASTER_ENV, "").strip()}
    state = ClusterState.load(home)
    if state is not None:
        masters.add(state.rest)
    return {base_url(m) for m in masters if m}


def cancel_orphans(store, also: Iterable[str] = ()) -> list[Orphan]:
    """Cancels the live recorded jobs of dead runs on the known masters and on `also` (a run's
    own --flink-master); returns those canceled. Jobs recorded on any other master are left
    alone. Never raises: a cluster that does not answer cannot hold the job either way, or
    will be asked next time."""
    canceled = []
    try:
        masters = known_masters() | {base_url(m) for m in also if m}
        orphans = [o for o in dead_run_jobs(store) if base_url(o.master) in masters]
    except Exception:  # noqa: BLE001 - an unreadable store is reported by the caller's own use
        return []
    for orphan in orphans:
        rest = FlinkRest(orphan.master)
        try:
            if not rest.job(orphan.jid).live:
                continue
            rest.cancel(orphan.jid)
        except RestError:
            continue
        canceled.append(orphan)
    return canceled


def describe(canceled: list[Orphan]) -> str:
    runs = sorted({o.run_id for o in canceled})
    return (f"canceled {len(canceled)} Flink job(s) left running by dead run(s) "
            f"{', '.join(runs)}: {', '.join(o.jid for o in canceled)}")
