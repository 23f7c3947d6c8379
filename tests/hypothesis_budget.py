"""How many examples a property test draws: its own count under the `ci` profile (the default),
ten times as many under `HYPOTHESIS_PROFILE=dev` (profiles: tests/conftest.py). Explicit
`max_examples` in a test's settings override any profile, so tests ask here instead."""

from __future__ import annotations

import os

DEV_FACTOR = 10


def examples(count: int) -> int:
    return count * DEV_FACTOR if os.environ.get("HYPOTHESIS_PROFILE") == "dev" else count
