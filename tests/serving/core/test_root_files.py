"""The labels and routing files a running server polls: read with a size cap."""

from __future__ import annotations

import json
import logging

import pytest

from beamline_serving.core.root_files import MAX_WATCHED_FILE_BYTES, RootFiles
from beamline_serving.errors import ConfigError


def _oversized_routing(path) -> None:
    padding = " " * MAX_WATCHED_FILE_BYTES  # valid JSON, just too large
    path.write_text('{"models": {"m": {"canary_percent": 50}}}' + padding, encoding="utf-8")


def test_an_oversized_file_at_start_up_is_a_config_error_naming_it(tmp_path):
    routing = tmp_path / "routing.json"
    _oversized_routing(routing)
    files = RootFiles(tmp_path, None, routing)
    with pytest.raises(ConfigError, match=f"{routing} is larger than {MAX_WATCHED_FILE_BYTES}"):
        files.poll(strict=True)


def test_an_oversized_file_while_serving_keeps_the_last_good_one_and_is_logged_once(
    tmp_path, caplog
):
    routing = tmp_path / "routing.json"
    routing.write_text(json.dumps({"models": {"m": {"canary_percent": 10}}}), encoding="utf-8")
    files = RootFiles(tmp_path, None, routing)
    assert files.poll(strict=True) == (False, True)
    _oversized_routing(routing)
    with caplog.at_level(logging.ERROR, logger="beamline.serving"):
        for _ in range(3):
            assert files.poll() == (False, False)
    assert files.canary_percents == {"m": 10.0}
    assert [r.getMessage() for r in caplog.records if "larger than" in r.getMessage()] == [
        f"The routing file was not applied (the last good one stays): {routing} is larger than "
        f"{MAX_WATCHED_FILE_BYTES} bytes, so it is not read; the file `beamline promote` writes "
        "holds a few lines per model. Check what wrote it, and rewrite it (e.g. with "
        "`beamline promote`) or remove it."
    ]
    routing.write_text(json.dumps({"models": {"m": {"canary_percent": 20}}}), encoding="utf-8")
    assert files.poll() == (False, True)
    assert files.canary_percents == {"m": 20.0}
