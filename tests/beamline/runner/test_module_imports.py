"""Module files become importable dotted names, so Beam worker processes can load them."""

from __future__ import annotations

import sys

import pytest
from tfx.proto.orchestration import pipeline_pb2

from beamline.runner.module_imports import importable_name, use_module_paths


@pytest.fixture
def package_tree(tmp_path, monkeypatch):
    """tmp/pkg (regular package) / sub (namespace dir) / mod.py, importable from sys.path."""
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    module = tmp_path / "pkg" / "sub" / "mod.py"
    module.write_text("def preprocessing_fn(inputs):\n    return inputs\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path, module
    for name in [n for n in sys.modules if n == "pkg" or n.startswith("pkg.")]:
        del sys.modules[name]


def test_a_file_inside_an_importable_package_gets_its_dotted_name(package_tree):
    _, module = package_tree
    assert importable_name(module) == "pkg.sub.mod"


def test_the_projects_own_module_files_are_importable():
    from beamline.registry import package_path

    components = package_path("beamline_components", "taxi")
    assert importable_name(components / "transform" / "module.py") == (
        "beamline_components.taxi.transform.module"
    )


def test_a_user_projects_module_files_import_as_components(tmp_path, monkeypatch):
    """`beamline init`'s layout: components/ at the project root, the root on sys.path."""
    module = tmp_path / "components" / "churn" / "transform" / "module.py"
    module.parent.mkdir(parents=True)
    (tmp_path / "components" / "__init__.py").write_text("")
    (tmp_path / "components" / "churn" / "__init__.py").write_text("")
    module.write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert importable_name(module) == "components.churn.transform.module"
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "components"]:
            del sys.modules[name]


def test_a_loose_file_keeps_its_module_file(tmp_path):
    loose = tmp_path / "loose_module.py"
    loose.write_text("x = 1\n")
    assert importable_name(loose) is None
    assert importable_name(tmp_path / "missing.py") is None


def test_a_name_that_resolves_to_another_file_is_not_used(package_tree, tmp_path_factory):
    _, module = package_tree
    other = tmp_path_factory.mktemp("other") / "pkg" / "sub"
    other.mkdir(parents=True)
    (other.parent / "__init__.py").write_text("")
    copy = other / "mod.py"
    copy.write_text(module.read_text())
    # `pkg.sub.mod` imports the first tree's file, so the copy has no importable name.
    assert importable_name(copy) is None


def test_ir_parameters_switch_from_module_file_to_module_path(package_tree):
    _, module = package_tree
    ir = pipeline_pb2.Pipeline()
    for node_id, value in (("Transform", str(module)), ("Trainer", "/nowhere/module.py")):
        node = ir.nodes.add().pipeline_node
        node.node_info.id = node_id
        node.parameters.parameters["module_file"].field_value.string_value = value
    assert use_module_paths(ir) == {"Transform": "pkg.sub.mod"}
    transform, trainer = (n.pipeline_node.parameters.parameters for n in ir.nodes)
    assert "module_file" not in transform
    assert transform["module_path"].field_value.string_value == "pkg.sub.mod"
    assert trainer["module_file"].field_value.string_value == "/nowhere/module.py"
    assert "module_path" not in trainer


def test_compiled_penguin_pipeline_names_modules_a_fresh_worker_can_import(tmp_path, monkeypatch):
    """What a Beam multi-processing worker does: a new interpreter, elsewhere, imports them."""
    import subprocess

    from beamline.settings import NO_USER_MODULE_WHEELS

    monkeypatch.setenv(NO_USER_MODULE_WHEELS, "1")  # as the local runner compiles

    from beamline import registry
    from beamline.metadata.connection import sqlite_config
    from beamline.runner.tfx_nodes import compile_pipeline
    from beamline.settings import PipelineSettings, RootLayout
    from beamline_pipelines import penguin

    layout = RootLayout(tmp_path)
    settings = PipelineSettings(
        pipeline_name="penguin",
        pipeline_root=str(layout.pipeline_root("penguin")),
        data_root=str(tmp_path),
        serving_dir=str(layout.serving_dir("penguin")),
        schema_path=str(registry.get("penguin").schema_path),
        metadata_connection_config=sqlite_config(layout.metadata_path),
    )
    compiled = compile_pipeline(penguin.create_pipeline(settings), "run-1")
    names = {
        node_id: node.parameters.parameters["module_path"].field_value.string_value
        for node_id, node in compiled.nodes.items()
        if "module_path" in node.parameters.parameters
    }
    assert {"Transform", "Trainer", "Tuner"} <= set(names)
    assert not any("module_file" in n.parameters.parameters for n in compiled.nodes.values())
    script = "import importlib, sys\nfor n in sys.argv[1:]: importlib.import_module(n)\n"
    subprocess.run([sys.executable, "-c", script, *set(names.values())], cwd="/", check=True)
