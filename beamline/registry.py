"""Finds the pipelines in `pipelines/` without importing them (no TFX at listing time).

A pipeline is a file `pipelines/<name>.py` whose module docstring's first line describes it and
which defines `create_pipeline(settings: PipelineSettings)` and `default_data_root() -> str`.
Its schema is `schemas/<name>/schema.pbtxt`; its module files live under `components/<name>/`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from beamline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PIPELINES_DIR = PROJECT_ROOT / "pipelines"
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
COMPONENTS_DIR = PROJECT_ROOT / "components"


@dataclass(frozen=True)
class PipelineEntry:
    name: str
    path: Path
    summary: str

    @property
    def schema_path(self) -> Path:
        return SCHEMAS_DIR / self.name / "schema.pbtxt"


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def discover(pipelines_dir: Path = PIPELINES_DIR) -> dict[str, PipelineEntry]:
    """All pipeline files, by name, sorted."""
    entries = {}
    for path in sorted(pipelines_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        entries[path.stem] = PipelineEntry(path.stem, path, _summary(path))
    return entries


def get(name: str) -> PipelineEntry:
    entries = discover()
    if name not in entries:
        known = ", ".join(entries) or "none"
        raise ConfigError(
            f"No pipeline named {name!r} in {PIPELINES_DIR}. Known pipelines: {known}. "
            "Run `beamline pipelines` to list them, or add pipelines/<name>.py."
        )
    return entries[name]


def package_path(package: str, *parts: str) -> Path:
    """A file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {package} package is not installed")
    return Path(spec.submodule_search_locations[0], *parts)


def load_module(name: str) -> ModuleType:
    """Imports `pipelines.<name>` (this imports TFX)."""
    get(name)
    return importlib.import_module(f"beamline_pipelines.{name}")
