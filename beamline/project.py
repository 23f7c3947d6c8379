"""Where a Beamline project lives: its pipelines, schemas, module files and run root.

A project is a directory whose `pyproject.toml` holds a `[tool.beamline]` table. Its keys
(all optional, paths relative to the project root) say where things are:

    [tool.beamline]
    pipelines = "pipelines"      # pipelines/<name>.py, each with create_pipeline(settings)
    schemas = "schemas"          # schemas/<name>/schema.pbtxt
    components = "components"    # module files and custom components
    runs = "beamline_runs"       # the default run root (--root / $BEAMLINE_ROOT override it)

`current()` picks the project every command works in: `--project DIR` (which the CLI puts in
$BEAMLINE_PROJECT, so child processes and Beam workers see it too), else the nearest marked
`pyproject.toml` walking up from the working directory, else the examples bundled with Beamline
(the installed `beamline_pipelines` and `beamline_components`). No TensorFlow, TFX or Beam here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from beamline.errors import ConfigError

PROJECT_ENV = "BEAMLINE_PROJECT"
PYPROJECT = "pyproject.toml"
# Keys of [tool.beamline] and their defaults, relative to the project root.
LAYOUT_DEFAULTS = {
    "pipelines": "pipelines",
    "schemas": "schemas",
    "components": "components",
    "runs": "beamline_runs",
}
# Installed import names of the examples that ship with Beamline.
BUNDLED_PIPELINES = "beamline_pipelines"
BUNDLED_SCHEMAS = "beamline_pipelines.schemas"
BUNDLED_COMPONENTS = "beamline_components"


@dataclass(frozen=True)
class Project:
    """A project's directories, absolute. `bundled`: Beamline's own installed examples."""

    root: Path
    pipelines_dir: Path
    schemas_dir: Path
    components_dir: Path
    runs_root: Path
    bundled: bool = False

    def schema_path(self, pipeline: str) -> Path:
        return self.schemas_dir / pipeline / "schema.pbtxt"

    def describe(self) -> str:
        """One line saying which project a command works in."""
        if self.bundled:
            return (
                f"no Beamline project here (no pyproject.toml with [tool.beamline] in {Path.cwd()} "
                f"or above): using the examples bundled with Beamline ({self.pipelines_dir}); "
                "`beamline init DIR` creates a project of your own"
            )
        return f"project {self.root}"


def current() -> Project:
    """The project of this process: $BEAMLINE_PROJECT, the nearest marked pyproject.toml
    above the working directory, or the bundled examples."""
    explicit = os.environ.get(PROJECT_ENV)
    if explicit:
        return load(Path(explicit), source=f"${PROJECT_ENV}")
    found = find(Path.cwd())
    return found if found is not None else bundled()


def find(start: Path) -> Project | None:
    """The project of the nearest `pyproject.toml` with [tool.beamline] at or above `start`."""
    start = start.resolve()
    for directory in (start, *start.parents):
        pyproject = directory / PYPROJECT
        if pyproject.is_file():
            table = _beamline_table(pyproject)
            if table is not None:
                return _from_table(directory, table, pyproject)
    return None


def load(directory: Path, source: str = "--project") -> Project:
    """The project at `directory`, which must hold a pyproject.toml with [tool.beamline]."""
    directory = directory.expanduser().resolve()
    pyproject = directory / PYPROJECT
    table = _beamline_table(pyproject) if pyproject.is_file() else None
    if table is None:
        what = "has no pyproject.toml" if not pyproject.is_file() else (
            f"has a {PYPROJECT} without a [tool.beamline] table"
        )
        raise ConfigError(
            f"{source} {directory} is not a Beamline project: the directory {what}. Point "
            f"{source} at a project's root (the directory whose {PYPROJECT} has a "
            "[tool.beamline] table), add that table to your pyproject.toml, or create a project "
            "with `beamline init DIR`."
        )
    return _from_table(directory, table, pyproject)


def bundled() -> Project:
    """The examples installed with Beamline; runs go to ./beamline_runs."""
    pipelines = package_dir(BUNDLED_PIPELINES)
    schemas = package_dir(BUNDLED_SCHEMAS) if pipelines is not None else None
    components = package_dir(BUNDLED_COMPONENTS)
    if pipelines is None or components is None:
        raise ConfigError(
            "Beamline's bundled examples (beamline_pipelines, beamline_components) are not "
            "installed, and there is no Beamline project here. Run inside a project (a "
            "pyproject.toml with [tool.beamline]), pass --project DIR, or reinstall beamline-tfx."
        )
    return Project(
        root=pipelines.parent,
        pipelines_dir=pipelines,
        schemas_dir=schemas if schemas is not None else pipelines / "schemas",
        components_dir=components,
        runs_root=Path.cwd().resolve() / LAYOUT_DEFAULTS["runs"],
        bundled=True,
    )


def activate(project: Project) -> None:
    """Makes a project's own packages (`components.*`, `pipelines.*`) importable here and in
    every child process (Beam workers, TFX executors): its root on sys.path and PYTHONPATH."""
    if project.bundled:
        return
    root = str(project.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *parts])


def _from_table(directory: Path, table: dict, pyproject: Path) -> Project:
    paths = {}
    for key, default in LAYOUT_DEFAULTS.items():
        value = table.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"{pyproject}: [tool.beamline] {key} = {value!r} is not a path. Give a directory "
                f"relative to the project root, e.g. {key} = \"{default}\"."
            )
        paths[key] = (directory / value).resolve()
    return Project(
        root=directory,
        pipelines_dir=paths["pipelines"],
        schemas_dir=paths["schemas"],
        components_dir=paths["components"],
        runs_root=paths["runs"],
    )


def _beamline_table(pyproject: Path) -> dict | None:
    import tomli

    try:
        data = tomli.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomli.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{pyproject} cannot be read as TOML ({exc}). Fix the file, or run from a directory "
            "outside it (or pass --project DIR)."
        ) from exc
    table = data.get("tool", {}).get("beamline")
    return table if isinstance(table, dict) else None


def package_dir(name: str) -> Path | None:
    """An installed package's directory, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def install_origin() -> dict | None:
    """How Beamline was installed here (PEP 610's direct_url.json): the wheel file, checkout or
    git URL it came from; None when installed from an index or not installed at all."""
    import json
    from importlib.metadata import distributions

    # A checkout's own beamline_tfx.egg-info (found first when run from the checkout) has no
    # direct_url.json; the installed distribution's has.
    for dist in distributions(name="beamline-tfx"):
        text = dist.read_text("direct_url.json")
        if text:
            return json.loads(text)
    return None


def docs_index() -> Path | None:
    """docs/index.md of the source Beamline runs from, or of the checkout whose wheel (in its
    dist/) or directory it was installed from; None when none of them is on this machine."""
    return next((index for index in docs_candidates(Path(__file__).resolve().parents[1],
                                                    install_origin()) if index.is_file()), None)


def docs_candidates(source: Path, origin: dict | None) -> list[Path]:
    """Where docs/index.md may be: beside `source` (the directory holding the beamline package),
    then in the checkout `origin` (a direct_url.json) names: a wheel's dist/ parent, or the
    directory itself."""
    from urllib.parse import unquote, urlparse

    places = [source]
    url = (origin or {}).get("url", "")
    if url.startswith("file://"):
        path = Path(unquote(urlparse(url).path))
        places.append(path.parent.parent if path.suffix == ".whl" else path)
    return [place / "docs" / "index.md" for place in places]
