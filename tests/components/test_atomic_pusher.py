"""The atomic Pusher executor: a version appears complete, in one rename, or not at all."""

from __future__ import annotations

import json
import os

from tfx.types import standard_artifacts, standard_component_specs

from beamline_components.atomic_pusher import executor as atomic_pusher


def _push(tmp_path, serving_dir):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    serving = tmp_path / "model" / "Format-Serving"
    (serving / "variables").mkdir(parents=True, exist_ok=True)
    (serving / "saved_model.pb").write_bytes(b"pb")
    (serving / "variables" / "variables.index").write_bytes(b"ix")
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{len(os.listdir(tmp_path))}")
    destination = {"filesystem": {"baseDirectory": str(serving_dir)}}
    atomic_pusher.Executor().Do(
        {standard_component_specs.MODEL_KEY: [model]},
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
        {standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(destination)},
    )
    return pushed


def test_push_renames_a_complete_copy_into_place(tmp_path):
    serving_dir = tmp_path / "serving"
    pushed = _push(tmp_path, serving_dir)
    version = pushed.get_string_custom_property("pushed_version")
    target = serving_dir / version
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(target)
    assert (target / "saved_model.pb").read_bytes() == b"pb"
    assert (target / "variables" / "variables.index").exists()
    assert os.listdir(serving_dir) == [version]  # no .incoming-* left


def test_versions_increase_within_one_second(tmp_path):
    serving_dir = tmp_path / "serving"
    first = _push(tmp_path, serving_dir).get_string_custom_property("pushed_version")
    second = _push(tmp_path, serving_dir).get_string_custom_property("pushed_version")
    assert int(second) > int(first)
    assert atomic_pusher.next_version(str(serving_dir), now=0) == str(int(second) + 1)


def test_under_beamlines_runner_the_push_is_only_staged_until_recorded(tmp_path, monkeypatch):
    from beamline.settings import DEFERRED_PUSH_ENV

    monkeypatch.setenv(DEFERRED_PUSH_ENV, "1")
    serving_dir = tmp_path / "serving"
    pushed = _push(tmp_path, serving_dir)
    version = pushed.get_string_custom_property("pushed_version")
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(serving_dir / version)
    # Nothing a server would load: only the staged copy, renamed by the runner once recorded.
    [staged] = os.listdir(serving_dir)
    assert staged.startswith(f".incoming-{version}-")
    assert (serving_dir / staged / "saved_model.pb").read_bytes() == b"pb"
