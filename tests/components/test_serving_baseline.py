"""The baseline a container task finds for Kubeflow: the newest pushed version, as a Model the
Evaluator reads; before the first push an empty Model, which the Evaluator leaves out."""

from __future__ import annotations

from tfx.types import standard_artifacts, standard_component_specs

from beamline_components.resolvers import serving_baseline


def _version(serving_dir, version: str, complete: bool = True):
    path = serving_dir / version
    (path / "variables").mkdir(parents=True)
    (path / "variables" / "variables.index").write_bytes(b"ix-" + version.encode())
    if complete:
        (path / "saved_model.pb").write_bytes(b"pb-" + version.encode())


def _find(tmp_path, serving_dir) -> standard_artifacts.Model:
    baseline = standard_artifacts.Model()
    baseline.uri = str(tmp_path / "baseline")
    serving_baseline.Executor().Do(
        {},
        {serving_baseline.MODEL_KEY: [baseline]},
        {serving_baseline.SERVING_DIR_KEY: str(serving_dir)},
    )
    return baseline


def test_the_newest_complete_version_becomes_a_model_the_evaluator_reads(tmp_path):
    serving_dir = tmp_path / "serving"
    _version(serving_dir, "900")
    _version(serving_dir, "1000")
    _version(serving_dir, "1100", complete=False)  # a push still being copied
    (serving_dir / ".incoming-1200-7").mkdir()  # a staged push: not a version
    baseline = _find(tmp_path, serving_dir)
    copied = tmp_path / "baseline" / "Format-Serving"
    assert (copied / "saved_model.pb").read_bytes() == b"pb-1000"
    assert (copied / "variables" / "variables.index").read_bytes() == b"ix-1000"
    assert baseline.get_int_custom_property(serving_baseline.VERSION_PROPERTY) == 1000
    assert baseline.get_string_custom_property(serving_baseline.SOURCE_PROPERTY) == str(
        serving_dir / "1000"
    )
    assert serving_baseline.holds_model(baseline)
    inputs = {standard_component_specs.BASELINE_MODEL_KEY: [baseline], "model": []}
    assert serving_baseline.without_empty_baseline(inputs) is inputs


def test_before_the_first_push_the_evaluator_gets_no_baseline(tmp_path):
    for serving_dir in (tmp_path / "missing", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        baseline = _find(tmp_path, serving_dir)
        assert not serving_baseline.holds_model(baseline)
        assert baseline.get_int_custom_property(serving_baseline.VERSION_PROPERTY) == 0
        model = standard_artifacts.Model()
        inputs = {standard_component_specs.BASELINE_MODEL_KEY: [baseline], "model": [model]}
        assert serving_baseline.without_empty_baseline(inputs) == {"model": [model]}


def test_newest_version_orders_numerically(tmp_path):
    for version in ("99", "100", "7"):
        _version(tmp_path, version)
    assert serving_baseline.newest_version(str(tmp_path)) == "100"
