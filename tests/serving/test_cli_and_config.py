"""The `beamline serve` command line and the config files it reads (no server needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beamline_serving.core.config import (
    BatchingOptions,
    VersionPolicy,
    discover_models,
    parse_batching_parameters,
    parse_model_config_text,
)
from beamline_serving.core.errors import ConfigError
from tests.serving.support import PROJECT_ROOT


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120
    )


def test_help_does_not_import_tensorflow():
    result = run_python(
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from beamline.cli import cli\n"
        "for args in (['--help'], ['serve', '--help']):\n"
        "    r = CliRunner().invoke(cli, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "    print(r.output)\n"
        "print('TF' if 'tensorflow' in sys.modules else 'NO-TF')\n"
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "--model_config_file" in result.stdout
    assert result.stdout.strip().endswith("NO-TF")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port=9000", "--rest_api_port=9000"], "gRPC and REST need different ports"),
        (["--model_config_file=/no/such/file"], "--model_config_file /no/such/file does not"),
        (["--schema_file=m=/no/such.pbtxt"], "/no/such.pbtxt does not exist"),
        (["--model_base_path=/tmp", "--model_name=a/b"], "--model_name 'a/b' cannot be used"),
    ],
)
def test_bad_flags_are_one_clear_error_without_tensorflow(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "beamline", "serve", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_model_config_file_is_parsed_with_tf_serving_meanings(tmp_path):
    text = f"""
    model_config_list {{
      config {{
        name: "a" base_path: "{tmp_path}/a" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 3 versions: 5 }} }}
        version_labels {{ key: "stable" value: 3 }}
      }}
      config {{ name: "b" base_path: "{tmp_path}/b" model_version_policy {{ all {{}} }} }}
      config {{ name: "c" base_path: "{tmp_path}/c"
                model_version_policy {{ latest {{ num_versions: 2 }} }} }}
    }}
    """
    a, b, c = parse_model_config_text(text)
    assert (a.name, a.base_path, a.label_map) == ("a", f"{tmp_path}/a", {"stable": 3})
    assert a.policy.select([1, 3, 4, 5]) == {3, 5}
    assert b.policy.select([1, 2]) == {1, 2}
    assert c.policy.select([1, 7, 3]) == {3, 7}
    assert VersionPolicy().select([4, 9, 2]) == {9}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { name: 'a' base_path: 'rel/path' } }", "absolute path"),
        (
            "model_config_list { config { name: 'a' base_path: '/x' } "
            "config { name: 'a' base_path: '/y' } }",
            "Illegal to list model a multiple times",
        ),
        ("model_config_list { config { name: 'a/b' base_path: '/x' } }", "contains '/' or ':'"),
        ("model_config_list { nonsense: 1 }", "Cannot parse the model config file"),
    ],
)
def test_bad_model_config_files(text, message):
    with pytest.raises(ConfigError) as info:
        parse_model_config_text(text, "models.config")
    assert message in str(info.value)


def test_batching_parameters():
    options = parse_batching_parameters(
        "max_batch_size { value: 32 } batch_timeout_micros { value: 500 } "
        "allowed_batch_sizes: 8 allowed_batch_sizes: 32 pad_variable_length_inputs: true"
    )
    assert options.max_batch_size == 32
    assert options.batch_timeout_micros == 500
    assert options.max_enqueued_batches == BatchingOptions().max_enqueued_batches
    assert options.allowed_batch_sizes == (8, 32)
    assert options.pad_variable_length_inputs
    with pytest.raises(ConfigError) as info:
        parse_batching_parameters("max_batch_size { value: 32 } allowed_batch_sizes: 16")
    assert "Last entry in allowed_batch_sizes must match max_batch_size" in str(info.value)


def test_discovery_skips_hidden_and_unroutable_directories(tmp_path: Path):
    for name in ("penguin", "taxi", ".staging", "a:b"):
        (tmp_path / name).mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert [m.name for m in discover_models(tmp_path)] == ["penguin", "taxi"]
    assert discover_models(tmp_path / "missing") == []


def serve_options(*args: str):
    """The ServerOptions `beamline serve ARGS` would run with (parsed, not run)."""
    from beamline.commands.serve import build_options, serve

    with serve.make_context("serve", list(args)) as ctx:
        return build_options(**ctx.params)


def test_root_mode_follows_the_labels_and_routing_files(tmp_path: Path):
    options = serve_options(f"--root={tmp_path}")
    assert options.labels_file == tmp_path / "serving" / "models.config"
    assert options.routing_file == tmp_path / "serving" / "routing.json"
    assert options.unversioned_to_stable is True  # Beamline's rule with --root
    assert options.canary_percent == 0
    options = serve_options(
        f"--root={tmp_path}", "--unversioned_to_stable=false", "--canary_percent=12.5"
    )
    assert (options.unversioned_to_stable, options.canary_percent) == (False, 12.5)


def test_model_flags_keep_tf_servings_rule_for_unversioned_requests(tmp_path: Path):
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path}" }} }}', encoding="utf-8"
    )
    options = serve_options(f"--model_config_file={config}")
    assert options.labels_file is None and options.routing_file is None
    assert options.unversioned_to_stable is False  # TF Serving: the highest loaded version
    options = serve_options(
        f"--model_config_file={config}",
        f"--routing_file={tmp_path / 'routing.json'}",
        "--unversioned_to_stable",
    )
    assert options.routing_file == tmp_path / "routing.json"
    assert options.unversioned_to_stable is True


@pytest.mark.parametrize("value", ["150", "-1", "nan"])
def test_canary_percent_out_of_range_is_a_usage_error(value):
    result = subprocess.run(
        [sys.executable, "-m", "beamline", "serve", f"--canary_percent={value}"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--canary_percent" in result.stderr and "Traceback" not in result.stderr
