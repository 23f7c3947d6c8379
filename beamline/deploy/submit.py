"""Submit a compiled PipelineJob JSON to Kubeflow Pipelines (kfp's Client) or Vertex AI.

Both targets build the exact request first; `--dry-run` prints it instead of sending it:
- Kubeflow: the `V2beta1Run` body kfp 2.5's own `Client._create_job_config` builds from the
  package, POSTed to `<host>/apis/v2beta1/runs` after kfp gets or creates the experiment;
- Vertex: the `PipelineJob` resource google-cloud-aiplatform builds, sent as
  `PipelineService.CreatePipelineJob(parent, pipeline_job, pipeline_job_id)`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamline.errors import BeamlineError, ConfigError

KFP_TOKEN_ENV = "BEAMLINE_KFP_TOKEN"
_PROBE_TIMEOUT_S = 10


class SubmitFailed(BeamlineError):
    """The orchestrator could not be reached or refused the run."""


@dataclass(frozen=True)
class KubeflowTarget:
    host: str
    experiment: str = "Default"
    namespace: str | None = None
    run_name: str | None = None
    service_account: str | None = None
    enable_caching: bool | None = None


@dataclass(frozen=True)
class VertexTarget:
    project: str
    region: str
    job_id: str | None = None
    display_name: str | None = None
    service_account: str | None = None
    network: str | None = None
    enable_caching: bool | None = None
    api_endpoint: str | None = None


def load_job(path: Path) -> dict[str, Any]:
    """Reads a compiled PipelineJob JSON and checks that its pipelineSpec parses."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"No compiled pipeline at {path}: run `beamline compile` first.") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a compiled pipeline JSON: {exc}") from exc
    if not isinstance(job, dict) or "pipelineSpec" not in job:
        raise ConfigError(
            f"{path} has no pipelineSpec: pass the JSON written by `beamline compile`."
        )
    try:
        json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as exc:
        raise ConfigError(f"{path}: pipelineSpec is not a valid KFP PipelineSpec: {exc}") from exc
    return job


def parse_params(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    params = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"Bad --param {value!r}: use NAME=VALUE.")
        params[key] = rest
    return params


