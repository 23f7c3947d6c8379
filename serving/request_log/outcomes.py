"""Request outcomes: one line per answered predict/classify/regress request, beside the log.

A PredictionLog holds what a sampled, successful request asked and got; it has no field for the
status or the latency, and TF Serving's readers must keep parsing these files, so Beamline adds
no field to it. Outcomes go to their own files instead, next to the PredictionLog files of the
same logger: `<filename_prefix>-<UTC time>-<pid>-<n>.outcomes.tsv`, one tab-separated line per
request, unsampled (a failed request is never in a PredictionLog, and an error rate needs every
request):

    <unix time ms>  <model>  <version>  <api>  <status>  <latency µs>

`status` is the canonical gRPC code name (OK, INVALID_ARGUMENT, ...). `beamline monitor
--compare` reads them for error rates and latency percentiles per version. A torn last line
(the writer was killed mid-line) is skipped when read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

OUTCOME_SUFFIX = ".outcomes.tsv"
OK = "OK"


@dataclass(frozen=True)
class Outcome:
    """One request's outcome, as logged."""

    time_ms: int
    model_name: str
    version: int
    api: str
    status: str
    latency_us: int

    @property
    def ok(self) -> bool:
        return self.status == OK


def outcome_line(
    time_ms: int, model_name: str, version: int, api: str, status: str, latency_us: float
) -> bytes:
    # Tabs and newlines cannot occur in a model name the config accepts; replacing them keeps
    # a hostile name from splitting a record anyway.
    name = model_name.replace("\t", " ").replace("\n", " ")
    return f"{time_ms}\t{name}\t{version}\t{api}\t{status}\t{int(latency_us)}\n".encode()


def outcome_files(directory: str | os.PathLike) -> list[str]:
    """The outcome files under `directory` (recursively), in name order."""
    found = []
    for parent, _, names in os.walk(directory):
        found += [os.path.join(parent, n) for n in names if n.endswith(OUTCOME_SUFFIX)]
    return sorted(found)


def parse_outcome(line: bytes) -> Outcome | None:
    """The outcome on one line, or None for a torn or foreign line."""
    parts = line.rstrip(b"\n").split(b"\t")
    if len(parts) != 6 or not line.endswith(b"\n"):
        return None
    try:
        return Outcome(
            int(parts[0]), parts[1].decode(), int(parts[2]), parts[3].decode(),
            parts[4].decode(), int(parts[5]),
        )
    except (ValueError, UnicodeDecodeError):
        return None


def read_outcomes(
    directory: str | os.PathLike, since_ms: int | None = None, until_ms: int | None = None
) -> Iterator[Outcome]:
    """Every intact outcome under `directory` logged in [since_ms, until_ms)."""
    for path in outcome_files(directory):
        try:
            with open(path, "rb") as stream:
                lines = stream.readlines()
        except OSError:
            continue
        for line in lines:
            outcome = parse_outcome(line)
            if outcome is None:
                continue
            if since_ms is not None and outcome.time_ms < since_ms:
                continue
            if until_ms is not None and outcome.time_ms >= until_ms:
                continue
            yield outcome
