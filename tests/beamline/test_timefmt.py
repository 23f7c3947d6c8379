"""The command line's one way to say a time: what `parse_time` accepts, what `format_time`
prints, and that whatever is printed reads back as the same instant."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamline.timefmt import UTC, format_ms, format_secs, format_time, parse_time, to_ms

NOW = dt.datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
# Every instant a command can print: MLMD's milliseconds, years 1..9999.
MS = st.integers(min_value=to_ms(dt.datetime(1, 1, 1, tzinfo=UTC)),
                 max_value=to_ms(dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)))


@given(MS)
def test_a_printed_time_reads_back_as_the_same_instant(ms):
    assert to_ms(parse_time(format_ms(ms))) == ms


@given(st.integers(min_value=0, max_value=to_ms(dt.datetime(9999, 12, 31, tzinfo=UTC)) // 1000))
def test_a_printed_request_log_time_reads_back_as_the_same_second(secs):
    assert parse_time(format_secs(secs)).timestamp() == secs


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-01T14:30:00Z", NOW),
    ("2026-12-01T14:30:00+00:00", NOW),
    ("2026-12-01T15:30:00+01:00", NOW),
    ("2026-12-01T14:30", NOW),  # no offset: UTC, whatever the machine's zone
    ("2026-12-01 14:30:00", NOW),
    ("2026-12-01", NOW.replace(hour=0, minute=0)),
    ("now", NOW),
    (" NOW ", NOW),
    ("30m ago", NOW - dt.timedelta(minutes=30)),
    ("2h ago", NOW - dt.timedelta(hours=2)),
    ("3d ago", NOW - dt.timedelta(days=3)),
    ("90s ago", NOW - dt.timedelta(seconds=90)),
    ("1w ago", NOW - dt.timedelta(weeks=1)),
    ("2h", NOW - dt.timedelta(hours=2)),  # the `ago` may be left out
    ("1.5h ago", NOW - dt.timedelta(minutes=90)),
])
def test_each_accepted_form_is_the_instant_it_names(text, expected):
    parsed = parse_time(text, NOW)
    assert parsed == expected and parsed.tzinfo == UTC


def test_a_time_without_an_offset_is_utc_in_any_local_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert format_time(parse_time("2026-12-01T14:30")) == "2026-12-01T14:30:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("text", ["yesterday-ish", "2026-13-01", "", "2h from now", "99999999999w"])
def test_a_bad_time_says_what_is_accepted(text):
    with pytest.raises(ValueError, match="is not a time: give one of .*Z.*now.*2h ago"):
        parse_time(text, NOW)


def test_the_output_format_is_iso_utc_to_the_second_with_milliseconds_only_when_there():
    assert format_time(NOW) == "2026-12-01T14:30:00Z"
    assert format_ms(to_ms(NOW) + 250) == "2026-12-01T14:30:00.250Z"
    assert format_time(NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))) == (
        "2026-12-01T14:30:00Z"
    )
    assert format_secs(0) == "1970-01-01T00:00:00Z"


def test_every_form_the_cli_reference_lists_is_read():
    import re
    from pathlib import Path

    page = Path(__file__).parents[2] / "docs" / "reference" / "cli.md"
    section = page.read_text(encoding="utf-8").split("## Times")[1].split("\n## ")[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    forms = [form for row in rows for form in re.findall(r"`([^`]+)`", row)]
    assert len(forms) >= 10
    for form in forms:
        parse_time(form, NOW)
