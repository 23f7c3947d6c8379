"""The server's command lines (`beamline serve`, `python -m beamline_serving`) and the config
files they read (no server needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beamline_serving.__main__ import main as serve_on_its_own
from beamline_serving.core.config import (
    BatchingOptions,
    VersionPolicy,
    discover_models,
    parse_batching_parameters,
    parse_model_config_text,
)
from beamline_serving.core.flags import (
    FLAGS,
    STANDALONE_COMMAND,
    argument_parser,
    parse_command_line,
    standalone_options,
)
from beamline_serving.errors import ConfigError
from tests.serving.support import BEAMLINE_SERVE, PROJECT_ROOT

BAD_FLAGS = [
    (["--port=9000", "--rest_api_port=9000"], "gRPC and REST need different ports"),
    (["--model_config_file=/no/such/file"], "--model_config_file /no/such/file does not"),
    (["--schema_file=m=/no/such.pbtxt"], "/no/such.pbtxt does not exist"),
    (["--model_base_path=/tmp", "--model_name=a/b"], "--model_name 'a/b' cannot be used"),
    (["--canary_percent=nan"], "--canary_percent"),
    (["--request_log_sample_rate=2"], "--request_log_sample_rate"),
    (["--rest_api_workers=2", "--rest_api_port=0"], "--rest_api_workers needs REST"),
    (["--max_request_bytes=10"], "--max_request_bytes must be at least 1024"),
]


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


@pytest.mark.parametrize(("args", "message"), BAD_FLAGS[:4])
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


@pytest.mark.parametrize(("args", "message"), BAD_FLAGS)
def test_the_server_on_its_own_refuses_bad_flags_with_the_same_usage_error(args, message, capsys):
    """The checks live in the server: `python -m beamline_serving` makes each one (exit 2,
    one line naming the flag), before anything is loaded."""
    assert serve_on_its_own(["--model_base_path=/tmp", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_the_server_on_its_own_needs_a_model_flag(capsys):
    """Without the framework there is no run root to fall back on (TF Serving refuses too)."""
    assert serve_on_its_own([]) == 2
    assert "--model_base_path" in capsys.readouterr().err


def test_the_command_and_the_servers_parser_take_the_same_flags():
    from beamline.commands.serve import serve

    table = {flag.option for flag in FLAGS}
    command = {opt for p in serve.params for opt in p.opts if opt.startswith("--")}
    parser = {
        opt for action in argument_parser()._actions for opt in action.option_strings
    }
    assert command - {"--root", "--help"} == table  # --root: the framework's own
    assert parser - {"--help", "-h"} == table


def _files(tmp_path: Path) -> dict[str, Path]:
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path}" }} }}', encoding="utf-8"
    )
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("", encoding="utf-8")
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 8 }\n", encoding="utf-8")
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n", encoding="utf-8")
    return {"config": config, "schema": schema, "batching": batching, "monitoring": monitoring}


@pytest.mark.parametrize(
    "flags",
    [
        # the flags tests/serving/test_serve_flags.py starts its server with
        [
            "--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=1",
            "--rest_api_enable_cors_support=true",
            "--enable_signature_method_name_check=true",
            "--allow_version_labels_for_unavailable_models=true",
            "--num_request_iterations_for_warmup=3",
            "--monitoring_config_file={monitoring}",
            "--allow_reload_config=false",
        ],
        # dashes, bare bools, spaced values, repeats, the last of a flag given twice
        [
            "--model-base-path", "{tmp}", "--model_name=m", "--enable_batching",
            "--batching-parameters-file={batching}", "--enable_per_model_batching_parameters",
            "--enable-model-warmup=false", "--schema_file=m={schema}", "--schema_file={schema}",
            "--request_log_dir={tmp}/logs", "--request_log_exclude=a,b",
            "--request-log-exclude", "c", "--request_log_sample_rate=0.25",
            "--request_log_max_files=8", "--canary_percent=12.5", "--unversioned_to_stable",
            "--routing_file={tmp}/routing.json", "--host=0.0.0.0", "--port=0", "--port=9100",
            "--rest_api_workers=3", "--max_request_bytes=2048", "--grpc_max_threads=4",
            "--tensorflow_inter_op_parallelism=0", "--tensorflow_intra_op_parallelism=2",
            "--file_system_poll_wait_seconds=0.5", "--rest_api_num_threads=3",
        ],
    ],
)
def test_both_parsers_build_the_same_options(flags, tmp_path):
    """`beamline serve ARGS` and `python -m beamline_serving ARGS` run the same server."""
    files = _files(tmp_path)
    args = [f.format(tmp=tmp_path, **files) for f in flags]
    through_command = serve_options(*args)
    on_its_own = standalone_options(args)
    assert through_command.launch_command == ()  # in-process: no command line to run again
    assert on_its_own.launch_command == (sys.executable, *STANDALONE_COMMAND, *args)
    on_its_own.launch_command = ()
    assert on_its_own == through_command


def test_every_flag_has_the_same_default_in_both_parsers():
    from beamline.commands.serve import serve

    with serve.make_context("serve", []) as ctx:
        command = ctx.params
    on_its_own = parse_command_line([])
    for flag in FLAGS:
        assert command[flag.name] == on_its_own[flag.name] == (
            () if flag.repeatable else flag.default
        ), flag.name


def test_workers_run_the_command_line_that_started_the_server(tmp_path, monkeypatch):
    """A REST worker is started the way its primary was: `beamline serve ...` or
    `python -m beamline_serving ...`, with the same flags."""
    from beamline.commands.serve import build_options, serve

    args = ["--model_base_path", str(tmp_path), "--rest_api_workers=2"]
    monkeypatch.setattr(sys, "argv", ["/venv/bin/beamline", "serve", *args])
    with serve.make_context("serve", list(args)) as ctx:
        through_command = build_options(**ctx.params)
    assert through_command.launch_command == (sys.executable, *BEAMLINE_SERVE, *args)
    assert standalone_options(args).launch_command == (sys.executable, *STANDALONE_COMMAND, *args)


def test_the_ready_line_says_where_and_gives_the_framework_s_curl(tmp_path):
    """Once models are AVAILABLE the ready line names both ports as a client reaches them and
    a request to paste: `beamline serve`'s is the run summary's predict curl for the pipeline
    of the served model's name, with its SAMPLE_INSTANCE."""
    import json
    import shlex

    from beamline.commands.serve import try_predict
    from beamline_pipelines.penguin import SAMPLE_INSTANCE
    from beamline_serving.server import ready_line

    options = standalone_options(
        [f"--model_base_path={tmp_path}", "--model_name=penguin", "--host=0.0.0.0",
         "--rest_api_port=8601", "--port=8600"]
    )
    line = ready_line(options, ["penguin"], try_predict)
    head, tried = line.split("; try: ")
    assert head.startswith("beamline serve: ready (pid ")
    assert head.endswith("REST on http://127.0.0.1:8601, gRPC on 127.0.0.1:8600")
    words = shlex.split(tried)
    assert words[:3] == ["curl", "-s", "-d"]
    assert json.loads(words[3]) == {"instances": [SAMPLE_INSTANCE]}
    assert words[4] == "http://127.0.0.1:8601/v1/models/penguin:predict"


def test_the_ready_line_without_a_sample_or_a_model_says_what_there_is(tmp_path):
    """A model no pipeline here names gets its status URL; no model yet is said, not hidden;
    the server started on its own (no hint) gives the status URL too."""
    from beamline.commands.serve import try_predict
    from beamline_serving.server import ready_line

    options = standalone_options([f"--model_base_path={tmp_path}", "--port=0"])
    status = "try: curl http://127.0.0.1:8501/v1/models/nopipeline"
    assert ready_line(options, ["nopipeline"], try_predict).endswith(status)
    assert ready_line(options, ["nopipeline"], None).endswith(status)
    assert "gRPC off" in ready_line(options, [], None)
    assert ready_line(options, [], try_predict).endswith(
        "no model is AVAILABLE yet: pushed versions are served as they land"
    )
