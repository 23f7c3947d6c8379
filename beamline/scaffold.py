"""`beamline init`: a new project a user owns, made from one of the bundled example pipelines,
or generated from the user's own table and label column (`--data`, `--label`).

From a template, the project gets the example's pipeline definition (rewritten to read the
project's own data sample and module files), its module files, its schema, a data sample, a test
and a README. From a table, it gets a curated schema, Transform and model modules and a pipeline
generated from what the data holds (beamline.tabular), a test and a README. Everything is
written into a temporary sibling directory first and renamed into place, so an interrupted
`init` leaves no half-written project.
"""

from __future__ import annotations

import ast
import csv
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from beamline import project as project_mod
from beamline import registry
from beamline.errors import ConfigError, DataError, did_you_mean
from beamline.tabular import render as tabular_render


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
# beamline-tfx is not on PyPI yet: {source}
dependencies = ["{requirement}"]

[project.optional-dependencies]
# The project's own tests (tests/): Beamline's wheel does not install pytest.
test = ["pytest>=7"]

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
    nodes = module.create_pipeline(settings).components
    assert {"CsvExampleGen", "Trainer", "Evaluator", "Pusher"} <= {node.id for node in nodes}
    # The module files it names exist and compile: a run meets a wrong path or a syntax error
    # in them only when Transform or the Trainer starts, minutes in.
    for path in filter(None, (node.exec_properties.get("module_file") for node in nodes)):
        compile(Path(path).read_text(encoding="utf-8"), path, "exec")


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

TFX pipelines run with Beamline. Beamline (`beamline-tfx`) is not on PyPI yet: install the
wheel built from its source (`make wheel` there writes
`dist/beamline_tfx-VERSION-py3-none-any.whl`) into a Python 3.10 environment, with the
source's lock file so the TFX stack resolves as tested:

    pip install /path/to/beamline_tfx-VERSION-py3-none-any.whl -c /path/to/requirements.lock

Then, in this directory:

    beamline pipelines              # what this project holds
    {run_name} # a full run on data/{name}/; models go to beamline_runs/serving/
    beamline serve                  # TF-Serving-compatible REST (8501) and gRPC for pushed models
    pip install pytest && pytest    # the project's own tests (the wheel has no pytest)

