"""Beam's external worker pool, bound to one address (`python -m beamline.flink.worker_pool`).

Flink's TaskManager asks this pool to start an SDK harness process per Beam environment
(`--environment_type=EXTERNAL --environment_config=HOST:PORT`). Beam's stock
`worker_pool_main` binds every interface (`[::]:PORT`); this launcher serves the same
`BeamFnExternalWorkerPoolServicer` on a gRPC server bound to `--host` only.

The servicer starts each worker as the `python` found on PATH: this interpreter's directory is
put first on PATH, so workers run in the same environment as the pool (apache_beam, TFX, the
project). The TensorFlow environment (TF_USE_LEGACY_KERAS=1, ...) is applied the same way the
runner applies it. On SIGTERM/SIGINT the pool stops its workers, then exits. Runs the same as a
Kubernetes sidecar next to a TaskManager.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from beamline.flink.settings import FLINK_HOST, FLINK_WORKER_POOL_PORT
from beamline.settings import apply_tf_environment


def worker_environment(environ: dict[str, str]) -> dict[str, str]:
    """`environ` with this interpreter first on PATH and the TF environment applied."""
    env = apply_tf_environment(dict(environ))
    bin_dir = os.path.dirname(sys.executable)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    env["PATH"] = os.pathsep.join([bin_dir, *path])
    return env


def serve(host: str, port: int) -> None:
    os.environ.clear()
    os.environ.update(worker_environment(dict(os.environ)))
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.runners.worker.worker_pool_main import (
        BeamFnExternalWorkerPoolServicer,
        kill_process_gracefully,
    )
    from apache_beam.utils import thread_pool_executor

    server = grpc.server(
        thread_pool_executor.shared_unbounded_instance(),
        options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)],
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise SystemExit(f"worker pool: cannot bind {host}:{port}")
    pool = BeamFnExternalWorkerPoolServicer(use_process=True)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    server.start()
    logging.info("worker pool: listening on %s:%s (python %s)", host, bound, sys.executable)
    print(f"worker pool: listening on {host}:{bound}", flush=True)

    done = threading.Event()

    def stop(signum, _frame) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    server.stop(grace=1)
    for worker in list(pool._worker_processes.values()):  # noqa: SLF001 - Beam keeps them here
        kill_process_gracefully(worker, timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=FLINK_HOST,
                        help="address to bind (0.0.0.0 only inside a pod network)")
    parser.add_argument("--port", type=int, default=FLINK_WORKER_POOL_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
