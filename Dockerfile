# syntax=docker/dockerfile:1
# The pipeline image for `beamline compile --image IMAGE`: every step of a compiled pipeline runs in
# it, and Dataflow / Flink / Spark workers can use it as their Beam SDK container.
#
#   docker build -t REGISTRY/beamline:TAG .   &&   docker push REGISTRY/beamline:TAG
#
# TFX's own image matches the lock (TFX 1.16, Python 3.10); the lock is installed on top, exactly
# as the tests ran. Compiled pipelines reference module files and schemas under /pipeline, so
# rebuild and re-push the image whenever pipelines/, components/ or schemas/ change.
#
# The image also holds Beamline's model server, which starts on its own with TF Serving's flags:
#
#   docker run --entrypoint python -p 8501:8501 -v MODELS:/models:ro REGISTRY/beamline:TAG \
#       -m beamline_serving --model_name=penguin --model_base_path=/models/penguin --host=0.0.0.0
ARG TFX_VERSION=1.16.0
ARG BEAM_VERSION=2.59.0

FROM apache/beam_python3.10_sdk:${BEAM_VERSION} AS beam_sdk

FROM tensorflow/tfx:${TFX_VERSION}

ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline

# Dependencies first, so code changes reuse this layer. The lock pins every transitive package.
COPY requirements.lock ./
RUN python -m pip install --no-deps -r requirements.lock \
    && python -c "import tfx, apache_beam, kfp; assert tfx.__version__ == '1.16.0', tfx.__version__"

# Beam's SDK harness boot binary of the same Beam version as the lock (the image's ENTRYPOINT,
# used when a Beam runner starts this image as an SDK container; Kubeflow/Vertex steps set
# their own command).
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam

# The project, installed in place (editable, no dependencies: the lock has them all), so its
# import names (beamline, beamline_serving, beamline_components, beamline_pipelines) resolve to
# the files under /pipeline that compiled pipelines reference.
COPY pyproject.toml README.md LICENSE ./
COPY beamline ./beamline
COPY serving ./serving
COPY pipelines ./pipelines
COPY components ./components
COPY schemas ./schemas
RUN python -m pip install --no-deps --no-build-isolation -e . \
    && python -c "import beamline_pipelines.penguin, beamline_components.classifier_pipeline"

ENTRYPOINT ["/opt/apache/beam/boot"]
