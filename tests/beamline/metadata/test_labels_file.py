"""The serving-root files as the framework writes them and the model server reads them back
(with its own readers: RootFiles, which `beamline serve --root` polls), and their atomic writes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from beamline.errors import ConfigError
from beamline.metadata import labels_file
from beamline.metadata.labels_file import render, write_atomically
from beamline.settings import RootLayout
from beamline_serving.core.config import parse_model_config_text
from beamline_serving.core.root_files import RootFiles
from beamline_serving.core.serving_root import parse_routing_json
from beamline_serving.errors import ConfigError as ServerConfigError
from tests.hypothesis_budget import examples

# The server refuses '/' and ':' in a model name (REST paths cannot carry them).
_NAMES = st.text(min_size=1).filter(lambda name: "/" not in name and ":" not in name)
# Any pipeline name the framework may meet, and the labels promote accepts (changes.check_label).
_ANY_NAMES = st.text(max_size=12)
_LABELS = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
_VERSIONS = st.integers(min_value=0, max_value=2**63 - 1)  # ModelServerConfig's int64


@settings(max_examples=examples(200))
@given(name=_NAMES)
@example(name="café")
@example(name='say "hi"')
@example(name="back\\slash\\")
@example(name="\\u00e9")
@example(name="new\nline\x00\x7f")
@example(name="模型-\U0001f600")
def test_the_server_reads_back_every_model_name_as_written(name):
    layout = RootLayout(Path("/srv/beamline rööt"))
    text = render(layout, {name: {"stable": 3, "canary": 4}})
    [spec] = parse_model_config_text(text, "models.config")
    assert spec.name == name
    assert spec.base_path == str(layout.serving_dir(name))
    assert dict(spec.labels) == {"stable": 3, "canary": 4}


@contextlib.contextmanager
def _root():
    """A fresh run root per example (pytest's tmp_path is one per test, not per example)."""
    with tempfile.TemporaryDirectory() as directory:
        yield RootLayout(Path(directory) / "root")


def _server_reading(layout: RootLayout) -> RootFiles:
    files = RootFiles(layout.serving_root, labels_file.models_config_path(layout),
                      labels_file.routing_path(layout))
    files.poll(strict=True)  # as at start-up: a file it refuses raises
    return files


# Each example writes (and fsyncs) real files: fewer examples than the pure properties above.
@settings(max_examples=examples(40), deadline=None)
@given(
    labels=st.dictionaries(_ANY_NAMES, st.dictionaries(_LABELS, _VERSIONS, min_size=1,
                                                       max_size=3), max_size=3),
    loading=st.lists(_VERSIONS, max_size=2),
)
@example(labels={"penguin": {"stable": 1, "canary": 2}}, loading=[])
@example(labels={"a:b": {"stable": 1}}, loading=[])
def test_every_models_config_the_framework_writes_the_server_reads_back_to_the_same_labels(
    labels, loading
):
    # `loading`: versions listed without a label, as the first write of a label move does.
    extra = {name: set(loading) for name in labels}
    with _root() as layout:
        try:
            text = render(layout, labels, extra_versions=extra)
        except ConfigError:
            # Refused, and nothing written, only for names the server cannot serve.
            assert any(not name or "/" in name or ":" in name for name in labels)
            return
        write_atomically(labels_file.models_config_path(layout), text)
        specs = {spec.name: spec for spec in _server_reading(layout).specs()}
    assert {name: spec.label_map for name, spec in specs.items()} == labels
    for name, spec in specs.items():
        assert spec.base_path == str(layout.serving_dir(name))
        assert (spec.policy.kind, set(spec.policy.versions)) == (
            "specific", set(labels[name].values()) | set(loading))


@settings(max_examples=examples(25), deadline=None)
@given(shares=st.lists(st.tuples(_ANY_NAMES, st.floats(min_value=0, max_value=100)),
                       max_size=4))
def test_every_routing_json_the_framework_writes_the_server_reads_back_to_the_same_shares(
    shares,
):
    with _root() as layout:
        for name, percent in shares:
            labels_file.set_canary_percent(layout, name, percent)
        read = _server_reading(layout).canary_percents
    assert read == dict(shares)  # the last share set for each model


@settings(max_examples=examples(200))
@given(percent=st.floats(allow_nan=True, allow_infinity=True) | st.integers())
@example(percent=math.nan)
@example(percent=-0.0)
@example(percent=100)
@example(percent=10**400)  # an int JSON holds, too large for a float
def test_the_framework_refuses_exactly_the_shares_the_server_refuses(percent):
    in_a_file = json.dumps({"models": {"m": {"canary_percent": percent}}})
    try:
        parse_routing_json(in_a_file, "routing.json")
        server_refuses = False
    except ServerConfigError:
        server_refuses = True
    try:
        labels_file.check_canary_percent(percent)
        framework_refuses = False
    except ConfigError:
        framework_refuses = True
    assert framework_refuses == server_refuses


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def test_a_failed_write_leaves_no_temp_file_and_the_old_file_intact(tmp_path):
    target = tmp_path / "models.config"
    write_atomically(target, "old\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(target, "half written \ud800")  # a lone surrogate has no UTF-8
    assert _leftovers(tmp_path) == []
    assert target.read_text() == "old\n"


def test_a_failed_rename_leaves_no_temp_file(tmp_path):
    target = tmp_path / "models.config"
    (target / "in the way").mkdir(parents=True)  # a non-empty directory: replace fails
    with pytest.raises(OSError):
        write_atomically(target, "new\n")
    assert _leftovers(tmp_path) == []
    assert os.listdir(target) == ["in the way"]
