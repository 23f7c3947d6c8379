"""What `beamline run TARGET` runs: a pipeline name, FILE.py[:FUNCTION] or module:function.

A file's function comes in two forms:
- the project form, `create_pipeline(settings)`, which receives PipelineSettings;
- a stock-TFX function that returns a `tfx.dsl.Pipeline` (as written for LocalDagRunner). Its
  parameters are filled by name: the ones Beamline owns (pipeline root, metadata path or
  connection, Beam args, serving dir) with Beamline's values, `pipeline_name` and the data root
  from Beamline, every other one from the parameter's default or a module-level variable of the
  same name (with or without a leading underscore, as TFX's examples keep `_module_file`).
  The Pipeline it returns then gets Beamline's pipeline root, MLMD connection and Beam args.
  A function without a data parameter (no parameters at all, say) names its data itself: the
  data root is its file-based ExampleGen's `input_base`, read from the function's syntax tree
  when it is written there as a string, else from the Pipeline the function returns.

Both become a *pipeline module* (`create_pipeline(settings)`, `default_data_root()`,
`__file__`), the interface `run_pipeline` takes. Parsing the target and finding the function
read the file's syntax tree only: an unchanged re-run is replayed without importing the file
(and with it TensorFlow) whenever the data location is known without running it.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from beamline.data.files import is_ignored
from beamline.errors import ConfigError

DEFAULT_FUNCTION = "create_pipeline"
# Parameters of a stock function that Beamline fills with its own values (they are overridden).
OWNED = {
    "pipeline_root": "pipeline_root",
    "metadata_path": "metadata_path",
    "metadata_connection_config": "metadata_connection_config",
    "beam_pipeline_args": "beam_pipeline_args",
    "serving_model_dir": "serving_dir",
    "serving_dir": "serving_dir",
}
DATA_PARAMS = ("data_root", "data_path", "data_dir", "input_base")
NAME_PARAMS = ("pipeline_name",)


@dataclass(frozen=True)
class Target:
    """A pipeline to run given as a file (or module) and a function in it."""

    path: Path
    function: str
    module_name: str | None  # the `module:function` form: import by this name
    project_form: bool  # create_pipeline(settings)
    pipeline_name: str
    data_default: str | None  # a literal data location the file gives, if any
    params: tuple[str, ...] = ()  # the function's parameter names

    @property
    def label(self) -> str:
        return f"{self.module_name or self.path}:{self.function}"

    @property
    def data_param(self) -> str | None:
        """The parameter Beamline passes the data root through (None: the function has none)."""
        return next((p for p in self.params if p in DATA_PARAMS), None)

    @property
    def owned_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if p in OWNED)


def is_target(text: str) -> bool:
    """True for FILE.py[:FUNCTION] and module:function; False for a pipeline name."""
    head = text.split(":", 1)[0]
    return ":" in text or head.endswith(".py") or "/" in head


def parse_target(text: str) -> Target:
    """The file and function `text` names, checked without importing the file."""
    head, _, function = text.partition(":")
    function = function or DEFAULT_FUNCTION
    module_name = None
    if head.endswith(".py") or "/" in head:
        path = Path(head).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(
                f"{head} does not exist. `beamline run FILE.py[:FUNCTION]` takes a Python file "
                "defining a function that returns a TFX pipeline (default function: "
                f"{DEFAULT_FUNCTION}); for a project pipeline give its name."
            )
    else:
        module_name = head
        path = _module_origin(head)
    tree = _parse(path)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if function not in functions:
        defined = ", ".join(sorted(functions)) or "no functions at all"
        raise ConfigError(
            f"{path} has no function {function!r} at its top level (it defines: {defined}). "
            f"Name the function that returns your pipeline: `beamline run {head}:FUNCTION` "
            f"(without :FUNCTION, Beamline looks for {DEFAULT_FUNCTION})."
        )
    node = functions[function]
    params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
    project_form = params == ["settings"]
    known = _module_strings(tree, path)
    literals = _literal_values(known, node)
    name = path.stem if project_form else _pipeline_name(literals, path)
    return Target(
        path=path,
        function=function,
        module_name=module_name,
        project_form=project_form,
        pipeline_name=name,
        data_default=None if project_form else _static_data_root(node, known, literals, params),
        params=tuple(params),
    )


def _module_origin(dotted: str) -> Path:
    try:
        spec = importlib.util.find_spec(dotted)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ConfigError(
            f"No Python module {dotted!r} is importable here. `beamline run module:function` "
            "imports the module by name (put its directory on PYTHONPATH or run from the "
            "directory above it), or give the file: `beamline run path/to/file.py:FUNCTION`."
        )
    return Path(spec.origin).resolve()


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not a readable Python file ({exc}). Fix it and run again."
        ) from exc


def _module_strings(tree: ast.Module, path: Path) -> dict[str, str]:
    """Module-level names whose string value is known without running the file: `NAME = ...`
    built from string literals, `__file__` and os.path calls (`os.path.join(
    os.path.dirname(__file__), "data")`, as TFX's examples write them)."""
    known: dict[str, str] = {"__file__": str(path)}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            value = _static_string(stmt.value, known)
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    # A later assignment the syntax tree cannot evaluate overrides the literal.
                    if value is None:
                        known.pop(t.id, None)
                    else:
                        known[t.id] = value
    return known


def _literal_values(known: dict[str, str], function: ast.FunctionDef) -> dict[str, object]:
    """Strings the file gives without running it, by parameter-like name: the module-level
    ones (`_data_root` as `data_root`), then the function's parameter defaults."""
    values: dict[str, object] = {
        name.lstrip("_").lower(): value for name, value in known.items() if name != "__file__"
    }
    args = function.args.posonlyargs + function.args.args
    defaults = [None] * (len(args) - len(function.args.defaults)) + function.args.defaults
    pairs = list(zip(args, defaults, strict=True)) + list(
        zip(function.args.kwonlyargs, function.args.kw_defaults, strict=True)
    )
    for arg, default in pairs:
        if isinstance(default, ast.Constant) and isinstance(default.value, str):
            values[arg.arg] = default.value
    return values


_OS_PATH_CALLS = {
    "join": os.path.join,
    "dirname": os.path.dirname,
    "abspath": os.path.abspath,
    "realpath": os.path.realpath,
}


def _static_string(node: ast.expr, known: dict[str, str]) -> str | None:
    """The string `node` evaluates to, if it is made only of literals, known names and
    os.path.join/dirname/abspath/realpath; else None (the file is imported instead)."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return known.get(node.id)
    if (
        isinstance(node, ast.Call)
        and not node.keywords
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _OS_PATH_CALLS
        and ast.unparse(node.func.value) in ("os.path", "path")
    ):
        args = [_static_string(a, known) for a in node.args]
        if args and all(a is not None for a in args):
            return _OS_PATH_CALLS[node.func.attr](*args)
    return None


def _static_data_root(
    function: ast.FunctionDef, known: dict[str, str], literals: dict[str, object],
    params: list[str],
) -> str | None:
    """The data root known without importing the file, if any. A function with a data
    parameter gets it from the parameter's default or the module's variable of that name; one
    without reads what its ExampleGen call is given (the module's data variable is only a
    guess then, taken when the function cannot be called before the run; a pipeline that
    reads elsewhere is refused once built)."""
    if any(p in DATA_PARAMS for p in params):
        return _first(literals, DATA_PARAMS)
    read = _example_gen_input_base(function, known)
    if read is None and any(p in OWNED for p in params):
        return _first(literals, DATA_PARAMS)
    return read


# ExampleGens whose first positional argument is input_base.
_FILE_BASED = {"CsvExampleGen", "ImportExampleGen", "FileBasedExampleGen",
               "NullAwareCsvExampleGen", "null_aware_csv_example_gen", "ParquetExampleGen"}


def _example_gen_input_base(function: ast.FunctionDef, known: dict[str, str]) -> str | None:
    """The one input_base the function's ExampleGen calls are given, when every one is a
    string the syntax tree gives (module-level names, names the function assigns once from
    such strings); None when any is not, or when they differ."""
    stores: dict[str, int] = {}
    for n in ast.walk(function):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            stores[n.id] = stores.get(n.id, 0) + 1
    args = function.args
    shadowed = set(stores) | {
        a.arg for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
        if a is not None
    }
    local = {k: v for k, v in known.items() if k not in shadowed}
    for stmt in function.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and stores[stmt.targets[0].id] == 1):
            value = _static_string(stmt.value, local)
            if value is not None:
                local[stmt.targets[0].id] = value
    reads = set()
    for call in ast.walk(function):
        if not isinstance(call, ast.Call):
            continue
        callee = ast.unparse(call.func).rsplit(".", 1)[-1]
        if not callee.replace("_", "").lower().endswith("examplegen"):
            continue
        if any(k.arg is None for k in call.keywords):
            return None  # **kwargs: input_base may be among them
        given = next((k.value for k in call.keywords if k.arg == "input_base"), None)
        if given is None and call.args and callee in _FILE_BASED:
            given = call.args[0]
        if given is None:
            continue  # a query-based ExampleGen: no input directory
        value = _static_string(given, local)
        if value is None:
            return None
        reads.add(value)
    return reads.pop() if len(reads) == 1 else None


def _first(values: dict[str, object], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if isinstance(values.get(key), str):
            return values[key]
    return None


def _pipeline_name(literals: dict[str, object], path: Path) -> str:
    name = _first(literals, NAME_PARAMS)
    return name if name else path.stem


def pipeline_module(target: Target) -> ModuleType:
    """A pipeline module around `target`, the interface run_pipeline takes. After
    create_pipeline, its RUN_NOTES hold the lines saying what Beamline supplied and overrode."""
    adapter = ModuleType(f"beamline_target_{target.path.stem}")
    adapter.__file__ = str(target.path)
    adapter.TARGET = target
    adapter.RUN_NOTES = []

    def load() -> ModuleType:
        return _import(target)

    if target.project_form:

        def create_pipeline(settings):
            return _checked(getattr(load(), target.function)(settings), target)

        def default_data_root() -> str:
            module = load()
            if not hasattr(module, "default_data_root"):
                raise ConfigError(
                    f"{target.path} defines no default_data_root(). Pass --data with the "
                    "pipeline's input, or add `def default_data_root() -> str` to the file."
                )
            return module.default_data_root()

        adapter.create_pipeline = create_pipeline
        adapter.default_data_root = default_data_root
        adapter.__getattr__ = lambda name: getattr(load(), name)
        return adapter

    # A function without a data parameter may be called before the run to learn its data;
    # the Pipeline it returned then serves the run, unless the run's arguments differ.
    built: dict[str, object] = {}

    def create_stock_pipeline(settings):
        module = load()
        function = getattr(module, target.function)
        kwargs, notes = _stock_arguments(function, module, _filled_by_beamline(settings), target)
        early = built.pop("pipeline", None)
        same = early is not None and built.pop("kwargs") == kwargs
        pipeline = early if same else _checked(function(**kwargs), target)
        if target.data_param is None:
            notes.append(_checked_reads(pipeline, target, settings.data_root))
        adapter.RUN_NOTES[:] = notes + override(pipeline, settings)
        if getattr(module, "SAMPLE_INSTANCE", None) is None:
            adapter.RUN_NOTES.append(
                f"beamline: {target.path.name} defines no SAMPLE_INSTANCE (one row of raw "
                "features), so the summary shows no predict request to try"
            )
        return pipeline

    def default_data_root() -> str:
        if target.data_default is not None:
            return target.data_default
        module = load()
        if target.data_param is None and not target.owned_params:
            function = getattr(module, target.function)
            filled = {name: target.pipeline_name for name in NAME_PARAMS}
            kwargs, _ = _stock_arguments(function, module, filled, target)
            pipeline = _checked(function(**kwargs), target)
            built.update(pipeline=pipeline, kwargs=kwargs)
            return example_gen_input(pipeline, target)[1]
        for key in DATA_PARAMS:
            value = _module_value(module, key)
            if isinstance(value, str):
                return value
        if target.data_param is None:
            raise ConfigError(
                f"{target.label} takes no data parameter, and Beamline cannot call it before "
                "the run to read its ExampleGen's input_base: it takes "
                f"{', '.join(target.owned_params)}, which Beamline fills only once the run "
                f"starts. Add a parameter data_root (or {', '.join(DATA_PARAMS[1:])}) and pass "
                "it to the ExampleGen's input_base, or a module-level _data_root naming the "
                "directory the ExampleGen reads."
            )
        raise ConfigError(
            f"{target.label} reads its data from a parameter Beamline cannot fill: no default "
            f"and no module-level {' / '.join(DATA_PARAMS)}. Pass --data with the pipeline's "
            "input directory."
        )

    adapter.create_pipeline = create_stock_pipeline
    adapter.default_data_root = default_data_root
    return adapter


def _import(target: Target) -> ModuleType:
    """The target's module. What importing it prints on stderr (TensorFlow's C++ start-up
    lines, deprecation warnings: it runs before the run's log takes over) is shown only if
    the import fails."""
    from beamline.registry import import_file

    with _stderr_held():
        if target.module_name is not None:
            return importlib.import_module(target.module_name)
        # The file's own directory first, as `python FILE.py` would have it.
        parent = str(target.path.parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        return import_file(target.path)


@contextlib.contextmanager
def _stderr_held():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, held.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _module_value(module: ModuleType, name: str):
    for candidate in (name, f"_{name}", name.upper(), f"_{name.upper()}"):
        if hasattr(module, candidate):
            return getattr(module, candidate)
    return None


def _filled_by_beamline(settings) -> dict[str, object]:
    """Beamline's value for each parameter name it fills (OWNED, NAME_PARAMS, DATA_PARAMS)."""
    from beamline.settings import RootLayout

    layout_root = Path(settings.pipeline_root).parents[1]
    owned = {
        "pipeline_root": settings.pipeline_root,
        "metadata_path": str(RootLayout(layout_root).metadata_path),
        "metadata_connection_config": settings.metadata_connection_config,
        "beam_pipeline_args": list(settings.beam_pipeline_args),
        "serving_dir": settings.serving_dir,
    }
    filled = {name: owned[key] for name, key in OWNED.items()}
    filled.update({name: settings.pipeline_name for name in NAME_PARAMS})
    filled.update({name: settings.data_root for name in DATA_PARAMS})
    return filled


def _stock_arguments(
    function, module: ModuleType, filled: dict[str, object], target: Target
) -> tuple[dict, list[str]]:
    """Keyword arguments for a stock function, by parameter name (see the module docstring):
    `filled` holds Beamline's values by name. Also the lines saying where they came from."""
    kwargs: dict[str, object] = {}
    supplied, from_module, missing = [], [], []
    for name, param in inspect.signature(function).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in filled:
            kwargs[name] = filled[name]
        elif param.default is not param.empty:
            continue
        elif _module_value(module, name) is not None:
            kwargs[name] = _module_value(module, name)
            from_module.append(name)
            continue
        else:
            missing.append(name)
            continue
        supplied.append(name)
    if missing:
        raise ConfigError(
            f"{target.label} needs {', '.join(missing)}, which Beamline cannot supply: it fills "
            f"{', '.join(sorted(set(OWNED) | set(NAME_PARAMS) | set(DATA_PARAMS)))} itself and "
            "takes any other parameter from its default or a module-level variable of the same "
            f"name (e.g. _{missing[0]} = ...). Give {missing[0]} a default or such a variable."
        )
    notes = []
    if supplied:
        notes.append(f"beamline: supplied {', '.join(supplied)} to {target.function}()")
    if from_module:
        notes.append(f"beamline: took {', '.join(from_module)} from {target.path.name}'s "
                     "module-level variables")
    return kwargs, notes


def check_data_option(target: Target) -> None:
    """--data reaches a stock function only through its data parameter."""
    if target.project_form or target.data_param is not None:
        return
    raise ConfigError(
        f"{target.label} takes no data parameter, so --data cannot be passed to it: the "
        "pipeline it returns reads the input_base its own ExampleGen is given, and Beamline "
        "takes that as the run's data. Run without --data, or add a parameter named "
        f"data_root (or {', '.join(DATA_PARAMS[1:])}) to {target.function}() and pass it to "
        "the ExampleGen's input_base; Beamline then fills it from --data."
    )


def example_gen_input(pipeline, target: Target) -> tuple[str, str]:
    """(node id, input_base) of the pipeline's file-based ExampleGen (CsvExampleGen,
    ImportExampleGen, FileBasedExampleGen, Beamline's null-aware CSV ExampleGen), the data of
    a function without a data parameter."""
    reads: dict[str, str] = {}
    others = []
    for node in _nodes(pipeline):
        base = (getattr(node, "exec_properties", None) or {}).get("input_base")
        if isinstance(base, str) and base:
            reads.setdefault(base, node.id)
        elif "ExampleGen" in type(node).__name__:
            others.append(node.id)
    if len(reads) == 1:
        [(base, node_id)] = reads.items()
        return node_id, base
    fix = (f"give {target.function}() a parameter data_root (or {', '.join(DATA_PARAMS[1:])}), "
           "pass it to the input_base of the ExampleGen whose files the run should track, and "
           "run with --data DIR")
    if reads:
        listed = "; ".join(f"{node_id} reads {base}" for base, node_id in reads.items())
        raise ConfigError(
            f"{target.label} takes no data parameter, and the pipeline it returns reads "
            f"{len(reads)} input directories ({listed}); Beamline tracks one data location per "
            f"run (fast cache, summary, lineage). To choose it, {fix}."
        )
    found = f"its {', '.join(others)} reads no input directory" if others else "no ExampleGen"
    raise ConfigError(
        f"{target.label} takes no data parameter, and the pipeline it returns has no ExampleGen "
        f"reading files ({found}; CsvExampleGen, ImportExampleGen and FileBasedExampleGen read "
        "their input_base), so Beamline cannot tell what data the run reads. `beamline run` "
        f"runs pipelines whose ExampleGen reads a directory: {fix}."
    )


def _nodes(pipeline):
    from tfx.orchestration.pipeline import Pipeline

    for node in pipeline.components:
        if isinstance(node, Pipeline):
            yield from _nodes(node)
        else:
            yield node


def _checked_reads(pipeline, target: Target, data_root: str) -> str:
    """The note saying what a function without a data parameter reads, once the data root
    Beamline took (read without running the function) is seen to be what it reads."""
    node_id, base = example_gen_input(pipeline, target)
    if Path(base).expanduser().resolve() != Path(data_root).expanduser().resolve():
        raise ConfigError(
            f"{target.label} takes no data parameter, and its {node_id} reads {base}, not "
            f"{data_root}, the data location Beamline read from {target.path.name} without "
            "running it. Beamline fingerprints, summarises and traces the data the ExampleGen "
            f"reads, so the two must agree: add a parameter data_root to {target.function}() "
            "and pass it to the ExampleGen's input_base, or make the module-level _data_root "
            "name the directory it reads."
        )
    return (f"beamline: {target.function}() takes no data parameter; its {node_id} reads "
            f"{base} (input_base)")


def _checked(pipeline, target: Target):
    from tfx.orchestration.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline):
        raise ConfigError(
            f"{target.label} returned {type(pipeline).__name__}, not a TFX pipeline. The "
            "function must return tfx.dsl.Pipeline (tfx.orchestration.pipeline.Pipeline), as "
            "LocalDagRunner().run() takes it; return the Pipeline instead of running it."
        )
    return pipeline