def job_parameters(job: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """Runtime parameter values compiled into the job, as plain values, with `overrides`."""
    runtime = job.get("runtimeConfig", {})
    params: dict[str, Any] = dict(runtime.get("parameterValues", {}))
    for name, value in runtime.get("parameters", {}).items():  # schema 2.0.0: typed values
        params[name] = next(iter(value.values())) if value else None
    params.update(overrides)
    return params


def pipeline_root(job: Mapping[str, Any]) -> str | None:
    return job.get("runtimeConfig", {}).get("gcsOutputDirectory")


def _run_name(job: Mapping[str, Any], name: str | None) -> str:
    base = job.get("displayName") or job["pipelineSpec"]["pipelineInfo"]["name"]
    return name or f"{base} {datetime.datetime.now():%Y-%m-%d %H-%M-%S}"


# --- Kubeflow Pipelines --------------------------------------------------------------------------


@contextlib.contextmanager
def kfp_package(job: Mapping[str, Any]) -> Iterator[str]:
    """The job as a kfp package file: the PipelineSpec YAML document, then the platform spec."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="beamline-kfp-") as tmp:
        path = os.path.join(tmp, "pipeline.yaml")
        docs = [job["pipelineSpec"]]
        if job.get("platformSpec"):
            docs.append(job["platformSpec"])
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump_all(docs, f, sort_keys=True)
        yield path


def kfp_job_config(job: Mapping[str, Any], target: KubeflowTarget, params: Mapping[str, str]):
    """kfp's own request builder (it uses no client state), so this is what its Client sends."""
    import kfp

    with kfp_package(job) as package:
        return kfp.Client._create_job_config(
            None,
            params=job_parameters(job, params),
            pipeline_package_path=package,
            pipeline_id=None,
            version_id=None,
            enable_caching=target.enable_caching,
            pipeline_root=pipeline_root(job),
        )


def kubeflow_request(
    job: Mapping[str, Any], target: KubeflowTarget, params: Mapping[str, str]
) -> dict[str, Any]:
    """What `submit_kubeflow` sends: the experiment it gets or creates and the run body."""
    import kfp_server_api

    config = kfp_job_config(job, target, params)
    run = kfp_server_api.V2beta1Run(
        experiment_id=f"<id of experiment {target.experiment!r}>",
        display_name=_run_name(job, target.run_name),
        pipeline_spec=config.pipeline_spec,
        pipeline_version_reference=config.pipeline_version_reference,
        runtime_config=config.runtime_config,
        service_account=target.service_account,
    )
    return kfp_post(target, "runs", run)


def kfp_post(target: KubeflowTarget, collection: str, body: Any) -> dict[str, Any]:
    """The dry-run form of a POST kfp's Client makes to `<host>/apis/v2beta1/<collection>`."""
    import kfp_server_api

    return {
        "target": "kubeflow",
        # kfp gets the experiment by name in this namespace, creating it when missing.
        "experiment": {"display_name": target.experiment, "namespace": target.namespace or ""},
        "method": "POST",
        "url": f"{target.host.rstrip('/')}/apis/v2beta1/{collection}",
        "body": kfp_server_api.ApiClient().sanitize_for_serialization(body),
    }


def kfp_token() -> str | None:
    return os.environ.get(KFP_TOKEN_ENV) or None


def probe_kubeflow(host: str) -> None:
    """Fails fast, with one clear message, when nothing answers at `host`."""
    url = host.rstrip("/") + "/apis/v2beta1/healthz"
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        pass  # something answered (maybe an auth proxy): let kfp's Client handle it
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SubmitFailed(
            f"Cannot reach Kubeflow Pipelines at {host} ({reason}). Check --host: it is the "
            "KFP API/UI endpoint, e.g. http://localhost:8080 after `kubectl port-forward -n "
            "kubeflow svc/ml-pipeline-ui 8080:80`, or your cluster's Pipelines URL."
        ) from exc


def submit_kubeflow(
    job: Mapping[str, Any], target: KubeflowTarget, params: Mapping[str, str]
) -> dict[str, str]:
    """Creates a run with kfp's Client; returns its id and URL."""
    if not target.host.startswith(("http://", "https://")):
        raise ConfigError(f"--host {target.host!r} must be an http:// or https:// URL.")
    probe_kubeflow(target.host)
    import kfp
    import kfp_server_api

    try:
        with contextlib.redirect_stdout(sys.stderr):  # kfp prints links; keep stdout for us
            client = kfp.Client(
                host=target.host,
                namespace=target.namespace or "kubeflow",
                existing_token=kfp_token(),
            )
            with kfp_package(job) as package:
                result = client.create_run_from_pipeline_package(
                    package,
                    arguments=job_parameters(job, params),
                    run_name=_run_name(job, target.run_name),
                    experiment_name=target.experiment,
                    namespace=target.namespace,
                    pipeline_root=pipeline_root(job),
                    enable_caching=target.enable_caching,
                    service_account=target.service_account,
                )
    except kfp_server_api.ApiException as exc:
        raise SubmitFailed(
            f"Kubeflow Pipelines at {target.host} refused the run: HTTP {exc.status} "
            f"{exc.reason}. {(exc.body or '').strip()[:500]} For a multi-user cluster pass a "
            f"token in ${KFP_TOKEN_ENV} and --namespace."
        ) from exc
    except (TimeoutError, OSError) as exc:
        raise SubmitFailed(f"Kubeflow Pipelines at {target.host} failed: {exc}") from exc
    host = target.host.rstrip("/")
    return {"run_id": result.run_id, "url": f"{host}/#/runs/details/{result.run_id}"}


# --- Vertex AI -----------------------------------------------------------------------------------


def vertex_job(path: Path, job: Mapping[str, Any], target: VertexTarget, params, credentials=None):
    """The aiplatform PipelineJob for the compiled file (no request is sent)."""
    from google.cloud import aiplatform

    root = pipeline_root(job)
    if not (root or "").startswith("gs://"):
        raise ConfigError(
            f"{path} was compiled with pipeline root {root!r}; Vertex AI needs gs://: "
            "recompile with --target vertex --pipeline-root gs://BUCKET/PATH."
        )
    if job.get("platformSpec"):
        raise ConfigError(
            f"{path} mounts Kubernetes Secrets, which Vertex AI cannot do: recompile with "
            "--target vertex and gcp: secret sources."
        )
    if target.api_endpoint:
        aiplatform.init(api_endpoint=target.api_endpoint)
    try:
        pipeline_job = aiplatform.PipelineJob(
            display_name=target.display_name or job.get("displayName"),
            template_path=str(path),
            job_id=target.job_id,
            pipeline_root=root,
            parameter_values=job_parameters(job, params),
            enable_caching=target.enable_caching,
            project=target.project,
            location=target.region,
            credentials=credentials,
        )
    except ValueError as exc:
        raise ConfigError(f"Vertex AI rejects the job locally: {exc}") from exc
    # What PipelineJob.submit() sets on the resource before sending it.
    if target.service_account:
        pipeline_job._gca_resource.service_account = target.service_account
    if target.network:
        pipeline_job._gca_resource.network = target.network
    return pipeline_job


def vertex_request(path: Path, job: Mapping[str, Any], target: VertexTarget, params) -> dict:
    """What `submit_vertex` sends, built without credentials or network."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1.types import PipelineJob

    pipeline_job = vertex_job(path, job, target, params, credentials=AnonymousCredentials())
    endpoint = target.api_endpoint or f"{target.region}-aiplatform.googleapis.com"
    return {
        "target": "vertex",
        "endpoint": endpoint,
        "rpc": "google.cloud.aiplatform.v1.PipelineService.CreatePipelineJob",
        "parent": pipeline_job._parent,
        "pipeline_job_id": pipeline_job.job_id,
        "pipeline_job": json.loads(PipelineJob.to_json(pipeline_job._gca_resource)),
    }


def vertex_credentials():
    """Application Default Credentials with a fresh token, or one clear error (no network: fast)."""
    import google.auth
    from google.auth import exceptions as auth_exceptions

    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    except auth_exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            "No Google credentials for Vertex AI: run `gcloud auth application-default login` or "
            "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file. "
            f"({str(exc).splitlines()[0]})"
        ) from exc
    # Fail fast without network: otherwise aiplatform first spends minutes retrying its
    # pipeline-root bucket check.
    try:
        from google.auth.transport.requests import Request

        credentials.refresh(Request())
    except auth_exceptions.GoogleAuthError as exc:
        raise SubmitFailed(
            "Cannot get a Google access token, so nothing was sent to Vertex AI: "
            f"{str(exc).splitlines()[0][:300]}. Check network access to Google APIs and the "
            "credentials (gcloud auth application-default login)."
        ) from exc
    return credentials


def submit_vertex(path: Path, job: Mapping[str, Any], target: VertexTarget, params) -> dict:
    """Submits with Application Default Credentials; returns the job's resource name and URL."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    credentials = vertex_credentials()
    pipeline_job = vertex_job(path, job, target, params, credentials=credentials)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            pipeline_job.submit(
                service_account=target.service_account,
                network=target.network,
                create_request_timeout=120,
            )
    except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
        raise SubmitFailed(
            f"Vertex AI in {target.project}/{target.region} did not accept the job: "
            f"{str(exc).splitlines()[0][:500]}"
        ) from exc
    return {"name": pipeline_job.resource_name, "url": pipeline_job._dashboard_uri()}
