"""`beamline lineage LABEL` traces the version holding the label now, as `promote`, `rollback`
and `monitor --compare` read labels (their holders in the label history of a real SQLite
MLMD store); a label two pipelines hold needs --pipeline."""

from __future__ import annotations

import json

from beamline.metadata import labels as history
from beamline.metadata import records as r
from tests.beamline.commands.test_mistakes import beamline
from tests.beamline.models.conftest import PIPELINE


def _traced_version(out: str) -> str:
    return json.loads(out)["target"]["properties"]["pushed_version"]


def test_lineage_of_a_label_traces_the_version_holding_it_now(mlmd, capsys):
    for run, version in (("r1", 100), ("r2", 200)):
        mlmd.push(run, version)
    history.record_change(mlmd.store, PIPELINE, "stable", 100, r.LabelAction.PUSH, time_ms=1)
    history.record_change(mlmd.store, PIPELINE, "canary", 200, r.LabelAction.PUSH, time_ms=2)
    root = mlmd.layout.root
    for ref, version in (("stable", "100"), ("canary", "200"), ("200", "200")):
        code, out, err = beamline(capsys, "lineage", ref, "--root", root, "--json")
        assert code == 0, err
        assert _traced_version(out) == version, ref
    history.record_change(mlmd.store, PIPELINE, "stable", 200, r.LabelAction.PROMOTE, time_ms=3)
    code, out, err = beamline(capsys, "lineage", "stable", "--root", root, "--json")
    assert (code, _traced_version(out)) == (0, "200")


def test_a_label_no_version_holds_is_refused_with_the_known_versions(mlmd, capsys):
    mlmd.push("r1", 100)
    code, _, err = beamline(capsys, "lineage", "stable", "--root", mlmd.layout.root)
    assert code == 2
    assert "Nothing in" in err and "'stable'" in err and "recent: 100" in err


def test_a_label_held_in_two_pipelines_needs_pipeline(mlmd, capsys):
    mlmd.push("r1", 100)
    history.record_change(mlmd.store, PIPELINE, "stable", 100, r.LabelAction.PUSH, time_ms=1)
    history.record_change(mlmd.store, "other", "stable", 7, r.LabelAction.PUSH, time_ms=2)
    root = mlmd.layout.root
    code, _, err = beamline(capsys, "lineage", "stable", "--root", root)
    assert code == 2
    assert "held in 2 pipelines: other (version 7), p (version 100)" in err
    assert "--pipeline NAME" in err
    code, out, err = beamline(capsys, "lineage", "stable", "--root", root, "-p", PIPELINE,
                              "--json")
    assert (code, _traced_version(out)) == (0, "100")
