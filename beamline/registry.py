"""Finds a project's pipelines without importing them (no TFX at listing time).

A pipeline is a file `<pipelines dir>/<name>.py` whose module docstring's first line describes
it and which defines `create_pipeline(settings: PipelineSettings)` and `default_data_root()`.
Its schema is `<schemas dir>/<name>/schema.pbtxt`; its module files live in the components
directory. Which directories: the current project's (`beamline.project.current()`).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from beamline import project as project_mod
from beamline.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class PipelineEntry:
    name: str
    path: Path
    summary: str
    project: project_mod.Project

    @property
    def schema_path(self) -> Path:
        return self.project.schema_path(self.name)


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def discover(project: project_mod.Project | None = None) -> dict[str, PipelineEntry]:
    """All pipeline files of `project` (default: the current one), by name, sorted."""
    project = project or project_mod.current()
    entries = {}
    for path in sorted(project.pipelines_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        entries[path.stem] = PipelineEntry(path.stem, path, _summary(path), project)
    return entries


def get(name: str, project: project_mod.Project | None = None) -> PipelineEntry:
    project = project or project_mod.current()
    entries = discover(project)
    if name not in entries:
        known = ", ".join(entries) or "none"
        where = f"{project.pipelines_dir} ({project.describe()})"
        raise ConfigError(
            f"No pipeline named {name!r} in {where}. {did_you_mean(name, entries)}Known "
            f"pipelines: {known}. Run `beamline "
            f"pipelines` to list them, add {project.pipelines_dir.name}/{name}.py, or run a "
            "file directly with `beamline run FILE.py[:FUNCTION]`."
        )
    return entries[name]


def package_path(package: str, *parts: str) -> Path:
    """A file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {package} package is not installed")
    return Path(spec.submodule_search_locations[0], *parts)


def load_module(name: str, project: project_mod.Project | None = None) -> ModuleType:
    """Imports the pipeline file `name` of the project (this imports TFX)."""
    entry = get(name, project)
    project_mod.activate(entry.project)
    return import_file(entry.path)


def import_file(path: Path) -> ModuleType:
    """Imports a Python file by the package name that resolves to it (`beamline_pipelines.x`
    installed, `pipelines.x` from a project root on sys.path), else by its path alone."""
    path = path.resolve()
    package_dir = path.parent
    if (package_dir / "__init__.py").is_file():
        for package in (f"beamline_{package_dir.name}", package_dir.name):
            dotted = f"{package}.{path.stem}"
            if module_origin(dotted) == path:
                return importlib.import_module(dotted)
    # A name stable across processes (pickles made in one must load in another).
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    dotted = f"_beamline_file_{tag}_{path.stem}"
    if dotted in sys.modules:
        return sys.modules[dotted]
    spec = importlib.util.spec_from_file_location(dotted, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[dotted] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[dotted]
        raise
    return module


def module_origin(dotted: str) -> Path | None:
    """The file that importing `dotted` would load (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec(dotted)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).resolve()
