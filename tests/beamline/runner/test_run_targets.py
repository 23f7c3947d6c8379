"""`beamline run FILE.py[:FUNCTION]` targets: parsed from the syntax tree, stock functions filled
by parameter name, and every wrong target refused in one paragraph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beamline.errors import ConfigError
from beamline.runner import run_targets
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
    assert run_targets.is_target(text) is expected


def test_parse_reads_name_and_form_without_importing(stock_file):
    target = run_targets.parse_target(str(stock_file))
    assert target.function == "create_pipeline" and not target.project_form
    assert target.pipeline_name == "my-pipe"  # the module-level _pipeline_name literal
    assert run_targets.parse_target(f"{stock_file}:not_a_pipeline").project_form
    assert run_targets.parse_target(f"{stock_file}:not_a_pipeline").pipeline_name == "stock"


def test_missing_function_is_one_paragraph_naming_what_exists(stock_file):
    with pytest.raises(ConfigError) as err:
        run_targets.parse_target(f"{stock_file}:make_pipeline")
    text = str(err.value)
    assert f"{stock_file} has no function 'make_pipeline'" in text
    assert "create_pipeline, not_a_pipeline" in text and "\n" not in text


def test_missing_file_and_module(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        run_targets.parse_target(str(tmp_path / "nope.py"))
    with pytest.raises(ConfigError, match="No Python module 'no_such_mod_xyz'"):
        run_targets.parse_target("no_such_mod_xyz:create")


def test_stock_arguments_by_name(stock_file, tmp_path):
    target = run_targets.parse_target(str(stock_file))
    module = run_targets._import(target)
    settings = PipelineSettings(
        pipeline_name="my-pipe",
        pipeline_root=str(tmp_path / "root" / "pipelines" / "my-pipe"),
        data_root="/data",
        serving_dir="/serving",
        schema_path="",
        beam_pipeline_args=("--runner=DirectRunner",),
    )
    filled = run_targets._filled_by_beamline(settings)
    kwargs, notes = run_targets._stock_arguments(module.create_pipeline, module, filled, target)
    assert kwargs == {
        "pipeline_name": "my-pipe",
        "pipeline_root": settings.pipeline_root,
        "data_root": "/data",
        "module_file": "/m/trainer.py",  # from the module-level _module_file
        "metadata_path": str(tmp_path / "root" / "metadata.sqlite"),
        "beam_pipeline_args": ["--runner=DirectRunner"],
    }  # enable_cache keeps its default
    assert any("module_file" in line and "module-level" in line for line in notes)
    run_targets.check_data_option(target)  # data_root is a parameter: --data goes there


def test_a_parameter_beamline_cannot_fill(tmp_path):
    path = tmp_path / "needs.py"
    path.write_text("def create_pipeline(pipeline_root, special_knob):\n    pass\n")
    target = run_targets.parse_target(str(path))
    module = run_targets._import(target)
    settings = PipelineSettings("needs", str(tmp_path / "r" / "p" / "needs"), "/d", "/s", "")
    filled = run_targets._filled_by_beamline(settings)
    with pytest.raises(ConfigError, match="needs special_knob, which Beamline cannot supply"):
        run_targets._stock_arguments(module.create_pipeline, module, filled, target)


def test_a_data_parameter_without_a_value_still_asks_for_data(tmp_path):
    path = tmp_path / "bare.py"
    path.write_text("def create_pipeline(pipeline_root, data_root):\n    pass\n")
    module = run_targets.pipeline_module(run_targets.parse_target(str(path)))
    with pytest.raises(ConfigError, match="reads its data from a parameter Beamline cannot fill"):
        module.default_data_root()


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
    target = run_targets.parse_target(str(path))
    assert target.data_default == str(tmp_path / "data" / "penguins")
    module = run_targets.pipeline_module(target)
    assert module.default_data_root() == str(tmp_path / "data" / "penguins")  # no import


# A zero-parameter function as a new user writes it: the paths are built inside, in a way the
# syntax tree cannot evaluate (pathlib), so Beamline calls it to learn the data location.
ZERO = '''
from pathlib import Path

from tfx import v1 as tfx

CALLS = []


def make():
    CALLS.append(1)
    here = Path(__file__).resolve().parent
    example_gen = tfx.components.CsvExampleGen(input_base=str(here / "data"))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    return tfx.dsl.Pipeline(
        pipeline_name="zero", pipeline_root=str(here / "tfx_root"),
        components=[example_gen, statistics_gen],
    )


def from_bigquery():
    from tfx.extensions.google_cloud_big_query.example_gen.component import BigQueryExampleGen

    example_gen = BigQueryExampleGen(query="SELECT * FROM `p.d.t`")
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    return tfx.dsl.Pipeline(pipeline_name="bq", pipeline_root="/unused",
                            components=[example_gen, statistics_gen])


def two_inputs():
    gens = [tfx.components.CsvExampleGen(input_base=str(Path(__file__).parent / d)).with_id(d)
            for d in ("a", "b")]
    return tfx.dsl.Pipeline(pipeline_name="two", pipeline_root="/unused", components=gens)


def with_root(pipeline_root):
    example_gen = tfx.components.CsvExampleGen(input_base=str(Path(__file__).parent / "other"))
    return tfx.dsl.Pipeline(pipeline_name="zero", pipeline_root=pipeline_root,
                            components=[example_gen])
'''


def _settings(tmp_path: Path, name: str, data_root: str) -> PipelineSettings:
    return PipelineSettings(
        pipeline_name=name,
        pipeline_root=str(tmp_path / "root" / "pipelines" / name),
        data_root=data_root,
        serving_dir=str(tmp_path / "root" / "serving" / name),
        schema_path="",
        beam_pipeline_args=("--runner=DirectRunner",),
    )


@pytest.fixture
def zero_file(tmp_path) -> Path:
    path = tmp_path / "zero.py"
    path.write_text(ZERO)
    return path


def test_a_zero_parameter_function_reads_its_data_from_its_example_gen(zero_file, tmp_path):
    target = run_targets.parse_target(f"{zero_file}:make")
    assert target.params == () and target.data_param is None
    assert target.data_default is None  # pathlib: not readable from the syntax tree
    module = run_targets.pipeline_module(target)
    assert module.default_data_root() == str(tmp_path / "data")
    settings = _settings(tmp_path, "zero", str(tmp_path / "data"))
    pipeline = module.create_pipeline(settings)
    # Called once: the Pipeline built to learn the data location is the one that runs.
    assert run_targets._import(target).CALLS == [1]
    assert pipeline.pipeline_info.pipeline_root == settings.pipeline_root
    assert (f"beamline: make() takes no data parameter; its CsvExampleGen reads "
            f"{tmp_path / 'data'} (input_base)") in module.RUN_NOTES
    assert not any("supplied" in line for line in module.RUN_NOTES)  # nothing to supply


def test_a_pipeline_without_a_file_based_example_gen_is_refused_by_name(zero_file):
    module = run_targets.pipeline_module(run_targets.parse_target(f"{zero_file}:from_bigquery"))
    with pytest.raises(ConfigError) as err:
        module.default_data_root()
    text = str(err.value)
    assert text.startswith(f"{zero_file}:from_bigquery takes no data parameter")
    assert "its BigQueryExampleGen reads no input directory" in text
    assert "give from_bigquery() a parameter data_root" in text and "\n" not in text


def test_two_input_directories_are_refused_naming_both(zero_file, tmp_path):
    module = run_targets.pipeline_module(run_targets.parse_target(f"{zero_file}:two_inputs"))
    with pytest.raises(ConfigError) as err:
        module.default_data_root()
    assert f"a reads {tmp_path / 'a'}; b reads {tmp_path / 'b'}" in str(err.value)


def test_no_data_parameter_but_owned_ones_cannot_be_called_early(zero_file):
    module = run_targets.pipeline_module(run_targets.parse_target(f"{zero_file}:with_root"))
    with pytest.raises(ConfigError, match="it takes pipeline_root, which Beamline fills only"):
        module.default_data_root()


def test_a_guessed_data_location_must_be_what_the_example_gen_reads(zero_file, tmp_path):
    """With pipeline_root Beamline can only call the function once the run starts: the
    module's _data_root is taken until then, and the built pipeline must agree with it."""
    zero_file.write_text(ZERO + '_data_root = "/guessed"\n')
    target = run_targets.parse_target(f"{zero_file}:with_root")
    assert target.data_default == "/guessed"
    module = run_targets.pipeline_module(target)
    with pytest.raises(ConfigError) as err:
        module.create_pipeline(_settings(tmp_path, "zero", "/guessed"))
    assert f"its CsvExampleGen reads {tmp_path / 'other'}, not /guessed" in str(err.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    return CsvExampleGen(input_base=_data_root)", "HERE/data"),
        ("    d = os.path.join(_here, 'local')\n    return FileBasedExampleGen(input_base=d)",
         "HERE/local"),
        ("    return null_aware_csv_example_gen(os.path.join(_here, 'pos'))", "HERE/pos"),
        ("    return NullAwareCsvExampleGen(os.path.join(_here, 'cls'))", "HERE/cls"),
        ("    return ParquetExampleGen(input_base=os.path.join(_here, 'pq'))", "HERE/pq"),
        # Reassigned in the function: unknown without running it.
        ("    _data_root = pick()\n    return CsvExampleGen(input_base=_data_root)", None),
        ("    return CsvExampleGen(**config)", None),
        ("    return BigQueryExampleGen('SELECT 1')", None),
        ("    a = CsvExampleGen(input_base='/x')\n    return CsvExampleGen(input_base='/y')",
         None),
    ],
)
def test_a_zero_parameter_functions_input_base_read_from_the_syntax_tree(
    tmp_path, body, expected
):
    path = tmp_path / "static.py"
    path.write_text(
        "import os\nimport tensorflow_not_importable_here\n"
        "_here = os.path.dirname(os.path.abspath(__file__))\n"
        "_data_root = os.path.join(_here, 'data')\n"
        f"def create_pipeline():\n{body}\n"
    )
    target = run_targets.parse_target(str(path))
    expected = expected and expected.replace("HERE", str(tmp_path))
    assert target.data_default == expected
    if expected:
        assert run_targets.pipeline_module(target).default_data_root() == expected  # no import


def test_a_module_level_name_reassigned_at_run_time_is_not_a_literal(tmp_path):
    path = tmp_path / "env.py"
    path.write_text(
        "import os\n_data_root = '/literal'\n_data_root = os.environ['DATA']\n"
        "def create_pipeline(data_root):\n    pass\n"
    )
    assert run_targets.parse_target(str(path)).data_default is None


def test_data_option_is_refused_for_a_function_without_a_data_parameter(zero_file, tmp_path):
    """Through the CLI, before the file (and TensorFlow) is imported: one paragraph, exit 2."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("x,y\n1,2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "run", f"{zero_file}:make",
         "--root", str(tmp_path / "root"), "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (f"{zero_file}:make takes no data parameter, so --data cannot be passed to it"
            in proc.stderr)
    assert "add a parameter named data_root" in proc.stderr and "Traceback" not in proc.stderr


def test_each_function_of_a_file_has_its_own_source_digest(zero_file):
    digests = {run_targets.source_digest(run_targets.parse_target(f"{zero_file}:{f}"))
               for f in ("make", "two_inputs")}
    assert len(digests) == 2
