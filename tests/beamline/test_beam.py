"""Beam profiles: names to args, raw overrides, and clear errors for values only a user knows."""

from __future__ import annotations

import pytest

from beamline import beam
from beamline.errors import ConfigError
from beamline.settings import IN_MEMORY_MAX_BYTES


def test_profile_names_cover_every_runner():
    assert beam.profile_names() == [
        "auto",
        "direct",
        "direct-multi",
        "portable",
        "dataflow",
        "flink",
        "spark",
    ]


def test_auto_picks_in_memory_for_small_and_multi_processing_for_large_inputs():
    assert beam.choose_profile("auto", 10) == "direct"
    assert beam.choose_profile("auto", IN_MEMORY_MAX_BYTES + 1) == "direct-multi"
    assert beam.choose_profile("flink", 10) == "flink"
    assert beam.beam_args("auto", 10, env={}) == list(beam.PROFILES["direct"])
    assert "--direct_running_mode=multi_processing" in beam.beam_args(
        "auto", IN_MEMORY_MAX_BYTES + 1, env={}
    )


def test_extra_args_override_same_named_flags():
    args = beam.beam_args("direct", extra=["--direct_num_workers=2", "--foo=bar"], env={})
    assert args == [
        "--runner=DirectRunner",
        "--direct_running_mode=in_memory",
        beam.LOCAL_PICKLE_LIBRARY,
        "--direct_num_workers=2",
        "--foo=bar",
    ]


def test_unknown_profile_names_the_choices():
    with pytest.raises(ConfigError, match="Unknown Beam profile 'nope'.*direct-multi"):
        beam.beam_args("nope")


def test_portable_takes_job_endpoint_from_beam_arg_or_env():
    args = beam.beam_args("portable", extra=["--job_endpoint=localhost:8099"], env={})
    assert args == [
        "--runner=PortableRunner",
        "--environment_type=LOOPBACK",
        beam.PORTABLE_JOB_TIMEOUT,
        "--job_endpoint=localhost:8099",
    ]
    args = beam.beam_args("portable", env={"BEAMLINE_JOB_ENDPOINT": "jobs:8099"})
    assert "--job_endpoint=jobs:8099" in args
    with pytest.raises(ConfigError, match=r"--job_endpoint.*\$BEAMLINE_JOB_ENDPOINT"):
        beam.beam_args("portable", env={})


def test_dataflow_names_every_missing_value_at_once():
    with pytest.raises(ConfigError) as info:
        beam.beam_args("dataflow", extra=["--project=p"], env={})
    message = str(info.value)
    assert "--region" in message and "--temp_location" in message
    assert "--project (" not in message
    args = beam.beam_args(
        "dataflow",
        extra=["--region=europe-west4"],
        env={"GOOGLE_CLOUD_PROJECT": "proj", "BEAMLINE_TEMP_LOCATION": "gs://b/tmp"},
    )
    assert args == [
        "--runner=DataflowRunner",
        "--region=europe-west4",
        "--project=proj",
        "--temp_location=gs://b/tmp",
    ]


def test_flink_submits_an_uber_jar_to_an_external_worker_pool():
    with pytest.raises(ConfigError) as info:
        beam.beam_args("flink", env={})
    for flag in ("--flink_master", "--flink_job_server_jar", "--environment_config"):
        assert flag in str(info.value)
    args = beam.beam_args("flink", env={
        "BEAMLINE_FLINK_MASTER": "m:8081", "BEAMLINE_FLINK_WORKER_POOL": "pool:50000",
        "BEAMLINE_FLINK_JAR": "/jars/runner.jar",
    })
    assert args == [
        "--runner=FlinkRunner", "--flink_submit_uber_jar", "--flink_version=1.18",
        "--environment_type=EXTERNAL", "--experiments=pre_optimize=all",
        "--flink_master=m:8081", "--flink_job_server_jar=/jars/runner.jar",
        "--environment_config=pool:50000",
    ]
    # DOCKER only when asked for, with the image the user names.
    args = beam.beam_args("flink", extra=[
        "--environment_type=DOCKER", "--environment_config=registry/beamline:1",
    ], env={"BEAMLINE_FLINK_MASTER": "m:1", "BEAMLINE_FLINK_WORKER_POOL": "pool:50000",
            "BEAMLINE_FLINK_JAR": "j.jar"})
    assert "--environment_type=DOCKER" in args and "--environment_type=EXTERNAL" not in args
    assert "--environment_config=registry/beamline:1" in args
    assert "--environment_config=pool:50000" not in args


@pytest.mark.parametrize(
    ("profile", "master_flag", "master_env"),
    [
        ("spark", "--spark_master_url", "BEAMLINE_SPARK_MASTER"),
    ],
)
def test_spark_needs_a_master_and_an_sdk_harness(profile, master_flag, master_env):
    with pytest.raises(ConfigError) as info:
        beam.beam_args(profile, env={})
    assert master_flag in str(info.value) and "--environment_config" in str(info.value)
    args = beam.beam_args(
        profile,
        env={master_env: "m:1", "BEAMLINE_SDK_ENVIRONMENT_CONFIG": "registry/beamline:1"},
    )
    assert f"{master_flag}=m:1" in args
    assert "--environment_type=DOCKER" in args
    assert "--environment_config=registry/beamline:1" in args
    # A PROCESS/LOOPBACK harness needs no container image.
    args = beam.beam_args(
        profile, extra=[f"{master_flag}=m:1", "--environment_type=LOOPBACK"], env={}
    )
    assert "--environment_type=LOOPBACK" in args
    assert not any(a.startswith("--environment_config") for a in args)