- `pipelines/{name}.py`: the pipeline (`create_pipeline(settings)`).
- `components/{name}/`: its module files (Transform's `preprocessing_fn`, the Trainer's `run_fn`).
- `schemas/{name}/schema.pbtxt`: the data contract ExampleValidator enforces.
- `data/{name}/`: a data sample; `beamline run {name} --data DIR` reads other data.
'''

GITIGNORE = "beamline_runs/\n__pycache__/\n.pytest_cache/\n"


def init(directory: Path, template_name: str) -> Path:
    """Writes a new project into `directory` (absent or empty); returns its absolute path."""
    directory = _new_project_directory(directory)
    template = TEMPLATES[template_name]
    bundled = project_mod.bundled()
    _write_atomically(directory, lambda staging: _write(staging, directory.name, template, bundled))
    return directory


def _new_project_directory(directory: Path) -> Path:
    directory = directory.expanduser().resolve()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        what = "is a file" if not directory.is_dir() else "is not empty"
        raise ConfigError(
            f"{directory} {what}, so `beamline init` wrote nothing there: it only creates a "
            "project in a new or empty directory, never over files of yours. Pick another "
            "directory (e.g. `beamline init my-project`), or empty this one."
        )
    return directory


def _write_atomically(directory: Path, write) -> None:
    """`write(staging)` into a sibling temporary directory, renamed to `directory` when done."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        write(staging)
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_files(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _write(root: Path, project_name: str, template: Template, bundled) -> None:
    name = template.name
    entry = registry.get(name, bundled)
    files = {
        "pyproject.toml": _pyproject(project_name),
        "README.md": README.format(project=project_name, name=name, run_name=_run_line(name)),
        ".gitignore": GITIGNORE,
        "pipelines/__init__.py": '"""The project\'s pipelines: one file per pipeline."""\n',
        f"pipelines/{name}.py": project_pipeline_source(entry.path.read_text(), name),
        "components/__init__.py": '"""Module files and custom components of the project."""\n',
        "tests/test_pipelines.py": TEST,
    }
    _write_files(root, files)
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


def _run_line(name: str) -> str:
    """`beamline run NAME` padded to the README's comment column."""
    return f"beamline run {name}".ljust(31)


def _pyproject(directory_name: str) -> str:
    requirement, source = beamline_requirement(project_mod.install_origin())
    return PYPROJECT.format(
        project=_dist_name(directory_name), requirement=requirement, source=source
    )


def beamline_requirement(direct_url: dict | None, dist_version: str | None = None
                         ) -> tuple[str, str]:
    """The project's requirement on Beamline, resolvable where this Beamline came from (the
    wheel file or checkout it was installed from, or its git URL), and a comment saying so.

    An index pin (`==VERSION`) would resolve nowhere while beamline-tfx is not on PyPI."""
    url = (direct_url or {}).get("url", "")
    vcs = (direct_url or {}).get("vcs_info")
    if vcs:
        commit = vcs.get("commit_id")
        return (f"beamline-tfx @ {vcs['vcs']}+{url}" + (f"@{commit}" if commit else ""),
                "the git repository this Beamline was installed from.")
    if url.startswith("file://"):
        kind = "wheel" if url.endswith(".whl") else "source checkout"
        return (f"beamline-tfx @ {url}",
                f"the {kind} this Beamline was installed from (change it if that moves).")
    if dist_version is None:
        try:
            dist_version = distribution("beamline-tfx").version
        except PackageNotFoundError:
            return "beamline-tfx", "install its wheel first (README.md says how)."
    return (f"beamline-tfx=={dist_version}",
            "install its wheel first (README.md says how).")


TABLE_README = """# {project}

A Beamline project generated by `{generated_by}`:
{task} of `{label}` from {data}.

    {run_name} # validates, trains, evaluates and pushes a blessed model
    beamline serve                  # TF-Serving-compatible REST (8501) and gRPC for pushed models
    pip install pytest && pytest    # the project's own tests

What was decided from the data, and where to change it:
- `pipelines/{name}.py`: the task ({reason}), the blessing bounds (a model must beat
  {baselines}), the Trainer's steps, `SAMPLE_INSTANCE`;
- `components/{name}/transform/module.py`: how each column is prepared, and the columns left out
  with the reason;
- `components/{name}/model/module.py`: the network and the Tuner's search space;
- `schemas/{name}/schema.pbtxt`: the data contract ExampleValidator enforces (its header lists
  the rules applied).
"""

TABLE_TEST = """\"\"\"The sample instance is what the served model takes: the features the
Transform module uses, never the label.\"\"\"

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", [{name!r}])
def test_sample_instance_has_the_used_features_and_no_label(name):
    pipeline = _load(ROOT / "pipelines" / f"{{name}}.py")
    transform = _load(ROOT / "components" / name / "transform" / "module.py")
    used = set(transform.NUMERIC_FEATURES) | set(transform.CATEGORICAL_FEATURES)
    assert set(pipeline.SAMPLE_INSTANCE) == used
    assert transform.LABEL_KEY not in pipeline.SAMPLE_INSTANCE
"""

# Rows a table needs for ExampleGen's 2:1 train/eval split to leave both sides something to
# learn and judge from.
MIN_LABELLED_ROWS = 30
# Column names become signature inputs and TensorFlow op names.
_FEATURE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")


def init_from_data(directory: Path, data: Path, label: str, task: str = "auto",
                   name: str | None = None) -> tuple[Path, tabular_render.Table]:
    """A project generated from the table at `data` predicting `label` (see module docstring);
    returns its path and what was decided."""
    directory = _new_project_directory(directory)
    table, frame_schema = describe_table(data, label, task, name or _pipeline_name(data))
    generated_by = (
        f"beamline init {directory.name} --data {table.data} --label {label} --task {task}"
    )

    def write(root: Path) -> None:
        n = table.name
        _write_files(root, {
            "pyproject.toml": _pyproject(directory.name),
            "README.md": TABLE_README.format(
                project=directory.name, generated_by=generated_by, task=table.decision.task,
                run_name=_run_line(n),
                label=label, data=table.data, name=n, reason=table.decision.reason,
                baselines=" and ".join(b.how for b in table.decision.baselines),
            ),
            ".gitignore": GITIGNORE,
            "pipelines/__init__.py": '"""The project\'s pipelines: one file per pipeline."""\n',
            f"pipelines/{n}.py": tabular_render.pipeline_module(table, generated_by),
            "components/__init__.py": '"""Module files of the project."""\n',
            f"components/{n}/__init__.py": "",
            f"components/{n}/transform/module.py": tabular_render.transform_module(table),
            f"components/{n}/model/module.py": tabular_render.model_module(table),
            f"schemas/{n}/schema.pbtxt": frame_schema,
            "tests/test_pipelines.py": TEST,
            "tests/test_sample_instance.py": TABLE_TEST.format(name=n),
        })

    _write_atomically(directory, write)
    return directory, table


def describe_table(data: Path, label: str, task: str, name: str):
    """The Table (decisions) and the schema text for `data`, or a DataError naming the column
    or file at fault."""
    from beamline.data.spans import find_spans, resolve_input
    from beamline.tabular.frame import read_frame
    from beamline.tabular.plan import plan_features
    from beamline.tabular.profile import profile_frame
    from beamline.tabular.schema import RULES, curated_schema, schema_text
    from beamline.tabular.task import decide_task

    given = data.expanduser().resolve()
    found = resolve_input(given)
    files, span_pattern = list(found.files), None
    if found.span is not None:
        span_pattern = found.pattern
        files = [f for span_files in find_spans(found.root, found.pattern).values()
                 for f in span_files]
    where = str(given)
    frame = read_frame(files, found.format)
    columns = [str(c) for c in frame.columns]
    if label not in columns:
        raise DataError(
            f"--label {label!r} is not a column of {where}. {did_you_mean(label, columns)}"
            f"Its columns: {', '.join(columns)}. Name the column the model should predict."
        )
    for column in columns:
        _check_column(frame[column], column, where)
    profiles = profile_frame(frame)
    decision = decide_task(profiles[label], task, where)
    labelled = frame[frame[label].notna()]
    if len(labelled) < MIN_LABELLED_ROWS:
        raise DataError(
            f"{where} has {len(labelled)} rows with a {label!r} value; Beamline needs at least "
            f"{MIN_LABELLED_ROWS} to split them 2:1 into training and evaluation rows and still "
            "judge the model. Add rows, or point --data at the full table."
        )
    plans = tuple(plan_features(profiles, label))
    used = [p.name for p in plans if p.kind != "dropped"]
    if not used:
        raise DataError(
            f"No column of {where} besides {label!r} can be a feature: "
            + "; ".join(f"{p.name}: {p.reason}" for p in plans)
            + ". Add columns that describe each row."
        )
    table = tabular_render.Table(
        name=name,
        data=str(given),
        label=label,
        rows=len(frame),
        labelled_rows=len(labelled),
        decision=decision,
        plans=plans,
        sample=_sample(frame, used, profiles),
        span_pattern=span_pattern,
    )
    schema = curated_schema(labelled.reset_index(drop=True), label)
    header = (f"# Schema of `{name}`, inferred by `beamline init` from {given} "
              f"({len(frame)} rows).\n" + RULES.format(label=label))
    return table, header + schema_text(schema)


def _check_column(column, name: str, where: str) -> None:
    if not _FEATURE_NAME.fullmatch(name):
        suggestion = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "column"
        raise DataError(
            f"Column {name!r} of {where} has a name TensorFlow cannot use as a feature (the "
            "served model takes one input per column, named by it): use letters, digits and _ "
            f"only, starting with a letter (e.g. {suggestion!r}). Rename the column in the data "
            "and run `beamline init` again."
        )
    nested = column.dropna().map(lambda v: isinstance(v, list | tuple | dict | set)).any() or (
        column.dtype.kind == "O"
        and column.dropna().map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any()
    )
    if nested:
        raise DataError(
            f"Column {name!r} of {where} holds lists or nested values; Beamline's tabular "
            "pipeline reads one value per cell. Flatten it into columns, or drop it from the data."
        )


def _sample(frame, used: list[str], profiles) -> dict:
    """The first row with a value in every used feature (else the first row, gaps left out)."""
    complete = frame[used].dropna()
    row = complete.iloc[0] if len(complete) else frame[used].iloc[0]
    sample = {}
    for column in used:
        value = row[column]
        if value is None or (not isinstance(value, str) and value != value):
            continue
        kind = profiles[column].kind
        if kind == "integer":
            sample[column] = int(value)
        elif kind == "number":
            sample[column] = float(value)
        else:
            sample[column] = value.item() if hasattr(value, "item") else value
    return sample


def _pipeline_name(data: Path) -> str:
    stem = data.expanduser().name.split(".")[0] or "table"
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_").lower() or "table"
    return cleaned if cleaned[0].isalpha() else f"t_{cleaned}"
