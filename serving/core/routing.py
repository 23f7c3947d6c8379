"""Which version answers a request: effective labels, `stable` for unversioned requests, canary.

Three rules, kept here as pure functions so the model manager only applies them:

- A label moves only to an AVAILABLE version (TF Serving's rule). Until the version it is meant
  for has loaded, a label keeps the version it held (every version a label holds stays
  loaded): promoting a version that is still loading, or whose load failed, never leaves the
  label without a servable. `--allow_version_labels_for_unavailable_models` lifts this, as in
  TF Serving, only for a label that is new or already points at that version.
- Unversioned requests go to the `stable` label's version when the model has one (Beamline;
  TF Serving sends them to the highest loaded version).
- `canary_percent` of unversioned requests go to the `canary` label's version instead: by a
  hash of the client's request key when it sends one (the same key always gets the same
  version, and raising the percentage only adds keys to the canary), at random otherwise.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from beamline_serving.errors import invalid_argument

REQUEST_KEY_HEADER = "X-Beamline-Request-Key"
REQUEST_KEY_METADATA = "x-beamline-request-key"  # gRPC metadata keys are lower case
VERSION_HEADER = "X-Beamline-Model-Version"
MAX_REQUEST_KEY = 256
BUCKETS = 10_000  # canary resolution: 0.01 %


def resolve_labels(
    desired: dict[str, int],
    current: dict[str, int],
    available: set[int],
    allow_unavailable: bool = False,
) -> dict[str, int]:
    """The labels to serve now: `desired` (the config's), moved only onto available versions."""
    labels: dict[str, int] = {}
    for label, version in desired.items():
        held = current.get(label)
        if version in available:
            labels[label] = version
        elif held is not None and held in available:
            labels[label] = held  # load before relabel: keep the old version until then
        elif allow_unavailable and held in (None, version):
            labels[label] = version
    return labels


def check_request_key(value: str | None, where: str = REQUEST_KEY_HEADER) -> str | None:
    """The client's request key, None when it sent none; INVALID_ARGUMENT when unusable."""
    if not value:
        return None
    if len(value) > MAX_REQUEST_KEY or not (value.isascii() and value.isprintable()):
        raise invalid_argument(
            f"{where} must be 1 to {MAX_REQUEST_KEY} printable ASCII characters (got "
            f"{len(value)} characters); send a stable id such as a user or session id, or "
            "leave it out to be routed at random."
        )
    return value


def bucket(key: str) -> int:
    """The key's canary bucket in [0, BUCKETS): the same on every server process and run.

    CRC-32, spread by a Fibonacci multiply and reduced by multiply-shift (the high bits): as
    even over sequential ids ("user-1", "user-2", ...) as a cryptographic hash, at a third of
    BLAKE2b's cost on the serving path.
    """
    spread = (zlib.crc32(key.encode("ascii")) * 0x9E3779B1) & 0xFFFFFFFF
    return (spread * BUCKETS) >> 32


@dataclass(frozen=True)
class Routing:
    """Canary percentages: `--canary_percent` for every model, routing.json's per model."""

    default_percent: float = 0.0
    per_model: dict[str, float] = field(default_factory=dict)

    def percent(self, model: str) -> float:
        return self.per_model.get(model, self.default_percent)
