"""Kubeflow/Vertex compile with `--beam flink`: every Beam step gets the same Beam args as a
local `--beam flink` run (uber jar to the team's Flink, EXTERNAL worker pool sidecar)."""

from __future__ import annotations

import pytest

from beamline.deploy import compile as compiler

BEAM_STEPS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")
FLINK_ARGS = (
    "--flink_master=flink-jobmanager.flink:8081",
    "--environment_config=localhost:50000",
    "--flink_job_server_jar=/pipeline/jars/beamline-flink-runner.jar",
)


@pytest.mark.parametrize("target", ["kubeflow", "vertex"])
def test_each_beam_step_carries_the_flink_profile_args(target, options_fn):
    options = options_fn(target, beam="flink", beam_extra=FLINK_ARGS)
    compiled = compiler.compile_pipeline("penguin", options)
    assert compiled.beam_args == [
        "--runner=FlinkRunner",
        "--flink_submit_uber_jar",
        "--flink_version=1.18",
        "--environment_type=EXTERNAL",
        "--experiments=pre_optimize=all",
        *FLINK_ARGS,
    ]
    executors = compiled.job["pipelineSpec"]["deploymentSpec"]["executors"]
    for step in BEAM_STEPS:
        args = executors[f"{step}_executor"]["container"]["args"]
        assert args[-len(compiled.beam_args):] == compiled.beam_args, step


def test_flink_compile_without_a_master_names_what_is_missing(options_fn, monkeypatch):
    for var in ("BEAMLINE_FLINK_MASTER", "BEAMLINE_FLINK_WORKER_POOL", "BEAMLINE_FLINK_JAR"):
        monkeypatch.delenv(var, raising=False)
    from beamline.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        compiler.check_options(options_fn("kubeflow", beam="flink"))
    assert "--flink_master" in str(info.value) and "BEAMLINE_FLINK_MASTER" in str(info.value)
