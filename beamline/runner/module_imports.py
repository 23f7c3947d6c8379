"""Module files imported by their package name, so Beam worker processes can import them too.

With module wheels off (NO_USER_MODULE_WHEELS), TFX loads a `module_file` under a made-up name
(`user_module_0`, ...). Anything Beam pickles from such a module refers to that name, which no
multi-processing or distributed worker can import: Transform then fails with "No module named
'user_module_0'". A module file that lives inside an importable package (the project's
`components/`, installed with the project) is given to TFX as `module_path`, its dotted name,
which every process that has the project installed can import. Other files are left alone.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from beamline.registry import module_origin

MODULE_FILE_KEY = "module_file"
MODULE_PATH_KEY = "module_path"
# How many directories above a module file may belong to its package name.
MAX_PACKAGE_DEPTH = 8


def importable_name(module_file: str | Path) -> str | None:
    """The dotted name that imports exactly `module_file` in this environment, or None.

    Candidates are the file's dotted paths that start at a regular package (a directory with
    __init__.py; deeper directories may be namespace packages), longest first. One counts only
    if the import system resolves it to this very file, which holds for packages on sys.path and
    for editable installs' import hooks alike.
    """
    path = Path(module_file).resolve()
    if path.suffix != ".py" or not path.is_file() or not path.stem.isidentifier():
        return None
    dirs = []
    parent = path.parent
    while parent.name.isidentifier() and len(dirs) < MAX_PACKAGE_DEPTH:
        dirs.insert(0, parent)
        parent = parent.parent
    for start, top in enumerate(dirs):
        if not (top / "__init__.py").is_file():
            continue
        rest = [d.name for d in dirs[start + 1 :]] + [path.stem]
        for top_name in (*_import_names_of(top), top.name):
            name = ".".join([top_name, *rest])
            if module_origin(name) == path:
                return name
    return None


def _import_names_of(directory: Path) -> list[str]:
    """Imported top-level packages whose directory is `directory`, under another name.

    The project maps `components/` to `beamline_components` (pyproject package-dir): a worker
    process imports that name, while the directory's own name resolves only from the checkout.
    """
    names = []
    # The repo's own convention, found without importing: `components/` -> `beamline_components`.
    conventional = f"beamline_{directory.name}"
    spec = importlib.util.find_spec(conventional) if conventional.isidentifier() else None
    if spec is not None and any(
        Path(entry).resolve() == directory for entry in spec.submodule_search_locations or ()
    ):
        names.append(conventional)
    for name, module in list(sys.modules.items()):
        if name == conventional:
            continue
        if "." in name or name == directory.name:
            continue
        for entry in getattr(module, "__path__", None) or ():
            if Path(entry).resolve() == directory:
                names.append(name)
    return names


def use_module_paths(ir) -> dict[str, str]:
    """Rewrites importable `module_file` parameters of the compiled IR to `module_path`.

    Returns {node id: dotted name} for the nodes it changed.
    """
    changed = {}
    for node in ir.nodes:
        params = node.pipeline_node.parameters.parameters
        if MODULE_FILE_KEY not in params:
            continue
        value = params[MODULE_FILE_KEY].field_value.string_value
        name = importable_name(value) if value else None
        if name is None:
            continue
        del params[MODULE_FILE_KEY]
        params[MODULE_PATH_KEY].field_value.string_value = name
        changed[node.pipeline_node.node_info.id] = name
    return changed
