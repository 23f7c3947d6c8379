"""`--retrain-on` names each policy by what it does; a script or DAG that still uses a first name
keeps working, told once on stderr which name to use."""

from __future__ import annotations

import pytest

from beamline.loop.airflow import _config
from beamline.loop.policy import DEPRECATED, NEW_SPAN_IF_DRIFT
from tests.beamline.commands.test_mistakes import beamline, one_error


def _loop_once(capsys, tmp_path, *policy):
    """`loop --once` on a root no run used: it stops at the missing store, after the flags."""
    (tmp_path / "data").mkdir(exist_ok=True)
    return beamline(
        capsys, "loop", "p", "--once", "--data", tmp_path / "data", "--requests",
        tmp_path / "logs", "--root", tmp_path / "root", *policy,
    )


@pytest.mark.parametrize(("old", "new"), sorted(DEPRECATED.items()))
def test_a_deprecated_policy_name_works_with_one_warning_naming_the_new_one(
    capsys, tmp_path, old, new
):
    code, _, err = _loop_once(capsys, tmp_path, "--retrain-on", old)
    assert [line for line in err.splitlines() if line.startswith("warning: ")] == [
        f"warning: --retrain-on {old} is deprecated; use --retrain-on {new}."
    ]
    assert "No metadata store at" in one_error(err)  # past the flags: the name was accepted
    assert code == 3  # DataError: the store, not the flag


def test_a_current_policy_name_warns_of_nothing(capsys, tmp_path):
    _, _, err = _loop_once(capsys, tmp_path, "--retrain-on", NEW_SPAN_IF_DRIFT)
    assert "warning: " not in err


def test_an_unknown_policy_is_a_usage_error_listing_the_names(capsys, tmp_path):
    code, _, err = _loop_once(capsys, tmp_path, "--retrain-on", "drift-and-new-data")
    line = one_error(err)
    assert code == 2 and "'--retrain-on'" in line
    assert "'new-span', 'new-span-if-drift', 'new-span-ignore-drift'" in line


def test_loop_help_names_the_policies_and_the_default(capsys):
    _, out, _ = beamline(capsys, "loop", "--help")
    text = " ".join(out.split())
    assert "--retrain-on [new-span|new-span-if-drift|new-span-ignore-drift]" in text
    assert "[default: new-span]" in text and "drift+new-data" not in text


def test_a_dag_compiled_with_a_deprecated_name_decides_by_the_new_one(capsys, tmp_path):
    settings = {"pipeline": "p", "root": str(tmp_path)}
    loop = {"data": str(tmp_path), "requests": str(tmp_path), "policy": "drift",
            "max_invalid_fraction": 0.02, "beam_profile": "direct"}
    assert _config(settings, loop).policy == NEW_SPAN_IF_DRIFT
    assert capsys.readouterr().err.startswith(
        f"warning: --retrain-on drift is deprecated; use --retrain-on {NEW_SPAN_IF_DRIFT}."
    )
