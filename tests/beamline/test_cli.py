import json
import subprocess
import sys

from beamline import registry
from beamline.cli import COMMANDS

HEAVY = ("tensorflow", "tfx", "apache_beam", "ml_metadata", "tensorflow_serving")


def _modules_after(args):
    code = (
        "import sys, json\n"
        "from beamline.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return proc, json.loads(proc.stderr.strip().splitlines()[-1])


def test_help_imports_no_heavy_framework():
    proc, modules = _modules_after(["--help"])
    assert "run" in proc.stdout and "pipelines" in proc.stdout
    assert not [m for m in modules if m.split(".")[0] in HEAVY]


def _command(name: str):
    import importlib

    module_name, attr = COMMANDS[name][0].split(":")
    return getattr(importlib.import_module(module_name), attr)


def test_every_command_help_is_light():
    for name in COMMANDS:
        proc, modules = _modules_after([name, "--help"])
        # The command's own help: its usage line, its summary, and every option it declares.
        assert proc.returncode == 0, f"`beamline {name} --help`: {proc.stderr}"
        assert proc.stdout.startswith(f"Usage: beamline {name} [OPTIONS]"), proc.stdout[:200]
        command = _command(name)
        summary = " ".join(proc.stdout.split())
        assert " ".join((command.help or "").split()[:6]) in summary, name
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and not getattr(param, "hidden", False):
                    assert opt in proc.stdout, f"`beamline {name} --help` does not list {opt}"
        heavy = [m for m in modules if m.split(".")[0] in HEAVY]
        assert not heavy, f"`beamline {name} --help` imported {heavy[:3]}"


def test_pipelines_lists_every_pipeline_file():
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "pipelines"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for name in registry.discover():
        assert name in proc.stdout


def test_unknown_pipeline_is_a_clear_error():
    proc = subprocess.run(
        [sys.executable, "-m", "beamline", "run", "no_such_pipeline"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "No pipeline named 'no_such_pipeline'" in proc.stderr
    assert "Traceback" not in proc.stderr
