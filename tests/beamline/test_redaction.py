"""What logs may show of secrets: the run log's beam args line, and any log record once masked."""

from __future__ import annotations

import json
import logging

from beamline.redaction import (
    MASK,
    SOURCES_ENV,
    install_log_redaction,
    redact_beam_args,
    secret_values,
)


def test_beam_args_line_masks_secret_flags_and_secret_values():
    environ = {
        "MY_API_KEY": "k3y-abcdefgh",  # secret-looking name, not declared
        SOURCES_ENV: json.dumps({"DB": "env"}),
        "DB": "db-pass-77",  # declared, however it is named
        "HOME": "/home/me",
    }
    args = [
        "--runner=DirectRunner",
        "--db_password=hunter2",  # a secret-looking flag: masked whatever its length
        "--api_token", "t0k",  # the same, as two args
        "--some_flag=k3y-abcdefgh",  # a secret value in a flag whose name says nothing
        "--conn=mysql://u:db-pass-77@h/db",
        "--temp_location=/home/me/tmp",
    ]
    line = " ".join(redact_beam_args(args, environ))
    assert line == (
        "--runner=DirectRunner --db_password=*** --api_token *** --some_flag=*** "
        "--conn=mysql://u:***@h/db --temp_location=/home/me/tmp"
    )
    for value in ("hunter2", "t0k", "k3y-abcdefgh", "db-pass-77"):
        assert value not in line


def test_short_values_of_undeclared_variables_are_not_masked_everywhere():
    # A secret-looking variable set to "true" must not turn every "true" in the logs into ***.
    assert secret_values({"USE_TOKEN_AUTH": "true", "GITHUB_TOKEN": "ghp_abcdefghij"}) == {
        "ghp_abcdefghij"
    }


def test_masked_values_leave_messages_arguments_and_tracebacks(caplog, record_factory_restored):
    install_log_redaction({"s3cr3t-value"})
    log = logging.getLogger("apache_beam.options.pipeline_options")
    with caplog.at_level(logging.INFO):
        log.warning("Discarding unparseable args: %s", ["--x=s3cr3t-value"])
        try:
            raise ValueError("bad value s3cr3t-value")
        except ValueError:
            log.exception("failed")
    assert f"['--x={MASK}']" in caplog.text
    assert f"bad value {MASK}" in caplog.text
    assert "s3cr3t-value" not in caplog.text
