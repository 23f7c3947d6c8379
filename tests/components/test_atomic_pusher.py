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


def test_a_push_killed_between_copy_and_rename_leaves_no_version_and_is_cleaned(tmp_path):
    """The fault point `push:copied` (beamline/faults.py) SIGKILLs the Pusher after the copy is
    complete and before the rename: no server sees a version, nothing is recorded, and the next
    run's clean-up removes the hidden copy; the next push then succeeds."""
    import signal
    import subprocess
    import sys

    from beamline.faults import FAULT_ENV
    from beamline.runner.cleanup import remove_leftover_files
    from beamline.settings import PUSH_INCOMING_PREFIX, RootLayout
    from beamline_serving.core.model_manager import list_versions

    layout = RootLayout(tmp_path / "root")
    serving_dir = layout.serving_dir("penguin")
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import runpy, sys\n"
        "from pathlib import Path\n"
        "push = runpy.run_path(sys.argv[1])['_push']\n"
        "push(Path(sys.argv[2]), Path(sys.argv[3]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, __file__, str(work), str(serving_dir)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, FAULT_ENV: "push:copied"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    [left] = os.listdir(serving_dir)
    assert left.startswith(PUSH_INCOMING_PREFIX), left
    copy = serving_dir / left  # complete: the kill came after the copy
    assert (copy / "saved_model.pb").read_bytes() == b"pb"
    assert (copy / "variables" / "variables.index").read_bytes() == b"ix"
    assert list_versions(str(serving_dir)) == {}  # a model server finds no version
    assert not any(p.name.startswith("pushed-") for p in work.iterdir())  # no archive copy

    cleaned = remove_leftover_files(layout, "penguin")
    assert cleaned.removed and os.listdir(serving_dir) == []
    version = _push(tmp_path, serving_dir).get_string_custom_property("pushed_version")
    assert os.listdir(serving_dir) == [version]
    assert list(list_versions(str(serving_dir))) == [int(version)]
