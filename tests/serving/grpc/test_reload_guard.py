"""Who may reload the server's config, and where a reload may put request logs.

Neither port authenticates its clients, so HandleReloadConfigRequest is taken only on loopback
unless --allow_reload_config says otherwise, and a reload's logging_config may only write under
--request_log_dir. These run a real ModelServer in this process (no ports: the reload entry point
the gRPC handler calls) over empty model directories, so nothing loads; the same checks over the
wire are in test_service.py (loopback, reloads on) and test_serve_flags.py (reloads off).
"""

from __future__ import annotations

import pytest

from beamline_serving.core.config import ServerOptions
from beamline_serving.errors import Code, ConfigError, ServingError
from beamline_serving.request_log.config import settings_from_flags
from beamline_serving.server import ModelServer


def _config(models, prefix: str | None = None):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    logging = (
        f"logging_config {{ log_collector_config {{ filename_prefix: '{prefix}' }} }}"
        if prefix is not None
        else ""
    )
    text = (
        f"model_config_list {{ config {{ name: 'm' base_path: '{models}' "
        f"model_platform: 'tensorflow' {logging} }} }}"
    )
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


@pytest.fixture
def make_server(tmp_path):
    started: list[ModelServer] = []
    (tmp_path / "root").mkdir()

    def make(**options) -> ModelServer:
        server = ModelServer(
            ServerOptions(serving_root=tmp_path / "root", grpc_port=0, rest_port=0, **options)
        )
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.mark.parametrize(
    ("host", "flag", "allowed"),
    [
        ("127.0.0.1", None, True),
        ("::1", None, True),
        ("localhost", None, True),
        ("127.0.0.2", None, True),
        ("0.0.0.0", None, False),
        ("::", None, False),
        ("10.1.2.3", None, False),
        ("serving.example", None, False),
        ("0.0.0.0", True, True),
        ("127.0.0.1", False, False),
    ],
)
def test_reloads_are_taken_on_loopback_only_unless_the_flag_says(host, flag, allowed):
    options = ServerOptions(host=host, allow_reload_config=flag)
    assert options.reloads_allowed() is allowed


def test_a_server_beyond_loopback_refuses_a_reload_naming_the_flag(make_server, tmp_path):
    server = make_server(host="0.0.0.0")
    elsewhere = tmp_path / "any-saved-model"
    elsewhere.mkdir()
    with pytest.raises(ServingError) as info:
        server.reload_from_client(_config(elsewhere))
    assert info.value.code == Code.PERMISSION_DENIED
    assert "--allow_reload_config=true" in info.value.message
    assert server.manager.model_names() == []  # nothing was reloaded


@pytest.mark.parametrize(
    "prefix",
    ["{tmp}/victim/requests", "{tmp}/logs/../victim/requests", "{tmp}/logs/link/requests"],
)
def test_a_reload_may_log_only_under_the_request_log_dir(make_server, tmp_path, prefix):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "link").symlink_to(tmp_path)  # a symlink inside leading outside counts as outside
    server = make_server(request_log_dir=logs)
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(ConfigError, match="outside --request_log_dir"):
        server.reload_from_client(_config(models, prefix.format(tmp=tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "models", "root"]
    assert [p.name for p in logs.iterdir()] == ["link"]
    assert server.manager.model_names() == []  # refused whole: the models did not change

    server.reload_from_client(_config(models, f"{logs}/m/requests"))
    assert server.manager.model_names() == ["m"]
    assert server.dataplane.request_log.settings.for_model("m").filename_prefix == (
        f"{logs}/m/requests"
    )


def test_a_model_config_file_may_not_log_outside_the_request_log_dir(tmp_path):
    text = _config(tmp_path, f"{tmp_path}/elsewhere/requests")
    from google.protobuf import text_format

    with pytest.raises(ConfigError, match="outside --request_log_dir"):
        settings_from_flags(tmp_path / "logs", 1.0, text_format.MessageToString(text), "m.config")
    inside = text_format.MessageToString(_config(tmp_path, f"{tmp_path}/logs/m"))
    assert settings_from_flags(tmp_path / "logs", 1.0, inside, "m.config").per_model


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        ((), True),
        (("--host=0.0.0.0",), False),
        (("--host=0.0.0.0", "--allow_reload_config=true"), True),
        (("--allow-reload-config=false",), False),
    ],
)
def test_the_serve_command_passes_the_reload_flag_on(tmp_path, args, allowed):
    from tests.serving.test_cli_and_config import serve_options

    assert serve_options(f"--root={tmp_path}", *args).reloads_allowed() is allowed


def test_the_request_log_budget_reaches_the_logger_and_survives_a_reload(make_server, tmp_path):
    from beamline_serving.request_log.config import LogBudget

    logs = tmp_path / "logs"
    budget = LogBudget(max_bytes=LogBudget().max_bytes // 2, max_files=7, min_free_bytes=12345)
    server = make_server(request_log_dir=logs, request_log_budget=budget)
    assert server.dataplane.request_log.settings.budget == budget
    models = tmp_path / "models"
    models.mkdir()
    server.reload_from_client(_config(models, f"{logs}/m/requests"))
    assert server.dataplane.request_log.settings.budget == budget


def test_the_rest_limits_reach_the_http_server(make_server):
    from beamline_serving.core.config import RestLimits

    limits = RestLimits(header_timeout=3.5, max_connections=17)
    http = make_server(rest_limits=limits).http_server()
    assert http.limits == limits  # what the HTTP/1 protocol enforces on every connection
