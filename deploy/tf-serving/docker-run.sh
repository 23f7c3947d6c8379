#!/usr/bin/env bash
# Serve a Pusher directory with the real TensorFlow Serving image (production).
#
#   deploy/tf-serving/docker-run.sh [PUSH_DIR] [MODEL_NAME]
#
# PUSH_DIR is what Beamline's Pusher writes: <root>/serving/<model>/<unix-time version>/
# (default: ./beamline_runs/serving/penguin). The same directory that `beamline serve` serves
# locally; clients written against either work unchanged against the other.
# Image tag 2.16.1 matches the project's TensorFlow 2.16 / tensorflow-serving-api 2.16.1.
set -euo pipefail

PUSH_DIR="$(cd "${1:-beamline_runs/serving/penguin}" && pwd)"
MODEL_NAME="${2:-$(basename "$PUSH_DIR")}"
HERE="$(cd "$(dirname "$0")" && pwd)"

exec docker run --rm --name "tf-serving-${MODEL_NAME}" \
  -p 8500:8500 -p 8501:8501 \
  -v "${PUSH_DIR}:/models/${MODEL_NAME}:ro" \
  -v "${HERE}:/config:ro" \
  -e MODEL_NAME="${MODEL_NAME}" \
  tensorflow/serving:2.16.1 \
  --monitoring_config_file=/config/monitoring.config \
  --enable_batching \
  --batching_parameters_file=/config/batching.config \
  --file_system_poll_wait_seconds=30
