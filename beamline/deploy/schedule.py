"""Recurring runs of a compiled pipeline: a KFP recurring run or a Vertex AI PipelineJobSchedule.

Like one-off submits, each target first builds the exact request; `--dry-run` prints it:
- Kubeflow: the `V2beta1RecurringRun` body kfp 2.5's `Client.create_recurring_run` builds, POSTed
  to `<host>/apis/v2beta1/recurringruns` after kfp gets or creates the experiment. KFP's cron has
  6 fields, seconds first (a 5-field cron gets `0` seconds); the package is the PipelineSpec YAML
  (kfp refuses `.json` packages); `no_catchup` is on unless `--catchup` (KFP backfills every
  missed interval otherwise) and at most `--max-concurrency` runs (default 1) run at once;
- Vertex: the `Schedule` resource google-cloud-aiplatform's `PipelineJobSchedule` builds, sent
  as `ScheduleService.CreateSchedule(parent, schedule)`. Vertex's cron has 5 fields, with an
  optional `CRON_TZ=`/`TZ=` prefix.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamline.deploy import submit as sub
from beamline.errors import ConfigError

MAX_CONCURRENCY = 10  # KFP's server accepts 1-10


@dataclass(frozen=True)
class Schedule:
    cron: str  # as the user gave it (5 fields; 6 with seconds first for Kubeflow)
    max_concurrency: int = 1
    catchup: bool = False
    name: str | None = None


def _check_fields(fields: list[str], original: str, target: str, expected: str) -> None:
    from croniter import croniter

    if not croniter.is_valid(" ".join(fields)):
        raise ConfigError(
            f"--schedule {original!r} is not a valid cron expression for {target}: it takes "
            f"{expected}. Nothing was sent."
        )


def kfp_cron(cron: str) -> str:
    """KFP's 6-field cron (seconds first) for a 5- or 6-field expression."""
    fields = cron.split()
    expected = "6 fields, seconds first ('0 0 3 * * *' is 03:00 daily), or 5 standard fields"
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ConfigError(
            f"--schedule {cron!r} is not a valid cron expression for Kubeflow Pipelines: it "
            f"takes {expected}. Nothing was sent."
        )
    # Seconds have the syntax and range of minutes: check them in the minutes position.
    _check_fields([fields[0], "*", "*", "*", "*"], cron, "Kubeflow Pipelines", expected)
    _check_fields(fields[1:], cron, "Kubeflow Pipelines", expected)
    return " ".join(fields)


def vertex_cron(cron: str) -> str:
    """Vertex AI's 5-field cron, keeping an optional `CRON_TZ=`/`TZ=` prefix."""
    prefix, fields = "", cron.split()
    if fields and fields[0].startswith(("CRON_TZ=", "TZ=")):
        prefix, fields = fields[0] + " ", fields[1:]
    expected = "5 fields, optionally after CRON_TZ=Area/City ('0 3 * * *' is 03:00 daily)"
    if len(fields) == 6:
        raise ConfigError(
            f"--schedule {cron!r} has 6 fields, but Vertex AI schedules take {expected}: drop "
            "the seconds field. Nothing was sent."
        )
    if len(fields) != 5:
        raise ConfigError(
            f"--schedule {cron!r} is not a valid cron expression for Vertex AI: it takes "
            f"{expected}. Nothing was sent."
        )
    _check_fields(fields, cron, "Vertex AI", expected)
    return prefix + " ".join(fields)


def check(schedule: Schedule) -> None:
    if not 1 <= schedule.max_concurrency <= MAX_CONCURRENCY:
        raise ConfigError(
            f"--max-concurrency {schedule.max_concurrency} must be between 1 and "
            f"{MAX_CONCURRENCY} (Kubeflow Pipelines' limit)."
        )


def _name(job: Mapping[str, Any], schedule: Schedule) -> str:
    base = job.get("displayName") or job["pipelineSpec"]["pipelineInfo"]["name"]
    return schedule.name or f"{base} schedule"


# --- Kubeflow Pipelines --------------------------------------------------------------------------


def kubeflow_recurring_request(
    job: Mapping[str, Any],
    target: sub.KubeflowTarget,
    params: Mapping[str, str],
    schedule: Schedule,
) -> dict[str, Any]:
    """What `create_kubeflow_recurring_run` sends, built as kfp's `create_recurring_run` does."""
    import kfp_server_api

    check(schedule)
    config = sub.kfp_job_config(job, target, params)
    body = kfp_server_api.V2beta1RecurringRun(
        experiment_id=f"<id of experiment {target.experiment!r}>",
        mode=kfp_server_api.RecurringRunMode.ENABLE,
        pipeline_spec=config.pipeline_spec,
        pipeline_version_reference=config.pipeline_version_reference,
        runtime_config=config.runtime_config,
        display_name=_name(job, schedule),
        description=None,
        no_catchup=not schedule.catchup,
        trigger=kfp_server_api.V2beta1Trigger(
            cron_schedule=kfp_server_api.V2beta1CronSchedule(cron=kfp_cron(schedule.cron))
        ),
        max_concurrency=schedule.max_concurrency,
        service_account=target.service_account,
    )
    return sub.kfp_post(target, "recurringruns", body)


