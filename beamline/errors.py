"""Errors a user can act on.

Every failure Beamline expects (bad data, bad flags, unreachable services) is raised as a
`BeamlineError` whose message is one paragraph naming the file/field/request at fault and what
to do. The CLI prints it as `error: <message>` without a traceback and exits with `exit_code`.
Each exit code means one thing across all commands; docs/reference/exit-codes.md lists them
(a test holds that table to the classes here).
"""

from __future__ import annotations


class BeamlineError(Exception):
    """A failure with a message meant for the user, not a traceback.

    Args:
        message: One paragraph: what is at fault (file, field, flag or request) and the fix.
        exit_code: Overrides the class's exit code for this one error.

    Attributes:
        exit_code: The process exit code `beamline` ends with (1 unless a subclass says).
    """

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(BeamlineError):
    """Bad command-line flags or configuration (exit code 2, like click's usage errors)."""

    exit_code = 2


class DataError(BeamlineError):
    """The input data cannot be used (missing, empty, unreadable) before any Beam work starts."""

    exit_code = 3


class AnomaliesFound(BeamlineError):
    """ExampleValidator found anomalies: the run stopped before training and push."""

    exit_code = 4


class PipelineFailed(BeamlineError):
    """A component failed while running."""

    exit_code = 1


class MetadataUnreachable(BeamlineError):
    """The ML Metadata store cannot be opened."""

    exit_code = 5


class RunInProgress(BeamlineError):
    """Another live run of the same pipeline holds the run root's lock."""

    exit_code = 6


class OutOfMemory(BeamlineError):
    """The run's processes were about to exhaust memory; the memory guard stopped the run."""

    exit_code = 7


class ThresholdCrossed(BeamlineError):
    """`beamline monitor`: a distribution moved past its threshold (skew, drift, predictions) in
    the requests that match the schema: time to retrain on newer data."""

    exit_code = 8


class DataQualityVerdict(BeamlineError):
    """`beamline monitor`: more request rows than allowed violate the schema (out of range,
    unknown categories, missing/extra features, wrong types), and no distribution moved: fix
    the clients; retraining cannot fix bad requests."""

    exit_code = 9


class LoopAlert(BeamlineError):
    """`beamline loop --once`: drift was found but no span newer than the served model's
    training span exists, so nothing was retrained (add the new span, or retrain by hand)."""

    exit_code = 12


class PromoteRefused(BeamlineError):
    """`beamline promote`/`rollback` refused: the version is not on disk, no run recorded it as
    pushed, it was not blessed, or the label has no earlier holder to go back to."""

    exit_code = 10


class CanaryWorse(BeamlineError):
    """`beamline monitor --compare A B`: version B's traffic is past a threshold against A's
    (error rate, p99 latency or the distribution of its predictions) in the window."""

    exit_code = 11


class FlinkPreflightFailed(BeamlineError):
    """The Flink cluster `--beam flink` would run on cannot take the run's Beam jobs: its REST
    API does not answer, it has no free slot, the runner jar is missing, or its worker pool
    cannot start a worker that imports apache_beam and TFX. Raised before any node runs."""

    exit_code = 13


def did_you_mean(name: str, choices) -> str:
    """`Did you mean 'x'? ` for the choice closest to a mistyped `name` (case aside), or ''."""
    import difflib

    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"Did you mean {by_lower[close[0]]!r}? " if close else ""