def override(pipeline, settings) -> list[str]:
    """Gives a stock pipeline Beamline's name, root, MLMD connection, Beam args and caching;
    returns one line per value that differed from the pipeline's own."""
    lines = []
    info = pipeline.pipeline_info
    if info.pipeline_name != settings.pipeline_name:
        lines.append(f"pipeline name {settings.pipeline_name!r} (the pipeline said "
                     f"{info.pipeline_name!r})")
        pipeline.pipeline_name = info.pipeline_name = settings.pipeline_name
        pipeline._id = settings.pipeline_name  # noqa: SLF001 - TFX keeps the id apart
    if str(info.pipeline_root) != settings.pipeline_root:
        lines.append(f"pipeline root {settings.pipeline_root} (was {info.pipeline_root})")
        info.pipeline_root = settings.pipeline_root
    if pipeline.metadata_connection_config != settings.metadata_connection_config:
        was = _describe_connection(pipeline.metadata_connection_config)
        lines.append(f"MLMD connection: Beamline's store (was {was})")
        pipeline.metadata_connection_config = settings.metadata_connection_config
    if not pipeline.enable_cache:
        # Caching is part of what Beamline gives a pipeline (and its fast cache replays only
        # runs that TFX's cache would have reused); TFX's Pipeline defaults it to off.
        lines.append("enable_cache True (was False, TFX's default)")
        pipeline.enable_cache = True
    args = list(settings.beam_pipeline_args)
    if list(pipeline.beam_pipeline_args) != args:
        was = " ".join(pipeline.beam_pipeline_args) or "none"
        lines.append(f"Beam args {' '.join(args)} (was {was})")
        pipeline._beam_pipeline_args = args  # noqa: SLF001 - no setter in TFX 1.16
    return [f"beamline: overrode {line}" for line in lines]


def _describe_connection(config) -> str:
    if config is None:
        return "none"
    if config.HasField("sqlite"):
        return f"SQLite {config.sqlite.filename_uri}"
    if config.HasField("mysql"):
        return f"MySQL {config.mysql.host}:{config.mysql.port}/{config.mysql.database}"
    return type(config).__name__


def source_digest(target: Target) -> str:
    """The target function's name, the target file and every .py file beside it and one
    level below (its module files)."""
    import hashlib

    h = hashlib.sha256()
    # Another function of the same file may build another pipeline under the same name.
    h.update(f"{target.module_name or ''}:{target.function}\0".encode())
    directory = target.path.parent
    files = {target.path, *directory.glob("*.py"), *directory.glob("*/*.py")}
    for path in sorted(files):
        if is_ignored(path.relative_to(directory)):
            continue
        h.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
