"""Times on the command line, one way for every command (docs/reference/cli.md, "Times").

A time option (`labels --at`, `monitor --since/--until`, `loop --until`) takes `TimeType`, which
reads an ISO 8601 time (no offset: UTC, the server's clock, never the reader's), `now`, or a time
ago (`30m ago`, `2h ago`, `3d ago`; the `ago` may be left out). Every time a command prints is
`format_time`'s: ISO 8601 in UTC with a `Z`, to the second, with milliseconds only when the
instant has them, so that whatever a command prints can be given back to a time option as is.
"""

from __future__ import annotations

import datetime as dt
import re

import click

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# What every time option's --help says it takes.
TIME_HELP = "ISO 8601 (UTC when no offset), now, or a time ago: 30m ago, 2h ago, 3d ago"
EXAMPLES = "2026-12-01T14:30:00Z, 2026-12-01T14:30 (UTC), now, 30m ago, 2h ago, 3d ago"

_AGO = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|w)\s*(?:ago)?$", re.I)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400,
                 "w": 604800}


def parse_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`text` as an aware UTC datetime; ValueError saying what is accepted when it is none."""
    value = text.strip()
    now = now or dt.datetime.now(UTC)
    if value.lower() == "now":
        return now
    try:
        ago = _AGO.match(value)
        if ago:
            seconds = float(ago.group(1)) * _UNIT_SECONDS[ago.group(2).lower()]
            return now - dt.timedelta(seconds=seconds)
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a time: give one of {EXAMPLES}.") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def to_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch (exact: no float on the way)."""
    return (value - EPOCH) // dt.timedelta(milliseconds=1)


def format_time(value: dt.datetime) -> str:
    """ISO 8601 in UTC: 2026-12-01T14:30:00Z, or ...:00.250Z when the instant has milliseconds."""
    utc = value.astimezone(UTC)
    millis = utc.microsecond // 1000
    # isoformat, not strftime: %Y leaves years before 1000 unpadded, which no parser reads back.
    seconds = utc.replace(microsecond=0, tzinfo=None).isoformat()
    return seconds + (f".{millis:03d}" if millis else "") + "Z"


def format_ms(ms: int) -> str:
    """`format_time` of milliseconds since the epoch (MLMD's times)."""
    return format_time(EPOCH + dt.timedelta(milliseconds=ms))


def format_secs(secs: float) -> str:
    """`format_time` of seconds since the epoch (the request log's times)."""
    return format_ms(round(secs * 1000))


class TimeType(click.ParamType):
    """A Click option's time (`parse_time`); a bad one is a usage error naming the option."""

    name = "time"  # the metavar in --help: TIME

    def convert(self, value, param, ctx) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            return parse_time(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
