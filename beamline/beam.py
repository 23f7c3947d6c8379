"""Beam runner profiles: the one place that turns a profile name into Beam pipeline args.

`auto` picks in-process DirectRunner for small inputs (worker start-up, which imports TensorFlow
in every worker, dominates small data) and multi-processing for large ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from beamline.errors import ConfigError
from beamline.settings import IN_MEMORY_MAX_BYTES

PROFILES: dict[str, tuple[str, ...]] = {
    "direct": ("--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"),
    "direct-multi": (
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=0",
    ),
}

AUTO = "auto"


def profile_names() -> list[str]:
    return [AUTO, *PROFILES]


def choose_profile(profile: str, input_bytes: int) -> str:
    """Resolves `auto` to a concrete profile from the input size; other names pass through."""
    if profile != AUTO:
        return profile
    return "direct" if input_bytes <= IN_MEMORY_MAX_BYTES else "direct-multi"


def beam_args(profile: str, input_bytes: int = 0, extra: Sequence[str] = ()) -> list[str]:
    """Beam pipeline args for a profile, with raw `extra` args overriding same-named flags."""
    name = choose_profile(profile, input_bytes)
    if name not in PROFILES:
        raise ConfigError(
            f"Unknown Beam profile {name!r}. Choose one of: {', '.join(profile_names())}; "
            "raw Beam flags can be added with --beam-arg."
        )
    return merge_args(PROFILES[name], extra)


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def merge_args(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """`base` args with any flag that also appears in `extra` replaced by extra's value."""
    overridden = {_flag_name(a) for a in extra}
    return [a for a in base if _flag_name(a) not in overridden] + list(extra)