def create_kubeflow_recurring_run(
    job: Mapping[str, Any],
    target: sub.KubeflowTarget,
    params: Mapping[str, str],
    schedule: Schedule,
) -> dict[str, str]:
    """Creates the recurring run with kfp's Client; returns its id and URL."""
    check(schedule)
    cron = kfp_cron(schedule.cron)
    if not target.host.startswith(("http://", "https://")):
        raise ConfigError(f"--host {target.host!r} must be an http:// or https:// URL.")
    sub.probe_kubeflow(target.host)
    import kfp
    import kfp_server_api

    try:
        with contextlib.redirect_stdout(sys.stderr):
            client = kfp.Client(
                host=target.host,
                namespace=target.namespace or "kubeflow",
                existing_token=sub.kfp_token(),
            )
            experiment = client.create_experiment(target.experiment, namespace=target.namespace)
            with sub.kfp_package(job) as package:  # a .yaml: kfp refuses .json packages
                result = client.create_recurring_run(
                    experiment_id=experiment.experiment_id,
                    job_name=_name(job, schedule),
                    cron_expression=cron,
                    max_concurrency=schedule.max_concurrency,
                    no_catchup=not schedule.catchup,
                    params=sub.job_parameters(job, params),
                    pipeline_package_path=package,
                    enabled=True,
                    pipeline_root=sub.pipeline_root(job),
                    enable_caching=target.enable_caching,
                    service_account=target.service_account,
                )
    except kfp_server_api.ApiException as exc:
        raise sub.SubmitFailed(
            f"Kubeflow Pipelines at {target.host} refused the recurring run: HTTP {exc.status} "
            f"{exc.reason}. {(exc.body or '').strip()[:500]}"
        ) from exc
    except (TimeoutError, OSError) as exc:
        raise sub.SubmitFailed(f"Kubeflow Pipelines at {target.host} failed: {exc}") from exc
    run_id = result.recurring_run_id
    return {
        "recurring_run_id": run_id,
        "url": f"{target.host.rstrip('/')}/#/recurringruns/details/{run_id}",
    }


# --- Vertex AI -----------------------------------------------------------------------------------


def vertex_schedule(
    path: Path, job, target: sub.VertexTarget, params, schedule: Schedule, credentials
):
    """The aiplatform PipelineJobSchedule with the fields `create` sets (nothing sent)."""
    from google.cloud import aiplatform

    check(schedule)
    cron = vertex_cron(schedule.cron)
    pipeline_job = sub.vertex_job(path, job, target, params, credentials=credentials)
    result = aiplatform.PipelineJobSchedule(
        pipeline_job=pipeline_job,
        display_name=_name(job, schedule),
        credentials=credentials,
        project=target.project,
        location=target.region,
    )
    # What PipelineJobSchedule._create sets before sending (values of 0/False are dropped).
    resource = result._gca_resource
    resource.cron = cron
    resource.max_concurrent_run_count = schedule.max_concurrency
    if target.service_account:
        resource.create_pipeline_job_request.pipeline_job.service_account = target.service_account
    if target.network:
        resource.create_pipeline_job_request.pipeline_job.network = target.network
    return result


def vertex_schedule_request(path: Path, job, target: sub.VertexTarget, params, schedule) -> dict:
    """What `create_vertex_schedule` sends, built without credentials or network."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1.types import Schedule as ScheduleProto

    result = vertex_schedule(path, job, target, params, schedule, AnonymousCredentials())
    endpoint = target.api_endpoint or f"{target.region}-aiplatform.googleapis.com"
    return {
        "target": "vertex",
        "endpoint": endpoint,
        "rpc": "google.cloud.aiplatform.v1.ScheduleService.CreateSchedule",
        "parent": result._parent,
        "schedule": json.loads(ScheduleProto.to_json(result._gca_resource)),
    }


def create_vertex_schedule(path: Path, job, target: sub.VertexTarget, params, schedule) -> dict:
    """Creates the schedule with Application Default Credentials; returns its name."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    check(schedule)
    vertex_cron(schedule.cron)
    credentials = sub.vertex_credentials()
    result = vertex_schedule(path, job, target, params, schedule, credentials)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result.create(
                cron=result._gca_resource.cron,
                max_concurrent_run_count=schedule.max_concurrency,
                service_account=target.service_account,
                network=target.network,
                create_request_timeout=120,
            )
    except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError) as exc:
        raise sub.SubmitFailed(
            f"Vertex AI in {target.project}/{target.region} did not accept the schedule: "
            f"{str(exc).splitlines()[0][:500]}"
        ) from exc
    return {"name": result.resource_name}
