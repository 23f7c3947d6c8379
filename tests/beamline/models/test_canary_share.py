"""`beamline promote --canary-percent`: a share the model server would refuse is refused by
promote with the server's own check (exit 2) before any label moves or file is written, and a
label whose models.config the server could not serve is never recorded."""

from __future__ import annotations

import json

import pytest

from beamline.cli import main
from beamline.errors import ConfigError
from beamline.metadata import labels as history
from beamline.metadata import labels_file
from beamline.models.changes import promote
from beamline_serving.core.root_files import RootFiles
from beamline_serving.core.serving_root import check_percent
from beamline_serving.errors import ConfigError as ServerConfigError

PIPELINE = "p"  # conftest.PIPELINE
# Every kind of share the server refuses: not a number, infinite, below 0, above 100.
REFUSED = ["nan", "NaN", "-nan", "inf", "-inf", "1e400", "-1", "-0.001", "100.5", "1e3"]


def _promote(mlmd, capsys, *extra: str) -> tuple[int, str]:
    argv = ["promote", PIPELINE, "100", "--label", "canary", "--root", str(mlmd.layout.root),
            "--rest-port", "0", *extra]  # port 0: no live server is asked
    try:
        main(argv)  # returns on success, exits with the code otherwise
        code = 0
    except SystemExit as ended:
        code = ended.code
    return code, capsys.readouterr().err


def _server_refusal(value: str) -> str:
    with pytest.raises(ServerConfigError) as refused:
        check_percent(float(value), "--canary-percent")
    return str(refused.value)


def _nothing_written(mlmd) -> bool:
    return (
        history.history(mlmd.store, PIPELINE) == []
        and not labels_file.models_config_path(mlmd.layout).exists()
        and not labels_file.routing_path(mlmd.layout).exists()
    )


@pytest.mark.parametrize("value", REFUSED)
def test_promote_refuses_each_share_the_server_refuses_with_its_check_and_writes_nothing(
    mlmd, capsys, value
):
    mlmd.push("r1", 100)
    code, err = _promote(mlmd, capsys, "--canary-percent", value)
    assert code == 2, err
    assert _server_refusal(value) in err
    assert _nothing_written(mlmd)


def test_promote_refuses_a_share_when_the_server_would_refuse_the_routing_file_it_makes(
    mlmd, capsys
):
    mlmd.push("r1", 100)
    routing = labels_file.routing_path(mlmd.layout)
    routing.parent.mkdir(parents=True, exist_ok=True)
    hand_edited = json.dumps({"models": {"other": {"canary_percent": 150}}})
    routing.write_text(hand_edited, encoding="utf-8")
    code, err = _promote(mlmd, capsys, "--canary-percent", "10")
    assert code == 2, err
    assert "models.other.canary_percent is 150" in err and str(routing) in err
    assert history.history(mlmd.store, PIPELINE) == []
    assert routing.read_text(encoding="utf-8") == hand_edited


def test_a_share_the_server_accepts_is_written_and_read_back_by_the_server(mlmd, capsys):
    mlmd.push("r1", 100)
    code, err = _promote(mlmd, capsys, "--canary-percent", "12.5")
    assert code == 0, err
    files = RootFiles(mlmd.layout.serving_root, labels_file.models_config_path(mlmd.layout),
                      labels_file.routing_path(mlmd.layout))
    assert files.poll(strict=True) == (True, True)
    assert files.canary_percents == {PIPELINE: 12.5}
    assert files.specs()[0].label_map == {"canary": 100}


def test_a_version_the_server_cannot_list_is_refused_before_it_is_recorded(mlmd):
    too_large = 2**63  # past int64: ModelServerConfig's versions cannot hold it
    mlmd.push("r1", too_large)
    with pytest.raises(ConfigError, match="the model server would refuse it") as refused:
        promote(mlmd.store, mlmd.graph(), mlmd.layout, PIPELINE, too_large, "stable",
                rest_port=None)
    assert refused.value.exit_code == 2
    assert history.history(mlmd.store, PIPELINE) == []
    assert not labels_file.models_config_path(mlmd.layout).exists()
