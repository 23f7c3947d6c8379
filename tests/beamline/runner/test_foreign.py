"""`beamline run FILE.py[:FUNCTION]` targets: parsed from the syntax tree, stock functions filled
by parameter name, and every wrong target refused in one paragraph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beamline.errors import ConfigError
from beamline.runner import foreign
from beamline.settings import PipelineSettings

STOCK = '''
import os
_pipeline_name = "my-pipe"
_module_file = os.path.join("/m", "trainer.py")

def create_pipeline(pipeline_name, pipeline_root, data_root, module_file, metadata_path,
                    beam_pipeline_args=None, enable_cache=True):
    return dict(pipeline_name=pipeline_name, pipeline_root=pipeline_root, data_root=data_root,
                module_file=module_file, metadata_path=metadata_path,
                beam_pipeline_args=beam_pipeline_args, enable_cache=enable_cache)

def not_a_pipeline(settings):
    return 42
'''


@pytest.fixture
def stock_file(tmp_path) -> Path:
    path = tmp_path / "stock.py"
    path.write_text(STOCK)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("penguin", False), ("x.py", True), ("dir/x", True), ("pkg.mod:fn", True), ("x.py:f", True)],
)
def test_what_is_a_target(text, expected):
    assert foreign.is_target(text) is expected


def test_parse_reads_name_and_form_without_importing(stock_file):
    target = foreign.parse_target(str(stock_file))
    assert target.function == "create_pipeline" and not target.project_form
    assert target.pipeline_name == "my-pipe"  # the module-level _pipeline_name literal
    assert foreign.parse_target(f"{stock_file}:not_a_pipeline").project_form
    assert foreign.parse_target(f"{stock_file}:not_a_pipeline").pipeline_name == "stock"


def test_missing_function_is_one_paragraph_naming_what_exists(stock_file):
    with pytest.raises(ConfigError) as err:
        foreign.parse_target(f"{stock_file}:make_pipeline")
    text = str(err.value)
    assert f"{stock_file} has no function 'make_pipeline'" in text
    assert "create_pipeline, not_a_pipeline" in text and "\n" not in text


def test_missing_file_and_module(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        foreign.parse_target(str(tmp_path / "nope.py"))
    with pytest.raises(ConfigError, match="No Python module 'no_such_mod_xyz'"):
        foreign.parse_target("no_such_mod_xyz:create")


def test_stock_arguments_by_name(stock_file, tmp_path):
    target = foreign.parse_target(str(stock_file))
    module = foreign._import(target)
    settings = PipelineSettings(
        pipeline_name="my-pipe",
        pipeline_root=str(tmp_path / "root" / "pipelines" / "my-pipe"),
        data_root="/data",
        serving_dir="/serving",
        schema_path="",
        beam_pipeline_args=("--runner=DirectRunner",),
    )
    kwargs, notes = foreign._stock_arguments(module.create_pipeline, module, settings, target)
    assert kwargs == {
        "pipeline_name": "my-pipe",
        "pipeline_root": settings.pipeline_root,
        "data_root": "/data",
        "module_file": "/m/trainer.py",  # from the module-level _module_file
        "metadata_path": str(tmp_path / "root" / "metadata.sqlite"),
        "beam_pipeline_args": ["--runner=DirectRunner"],
    }  # enable_cache keeps its default
    assert any("module_file" in line and "module-level" in line for line in notes)


def test_a_parameter_beamline_cannot_fill(tmp_path):
    path = tmp_path / "needs.py"
    path.write_text("def create_pipeline(pipeline_root, special_knob):\n    pass\n")
    target = foreign.parse_target(str(path))
    module = foreign._import(target)
    settings = PipelineSettings("needs", str(tmp_path / "r" / "p" / "needs"), "/d", "/s", "")
    with pytest.raises(ConfigError, match="needs special_knob, which Beamline cannot supply"):
        foreign._stock_arguments(module.create_pipeline, module, settings, target)


def test_function_returning_something_else_is_refused(stock_file, tmp_path):
    """Through the CLI: one paragraph, exit 2, no traceback, nothing recorded as a run."""
    root = tmp_path / "root"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("x,y\n1,2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "run", f"{stock_file}:not_a_pipeline",
         "--root", str(root), "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "returned int, not a TFX pipeline" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_function(stock_file, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "run", f"{stock_file}:nope"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "has no function 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_data_location_read_without_importing_tfx_style_paths(tmp_path):
    """TFX's examples build paths from __file__ with os.path: read from the syntax tree, so an
    unchanged re-run is replayed without importing the file (and TensorFlow)."""
    path = tmp_path / "pipe.py"
    path.write_text(
        "import os\nimport tensorflow_not_importable_here\n"
        "_here = os.path.dirname(os.path.abspath(__file__))\n"
        "_data_root = os.path.join(_here, 'data', 'penguins')\n"
        "def create_pipeline(pipeline_name, data_root):\n    pass\n"
    )
    target = foreign.parse_target(str(path))
    assert target.data_default == str(tmp_path / "data" / "penguins")
    module = foreign.pipeline_module(target)
    assert module.default_data_root() == str(tmp_path / "data" / "penguins")  # no import
