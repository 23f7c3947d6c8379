"""`beamline init`: a new project a user owns, made from one of the bundled example pipelines.

The project gets the example's pipeline definition (rewritten to read the project's own data
sample and module files), its module files, its schema, a data sample, a test and a README.
Everything is written into a temporary sibling directory first and renamed into place, so an
interrupted `init` leaves no half-written project.
"""

from __future__ import annotations

import ast
import csv
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from beamline import project as project_mod
from beamline import registry
from beamline.errors import ConfigError


@dataclass(frozen=True)
class Template:
    name: str
    # The data sample: (package, path inside it) of the CSV, and how many rows to keep.
    data_package: str
    data_path: tuple[str, ...]
    rows: int


TEMPLATES = {
    "penguin": Template("penguin", "palmerpenguins", ("data", "penguins.csv"), 344),
    "taxi": Template(
        "taxi", "tfx", ("examples", "chicago_taxi_pipeline", "data", "simple", "data.csv"), 2000
    ),
}

DATA_ROOT_FUNCTION = '''def default_data_root() -> str:
    """The project's data sample, data/{name}/ (`--data DIR` runs on other data)."""
    return str(project.current().root / "data" / "{name}")
'''

PYPROJECT = '''[project]
name = "{project}"
version = "0.1.0"
description = "TFX pipelines run with Beamline."
requires-python = ">=3.10,<3.11"
dependencies = ["beamline-tfx{pin}"]

# Marks this directory as a Beamline project: `beamline` commands run anywhere below it find
# these directories (paths relative to this file).
[tool.beamline]
pipelines = "pipelines"
schemas = "schemas"
components = "components"
runs = "beamline_runs"

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

TEST = '''"""The project's pipelines build; each data sample has every column its schema names."""

import csv
from pathlib import Path

import pytest

from beamline import project, registry
from beamline.settings import PipelineSettings, apply_tf_environment

ROOT = Path(__file__).resolve().parents[1]
PROJECT = project.load(ROOT)
NAMES = sorted(registry.discover(PROJECT))


@pytest.fixture(scope="module", autouse=True)
def environment():
    apply_tf_environment()
    project.activate(PROJECT)


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_builds_through_pusher(name, tmp_path):
    module = registry.load_module(name, PROJECT)
    settings = PipelineSettings(
        pipeline_name=name,
        pipeline_root=str(tmp_path / "pipelines" / name),
        data_root=module.default_data_root(),
        serving_dir=str(tmp_path / "serving" / name),
        schema_path=str(PROJECT.schema_path(name)),
        enable_tuning=False,
        components_dir=str(PROJECT.components_dir),
    )
    ids = {node.id for node in module.create_pipeline(settings).components}
    assert {"CsvExampleGen", "Trainer", "Evaluator", "Pusher"} <= ids


@pytest.mark.parametrize("name", NAMES)
def test_data_sample_has_the_schema_columns(name):
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(PROJECT.schema_path(name)))
    module = registry.load_module(name, PROJECT)
    for path in Path(module.default_data_root()).glob("*.csv"):
        with path.open(newline="") as f:
            header = set(next(csv.reader(f)))
        assert {feature.name for feature in schema.feature} <= header, path
'''

README = '''# {project}

TFX pipelines run with [Beamline](https://pypi.org/project/beamline-tfx/).

    beamline pipelines              # what this project holds
    beamline run {name}          # a full run on data/{name}/; models go to beamline_runs/serving/
    beamline serve                  # TF-Serving-compatible REST (8501) and gRPC for pushed models
    pytest                          # the project's own tests

- `pipelines/{name}.py`: the pipeline (`create_pipeline(settings)`).
- `components/{name}/`: its module files (Transform's `preprocessing_fn`, the Trainer's `run_fn`).
- `schemas/{name}/schema.pbtxt`: the data contract ExampleValidator enforces.
- `data/{name}/`: a data sample; `beamline run {name} --data DIR` reads other data.
'''

GITIGNORE = "beamline_runs/\n__pycache__/\n.pytest_cache/\n"


def init(directory: Path, template_name: str) -> Path:
    """Writes a new project into `directory` (absent or empty); returns its absolute path."""
    directory = directory.expanduser().resolve()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        what = "is a file" if not directory.is_dir() else "is not empty"
        raise ConfigError(
            f"{directory} {what}, so `beamline init` wrote nothing there: it only creates a "
            "project in a new or empty directory, never over files of yours. Pick another "
            "directory (e.g. `beamline init my-project`), or empty this one."
        )
    template = TEMPLATES[template_name]
    bundled = project_mod.bundled()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        _write(staging, directory.name, template, bundled)
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _write(root: Path, project_name: str, template: Template, bundled) -> None:
    name = template.name
    entry = registry.get(name, bundled)
    files = {
        "pyproject.toml": PYPROJECT.format(project=_dist_name(project_name), pin=_pin()),
        "README.md": README.format(project=project_name, name=name),
        ".gitignore": GITIGNORE,
        "pipelines/__init__.py": '"""The project\'s pipelines: one file per pipeline."""\n',
        f"pipelines/{name}.py": project_pipeline_source(entry.path.read_text(), name),
        "components/__init__.py": '"""Module files and custom components of the project."""\n',
        "tests/test_pipelines.py": TEST,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    shutil.copytree(
        bundled.components_dir / name,
        root / "components" / name,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    (root / "schemas" / name).mkdir(parents=True)
    shutil.copyfile(entry.schema_path, root / "schemas" / name / "schema.pbtxt")
    _write_sample(template, root / "data" / name / f"{name}.csv")


def project_pipeline_source(text: str, name: str) -> str:
    """The bundled pipeline file, reading the project's data sample and module files instead
    of the installed examples'."""
    tree = ast.parse(text)
    [function] = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "default_data_root"
    ]
    lines = text.splitlines(keepends=True)
    start = function.lineno - 1 - len(function.decorator_list)
    text = "".join(
        lines[:start] + [DATA_ROOT_FUNCTION.format(name=name)] + lines[function.end_lineno :]
    )
    replacements = {
        "from beamline.registry import package_path\n": (
            "from pathlib import Path\n\nfrom beamline import project\n"
        ),
        "    # This example's module files ship inside the installed beamline_components package.\n"
        f'    components = package_path("beamline_components", "{name}")\n': (
            f"    # The project's own module files, components/{name}/.\n"
            f'    components = Path(settings.components_dir) / "{name}"\n'
        ),
    }
    for old, new in replacements.items():
        if old not in text:
            raise RuntimeError(f"the bundled pipeline {name} no longer has {old.strip()!r}")
        text = text.replace(old, new)
    return text


def _write_sample(template: Template, out: Path) -> None:
    source = registry.package_path(template.data_package, *template.data_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with source.open(newline="", encoding="utf-8") as f_in, out.open(
        "w", newline="", encoding="utf-8"
    ) as f_out:
        reader, writer = csv.reader(f_in), csv.writer(f_out, lineterminator="\n")
        for i, row in enumerate(reader):
            if i > template.rows:
                break
            writer.writerow(row)


def _dist_name(directory_name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in directory_name).strip("-").lower()
    return cleaned or "beamline-project"


def _pin() -> str:
    try:
        return f"=={version('beamline-tfx')}"
    except PackageNotFoundError:
        return ""
