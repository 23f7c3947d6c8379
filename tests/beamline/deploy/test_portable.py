"""The `portable` Beam profile for real: Beam's own Python job service on loopback runs the
penguin pipeline's ExampleGen, StatisticsGen and Transform through PortableRunner (LOOPBACK).

Flink and Spark job servers are downloaded from Maven at run time, which is not possible here;
they speak the same Job API as this job service.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beamline import beam, registry

NODES = ("CsvExampleGen", "StatisticsGen", "Transform")
pytestmark = pytest.mark.slow  # three real TFX nodes through Beam's portable runner


@pytest.fixture(scope="module")
def job_service(tmp_path_factory):
    base = tmp_path_factory.mktemp("job-service")
    log, port_file = base / "job_service.log", base / "job_service.port"
    with log.open("w") as out:
        # Port 0: the service binds a port of its own and writes it to --port_file (renamed
        # into place), so no port is picked here and lost to another process meanwhile.
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apache_beam.runners.portability.local_job_service_main",
                "--port=0",
                f"--port_file={port_file}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"job service did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text())
        socket.create_connection(("127.0.0.1", port), timeout=30).close()
        yield f"localhost:{port}", log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _jobs(endpoint: str) -> list:
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
        return list(stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=30).job_info)


def test_penguin_example_gen_statistics_transform_on_the_portable_runner(job_service, tmp_path):
    from apache_beam.portability.api import beam_job_api_pb2
    from ml_metadata.metadata_store import metadata_store
    from tfx import v1 as tfx
    from tfx.orchestration.pipeline import RunOptions

    from beamline.data.files import resolve_data
    from beamline.metadata.connection import sqlite_config
    from beamline.settings import PipelineSettings

    endpoint, log = job_service
    args = beam.beam_args("portable", extra=[f"--job_endpoint={endpoint}"], env={})
    assert args == [
        "--runner=PortableRunner",
        "--environment_type=LOOPBACK",
        beam.PORTABLE_JOB_TIMEOUT,
        f"--job_endpoint={endpoint}",
    ]
    module = registry.load_module("penguin")
    data = resolve_data(Path(module.default_data_root()))
    mlmd = sqlite_config(tmp_path / "metadata.sqlite")
    settings = PipelineSettings(
        pipeline_name="penguin",
        pipeline_root=str(tmp_path / "root"),
        data_root=str(data.root),
        data_pattern=data.pattern,
        serving_dir=str(tmp_path / "serving"),
        schema_path=str(registry.get("penguin").schema_path),
        enable_tuning=False,
        beam_pipeline_args=tuple(args),
        metadata_connection_config=mlmd,
    )
    pipeline = module.create_pipeline(settings)
    assert set(NODES) <= {node.id for node in pipeline.components}

    tfx.orchestration.LocalDagRunner().run(pipeline, run_options=RunOptions(to_nodes=list(NODES)))

    store = metadata_store.MetadataStore(mlmd)
    by_type = {}
    for artifact in store.get_artifacts():
        type_name = store.get_artifact_types_by_id([artifact.type_id])[0].name
        by_type.setdefault(type_name, []).append(artifact)
    for type_name in ("Examples", "ExampleStatistics", "Schema", "TransformGraph"):
        assert by_type.get(type_name), f"no {type_name} artifact"
        for artifact in by_type[type_name]:
            assert any(Path(artifact.uri).rglob("*")), f"{type_name} at {artifact.uri} is empty"
    assert "Model" not in by_type  # the partial run stopped after Transform

    jobs = _jobs(endpoint)
    # ExampleGen, StatisticsGen and Transform's analyze and transform phases each ran as Beam
    # jobs on the job service, and all finished.
    assert len(jobs) >= 3, log.read_text()[-3000:]
    assert {job.state for job in jobs} == {beam_job_api_pb2.JobState.DONE}
