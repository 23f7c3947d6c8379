"""Times on the command line: ISO 8601, or relative ("2h", "30m ago", "1d")."""

from __future__ import annotations

import datetime
import re

from beamline.errors import ConfigError

_RELATIVE = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|w)\s*(?:ago)?$", re.I)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400,
            "w": 604800}


def parse_time_ms(text: str, now_ms: int | None = None) -> int:
    """`text` as ms since the epoch. Naive ISO times are the machine's local time."""
    import time

    now = int(time.time() * 1000) if now_ms is None else now_ms
    value = text.strip()
    if value.lower() == "now":
        return now
    match = _RELATIVE.match(value)
    if match:
        return now - int(float(match.group(1)) * _SECONDS[match.group(2).lower()] * 1000)
    try:
        stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--at {text!r} is not a time: give an ISO time (2026-12-01T14:30, "
            "2026-12-01T14:30:00Z) or a time ago (90s, 30m, 2h, 1d, '3h ago')."
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()  # local time, as the user reads their clock
    return int(stamp.timestamp() * 1000)


def format_ms(ms: int) -> str:
    """ISO time in UTC, to the second."""
    stamp = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
