import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from beamline import registry
from beamline.beam import AUTO, profile_names
from beamline.cli import COMMANDS, cli
from beamline.commands.options import new_or_deprecated
from beamline.errors import ConfigError, RunInProgress, ThresholdCrossed

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


# --- one grammar across commands ----------------------------------------------------------


def _beamline(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "beamline", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def _command(name):
    return cli.get_command(click.Context(cli), name)


def _parse(name, args):
    """The click context `beamline NAME ARGS` parses to (raises click.UsageError if it does not)."""
    return _command(name).make_context(name, list(args), parent=click.Context(cli))


def test_no_arguments_prints_an_overview_of_the_first_commands_whose_examples_parse():
    """`beamline` alone: starting (init, run, serve) and what comes after a run (runs, why,
    lineage, ui), each example a command line that parses; where the docs are, for a checkout
    and for a wheel."""
    proc = _beamline()
    assert proc.returncode == 0, proc.stderr
    examples = [line.split(None, 1)[1] for line in proc.stdout.splitlines()
                if line.startswith("  beamline ")]
    names = []
    for example in examples:
        name, *args = shlex.split(example.split("  ")[0])
        _parse(name, args)
        names.append(name)
    assert {"init", "pipelines", "run", "serve", "runs", "why", "lineage", "ui"} <= set(names)
    assert "--help" in proc.stdout
    # From this checkout: its own docs, by a path that exists (a wheel's: tests/packaging).
    [docs] = [line for line in proc.stdout.splitlines() if line.startswith("Docs: ")]
    assert Path(docs.split()[1]) == Path(__file__).resolve().parents[2] / "docs" / "index.md"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_page_ends_with_an_example_that_parses(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    head, _, example = result.output.rpartition("Example:")
    assert head and "Options:" in head, "the example comes after the options"
    first = next(line.strip() for line in example.splitlines() if line.strip())
    assert first.startswith(f"beamline {name}")
    _parse(name, shlex.split(first)[2:])


def test_no_tuning_is_the_deprecated_spelling_of_no_tune(capsys):
    assert "no_tune" in {p.name for p in _command("run").params}
    current = _parse("compile", ["penguin", "--target", "airflow", "--out", "d.py", "--no-tune"])
    assert capsys.readouterr().err == ""
    old = _parse("compile", ["penguin", "--target", "airflow", "--out", "d.py", "--no-tuning"])
    assert "warning: --no-tuning is deprecated; use --no-tune." in capsys.readouterr().err
    assert new_or_deprecated(current.params["no_tune"], current.params["no_tune_deprecated"])
    assert new_or_deprecated(old.params["no_tune"], old.params["no_tune_deprecated"])
    assert "--no-tuning" not in CliRunner().invoke(cli, ["compile", "--help"]).output


def test_the_beam_profile_is_one_checked_choice_everywhere(capsys):
    with_beam = [n for n in COMMANDS if "beam_profile" in {p.name for p in _command(n).params}]
    assert set(with_beam) == {"run", "compile", "monitor", "loop", "reproduce"}
    for name in with_beam:
        [option] = [p for p in _command(name).params if p.name == "beam_profile"]
        assert option.opts == ["--beam"]
        assert list(option.type.choices) == profile_names(), name
    with pytest.raises(click.BadParameter, match="direct-multi"):
        _parse("monitor", ["penguin", "--requests", "logs", "--beam", "in-memory"])
    ctx = _parse("monitor", ["penguin", "--requests", "logs", "--beam-profile", "direct"])
    assert "warning: --beam-profile is deprecated; use --beam." in capsys.readouterr().err
    assert new_or_deprecated(ctx.params["beam_profile"], ctx.params["beam_deprecated"], AUTO) == (
        "direct"
    )


def test_json_is_a_flag_that_means_stdout_on_every_command_with_output():
    with_json = {n for n in COMMANDS if "as_json" in {p.name for p in _command(n).params}}
    assert with_json == {
        "runs", "lineage", "diff", "why", "report", "monitor", "gc", "pipelines", "models",
        "labels", "experiments", "reproduce",
    }
    for name in with_json:
        [option] = [p for p in _command(name).params if p.name == "as_json"]
        assert option.is_flag and option.opts == ["--json"], name
    ctx = _parse("monitor", ["penguin", "--requests", "logs", "--json", "--json-out", "r.json"])
    assert ctx.params["as_json"] and str(ctx.params["json_path"]) == "r.json"


def test_pipelines_json_lists_every_pipeline():
    proc = _beamline("pipelines", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == list(registry.discover())
    assert all(r["summary"] and r["path"].endswith(f"{r['name']}.py") for r in rows)


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--rest_api_port=9001", "--model_name=m"], {"rest_api_port": 9001, "model_name": "m"}),
        (["--rest-api-port", "9001", "--model-name", "m"], {"rest_api_port": 9001}),
        (["--enable_batching"], {"enable_batching": True}),
        (["--enable-batching", "--port", "9000"], {"enable_batching": True, "port": 9000}),
        (["--enable_batching=false"], {"enable_batching": False}),
        (["--enable_model_warmup=false"], {"enable_model_warmup": False}),
        ([], {"enable_batching": False, "enable_model_warmup": True}),
    ],
)
def test_serve_takes_tf_servings_spellings_and_dashed_ones(args, expect):
    params = _parse("serve", args).params
    assert {k: params[k] for k in expect} == expect


def test_usage_errors_are_in_the_one_error_style():
    proc = _beamline("run", "penguin", "--no-such-flag")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: beamline run")
    assert "Try 'beamline run -h' for help." in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == "error: No such option '--no-such-flag'."


def test_a_wrong_tf_use_legacy_keras_is_a_configuration_error(tmp_path):
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "0"}
    proc = _beamline("run", "penguin", "--root", str(tmp_path), env=env)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: TF_USE_LEGACY_KERAS is set to '0', not 1.")
    assert "set it to 1" in line


def test_exit_codes_mean_one_thing_each():
    codes = {cls.__name__: cls.exit_code for cls in (RunInProgress, ThresholdCrossed, ConfigError)}
    assert codes == {"RunInProgress": 6, "ThresholdCrossed": 8, "ConfigError": 2}


def test_monitor_json_with_a_path_says_to_use_json_out():
    with pytest.raises(click.UsageError, match="use --json-out out/w.json"):
        _parse("monitor", ["penguin", "--requests", "logs", "--json", "out/w.json"])
    assert _parse("monitor", ["--json", "penguin", "--requests", "logs"]).params["as_json"]
