"""`beamline submit`: a compiled PipelineJob JSON -> a run on Kubeflow Pipelines or Vertex AI, or
with --schedule a KFP recurring run / Vertex AI PipelineJobSchedule."""

from __future__ import annotations

import json
from pathlib import Path

import click

from beamline.commands.help import Command
from beamline.errors import ConfigError


@click.command("submit", cls=Command)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["kubeflow", "vertex"]), required=True)
@click.option("--host", envvar="KF_PIPELINES_ENDPOINT", help="Kubeflow Pipelines URL.")
@click.option("--experiment", default="Default", show_default=True, help="Kubeflow experiment.")
@click.option("--namespace", help="Kubeflow namespace (multi-user clusters).")
@click.option("--project", envvar="GOOGLE_CLOUD_PROJECT", help="Vertex AI: GCP project id.")
@click.option("--region", help="Vertex AI: region, e.g. us-central1.")
@click.option("--job-id", help="Vertex AI: job id (default: NAME-TIMESTAMP).")
@click.option("--network", help="Vertex AI: VPC network to peer with.")
@click.option("--api-endpoint", help="Vertex AI: API endpoint override (private endpoints).")
@click.option("--run-name", help="Run display name (default: PIPELINE TIMESTAMP).")
@click.option("--service-account", help="Run-as service account (Kubernetes or GCP).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Runtime parameter.")
@click.option("--cache/--no-cache", "enable_caching", default=None, help="Override caching.")
@click.option(
    "--schedule",
    metavar="CRON",
    help="Create a recurring run instead of one run: Kubeflow takes 6 fields, seconds first "
    "(5 fields get 0 seconds); Vertex takes 5 fields, optionally after CRON_TZ=Area/City.",
)
@click.option(
    "--max-concurrency",
    type=int,
    default=1,
    show_default=True,
    help="With --schedule: runs that may run at once.",
)
@click.option(
    "--catchup",
    is_flag=True,
    help="With --schedule on Kubeflow: backfill missed intervals (default: no catch-up).",
)
@click.option("--dry-run", is_flag=True, help="Print the request as JSON instead of sending it.")
def submit_command(
    file: Path,
    target: str,
    host: str | None,
    experiment: str,
    namespace: str | None,
    project: str | None,
    region: str | None,
    job_id: str | None,
    network: str | None,
    api_endpoint: str | None,
    run_name: str | None,
    service_account: str | None,
    params: tuple[str, ...],
    enable_caching: bool | None,
    schedule: str | None,
    max_concurrency: int,
    catchup: bool,
    dry_run: bool,
) -> None:
    """Submit FILE (from `beamline compile`) with kfp's Client or Vertex AI's PipelineJob; with
    --schedule, create a KFP recurring run or a Vertex AI PipelineJobSchedule instead.

    Example:

    \b
        beamline submit penguin.json --target vertex --project P --region us-central1 --dry-run
    """
    from beamline.deploy import schedule as sched
    from beamline.deploy import submit as sub

    recurring = None
    if schedule:
        recurring = sched.Schedule(
            cron=schedule, max_concurrency=max_concurrency, catchup=catchup, name=run_name
        )
        sched.check(recurring)
        if target == "kubeflow":
            sched.kfp_cron(schedule)
        else:
            sched.vertex_cron(schedule)

    job = sub.load_job(file)
    values = sub.parse_params(params)
    if target == "kubeflow":
        if not host:
            raise ConfigError("--target kubeflow needs --host URL (or $KF_PIPELINES_ENDPOINT).")
        kfp_target = sub.KubeflowTarget(
            host=host,
            experiment=experiment,
            namespace=namespace,
            run_name=run_name,
            service_account=service_account,
            enable_caching=enable_caching,
        )
        if recurring is not None:
            if dry_run:
                request = sched.kubeflow_recurring_request(job, kfp_target, values, recurring)
                click.echo(json.dumps(request, indent=2))
                return
            made = sched.create_kubeflow_recurring_run(job, kfp_target, values, recurring)
            click.echo(f"Created recurring run {made['recurring_run_id']}: {made['url']}")
            return
        if dry_run:
            click.echo(json.dumps(sub.kubeflow_request(job, kfp_target, values), indent=2))
            return
        result = sub.submit_kubeflow(job, kfp_target, values)
        click.echo(f"Submitted run {result['run_id']}: {result['url']}")
        return
    missing = [flag for flag, value in (("--project", project), ("--region", region)) if not value]
    if missing:
        raise ConfigError(
            f"--target vertex needs {' and '.join(missing)}: the GCP project and region to run "
            "in, e.g. --project my-project --region us-central1 (--project also from "
            "$GOOGLE_CLOUD_PROJECT)."
        )
    vertex_target = sub.VertexTarget(
        project=project,
        region=region,
        job_id=job_id,
        display_name=run_name,
        service_account=service_account,
        network=network,
        enable_caching=enable_caching,
        api_endpoint=api_endpoint,
    )
    if recurring is not None:
        if dry_run:
            request = sched.vertex_schedule_request(file, job, vertex_target, values, recurring)
            click.echo(json.dumps(request, indent=2))
            return
        made = sched.create_vertex_schedule(file, job, vertex_target, values, recurring)
        click.echo(f"Created schedule {made['name']}")
        return
    if dry_run:
        click.echo(json.dumps(sub.vertex_request(file, job, vertex_target, values), indent=2))
        return
    result = sub.submit_vertex(file, job, vertex_target, values)
    click.echo(f"Submitted {result['name']}: {result['url']}")
