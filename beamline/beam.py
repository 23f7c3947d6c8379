"""Beam runner profiles: the one place that turns a profile name into Beam pipeline args.

`auto` picks in-process DirectRunner for small inputs (worker start-up, which imports TensorFlow
in every worker, dominates small data) and multi-processing for large ones.

Distributed profiles (`portable`, `dataflow`, `flink`, `spark`) need values only the user knows
(a job endpoint, a GCP project, a Flink master, ...). Each comes from a raw `--beam-arg` flag or,
failing that, from an environment variable; a missing one is a `ConfigError` naming the flag and
the variable. Raw `--beam-arg` flags always override a profile's defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from beamline.errors import ConfigError
from beamline.settings import IN_MEMORY_MAX_BYTES

# How `--beam flink` reaches a cluster (beamline/flink/profile.py fills them for the local one).
FLINK_MASTER_ENV = "BEAMLINE_FLINK_MASTER"  # a team's cluster: its REST endpoint, HOST:PORT
FLINK_WORKER_POOL_ENV = "BEAMLINE_FLINK_WORKER_POOL"  # the Beam worker pool for it, HOST:PORT
FLINK_JAR_ENV = "BEAMLINE_FLINK_JAR"  # a runner jar of the user's own instead of the cache's
# Beam 2.59's --flink_version only chooses a jar to download (1.18 is its newest choice); the
# explicit --flink_job_server_jar wins, so this value is never used to fetch anything.
FLINK_BEAM_VERSION_FLAG = "1.18"

# Workers that run TFX components need TFX installed: for the Docker/External environments of
# Flink and Spark the SDK harness image must be the pipeline image (see the Dockerfile).
#
# Local profiles pickle with cloudpickle, not Beam's default dill: dill's pickle calls set the
# "dill" logger's level twice, and each setLevel walks every logger in the process (thousands
# once TensorFlow is imported), which cost a cold penguin run ~10% of its CPU (measured with
# py-spy; benchmarks/pipeline_e2e.py). Beam supports both libraries for all its transforms.
LOCAL_PICKLE_LIBRARY = "--pickle_library=cloudpickle"
PORTABLE_JOB_TIMEOUT = "--job_server_timeout=86400"
PROFILES: dict[str, tuple[str, ...]] = {
    "direct": (
        "--runner=DirectRunner",
        "--direct_running_mode=in_memory",
        "--direct_num_workers=1",
        LOCAL_PICKLE_LIBRARY,
    ),
    "direct-multi": (
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=0",
        LOCAL_PICKLE_LIBRARY,
    ),
    # Any Beam job service (Beam's own Python one, a Flink/Spark job server). LOOPBACK runs the
    # SDK harness inside this process, which only works when the job service can reach it.
    # PortableRunner also applies --job_server_timeout (default 60 s) to the job's state
    # stream, so a job running longer died with DEADLINE_EXCEEDED: allow a day.
    "portable": (
        "--runner=PortableRunner",
        "--environment_type=LOOPBACK",
        PORTABLE_JOB_TIMEOUT,
    ),
    "dataflow": ("--runner=DataflowRunner",),
    # Each Beam job goes straight to Flink's REST API with the runner jar (no job-server
    # process); its SDK harness runs in a Beam worker pool (EXTERNAL) that has TFX and the
    # project installed (`beamline flink up` starts one; on Kubernetes, a TaskManager sidecar).
    # pre_optimize=all fuses stages, as TFX's own Flink example does. DOCKER only if asked for:
    # --beam-arg=--environment_type=DOCKER --beam-arg=--environment_config=IMAGE.
    "flink": (
        "--runner=FlinkRunner",
        "--flink_submit_uber_jar",
        f"--flink_version={FLINK_BEAM_VERSION_FLAG}",
        "--environment_type=EXTERNAL",
        "--experiments=pre_optimize=all",
    ),
    "spark": ("--runner=SparkRunner", "--environment_type=DOCKER"),
}

AUTO = "auto"


@dataclass(frozen=True)
class Required:
    """A flag a profile cannot run without, and the environment variable that can supply it."""

    flag: str
    env: tuple[str, ...]
    what: str


REQUIRED: dict[str, tuple[Required, ...]] = {
    "portable": (
        Required("--job_endpoint", ("BEAMLINE_JOB_ENDPOINT",), "the Beam job service, HOST:PORT"),
    ),
    "dataflow": (
        Required(
            "--project", ("BEAMLINE_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT"), "the GCP project id"
        ),
        Required("--region", ("BEAMLINE_GCP_REGION",), "the Dataflow region, e.g. us-central1"),
        Required(
            "--temp_location", ("BEAMLINE_TEMP_LOCATION",), "a gs:// path for Dataflow temp files"
        ),
    ),
    "flink": (
        Required("--flink_master", (FLINK_MASTER_ENV,), "the Flink REST endpoint, HOST:PORT"),
        Required(
            "--flink_job_server_jar", (FLINK_JAR_ENV,),
            "the Beam runner jar (`beamline flink fetch` builds one)",
        ),
    ),
    "spark": (
        Required(
            "--spark_master_url", ("BEAMLINE_SPARK_MASTER",), "the Spark master, spark://HOST:PORT"
        ),
    ),
}

# With these SDK harness environments the workers run a container (or an external worker pool)
# that must have TFX and the project installed, so Beam's stock SDK image will not do.
_ENVIRONMENTS_NEEDING_CONFIG = {"DOCKER", "EXTERNAL"}
_ENVIRONMENT_CONFIG_ENV = "BEAMLINE_SDK_ENVIRONMENT_CONFIG"


def profile_names() -> list[str]:
    return [AUTO, *PROFILES]


def choose_profile(profile: str, input_bytes: int) -> str:
    """Resolves `auto` to a concrete profile from the input size; other names pass through."""
    if profile != AUTO:
        return profile
    return "direct" if input_bytes <= IN_MEMORY_MAX_BYTES else "direct-multi"


def beam_args(
    profile: str,
    input_bytes: int = 0,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Beam pipeline args for a profile, with raw `extra` args overriding same-named flags.

    Required values missing from `extra` are read from `env` (default: `os.environ`).
    """
    name = choose_profile(profile, input_bytes)
    if name not in PROFILES:
        raise ConfigError(
            f"Unknown Beam profile {name!r}. Choose one of: {', '.join(profile_names())}; "
            "raw Beam flags can be added with --beam-arg."
        )
    env = os.environ if env is None else env
    args = merge_args(PROFILES[name], extra)
    present = {_flag_name(a) for a in args}
    missing: list[str] = []
    for req in REQUIRED.get(name, ()):
        if req.flag in present:
            continue
        value = next((env[var] for var in req.env if env.get(var)), None)
        if value is None:
            missing.append(
                f"{req.flag} ({req.what}; --beam-arg={req.flag}=... or ${' or $'.join(req.env)})"
            )
        else:
            args.append(f"{req.flag}={value}")
    environment_type = flag_value(args, "--environment_type")
    if (
        environment_type is not None
        and environment_type.upper() in _ENVIRONMENTS_NEEDING_CONFIG
        and flag_value(args, "--environment_config") is None
    ):
        pool = env.get(FLINK_WORKER_POOL_ENV) if (
            name == "flink" and environment_type.upper() == "EXTERNAL") else None
        config = pool or env.get(_ENVIRONMENT_CONFIG_ENV)
        if config:
            args.append(f"--environment_config={config}")
        else:
            missing.append(
                f"--environment_config (the SDK harness: for DOCKER the pipeline image, for "
                f"EXTERNAL a worker pool HOST:PORT; --beam-arg=--environment_config=... or "
                f"${_ENVIRONMENT_CONFIG_ENV}"
                + (f" or ${FLINK_WORKER_POOL_ENV}" if name == "flink" else "") + ")"
            )
    if missing:
        raise ConfigError(
            f"The Beam profile {name!r} needs values Beamline cannot guess: "
            + "; ".join(missing)
            + ". docs/guides/beam-profiles.md lists each profile's flags."
        )
    return args


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def flag_value(args: Sequence[str], flag: str) -> str | None:
    """The value of the last `flag=value` in `args`, or None."""
    value = None
    for arg in args:
        name, sep, rest = arg.partition("=")
        if name == flag and sep:
            value = rest
    return value


def merge_args(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """`base` args with any flag that also appears in `extra` replaced by extra's value."""
    overridden = {_flag_name(a) for a in extra}
    return [a for a in base if _flag_name(a) not in overridden] + list(extra)
