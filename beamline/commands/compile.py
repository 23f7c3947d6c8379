"""`beamline compile`: a pipeline -> a Kubeflow Pipelines v2 / Vertex AI PipelineJob JSON, or an
Apache Airflow DAG file (TFX's AirflowDagRunner)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

import click

from beamline.commands.help import Command
from beamline.commands.options import (
    beam_option,
    deprecated_alias,
    loop_watch_options,
    metadata_option,
    new_or_deprecated,
    root_option,
    threshold_options,
)
from beamline.errors import ConfigError
from beamline.monitor.quality import DEFAULT_MAX_INVALID_FRACTION
from beamline.settings import PushPolicy


def _gathered(group: type, name: str):
    """Hands the command the flags of one dataclass as one object, `name`, instead of one
    parameter each (Click passes every option by its name)."""
    names = [f.name for f in dataclasses.fields(group)]

    def decorate(func):
        @functools.wraps(func)
        def command(**params):
            params[name] = group(**{n: params.pop(n) for n in names})
            return func(**params)

        return command

    return decorate


@dataclass(frozen=True)
class KubeflowFlags:
    """--target kubeflow/vertex: the image every step runs in, the storage they share."""

    image: str | None
    pipeline_root: str | None
    display_name: str | None

    def options(self, target: str, **common):
        """deploy.compile's CompileRequest; both flags are required on these targets."""
        missing = [
            f for f, v in (("--image", self.image), ("--pipeline-root", self.pipeline_root))
            if not v
        ]
        if missing:
            raise ConfigError(
                f"--target {target} needs {' and '.join(missing)}: the image every step runs "
                "in (--image REGISTRY/beamline:TAG, built from the Dockerfile) and storage all "
                "steps share (--pipeline-root gs://BUCKET/beamline or $BEAMLINE_PIPELINE_ROOT)."
            )
        from beamline.deploy import compile as compiler

        return compiler.CompileRequest(
            target=target, image=self.image, pipeline_root=self.pipeline_root,
            display_name=self.display_name, **common,
        )


@dataclass(frozen=True)
class AirflowFlags:
    """--target airflow: the run root and store the workers share, and the schedule."""

    root: Path
    metadata: str | None
    schedule: str | None
    start_date: str | None
    retries: int


@dataclass(frozen=True)
class LoopFlags:
    """--loop (airflow): the loop step that gates the DAG, with `beamline loop`'s flags."""

    loop: bool
    data: Path | None
    requests_dir: Path | None
    policy: str
    push_policy: str
    thresholds: tuple[str, ...]
    max_invalid_fraction: float

    def check(self, target: str) -> None:
        """A loop flag is refused off airflow, or without --loop; one paragraph each."""
        given = [
            flag
            for flag, present in (
                ("--data", self.data is not None),
                ("--requests", self.requests_dir is not None),
                ("--threshold", bool(self.thresholds)),
                (f"--push-policy {self.push_policy}", self.push_policy != PushPolicy.LIVE),
            )
            if present
        ]
        if target != "airflow" and (self.loop or given):
            raise ConfigError(
                f"{'--loop' if self.loop else ', '.join(given)} is for --target airflow only: "
                "the loop DAG gates an Airflow DAG behind a `beamline loop` step. For "
                f"{target}, compile without it and run `beamline loop PIPELINE --data DIR "
                "--requests DIR` next to the orchestrator, or use --target airflow --loop."
            )
        if given and not self.loop:
            what = "is a --loop flag" if len(given) == 1 else "are --loop flags"
            raise ConfigError(
                f"{', '.join(given)} {what}: "
                "add --loop to compile a DAG gated by the loop's decision, or leave them out "
                "(the plain DAG's input is --data-root)."
            )

    def settings(self, data_root: str | None, beam_profile: str) -> dict:
        """The loop task's settings (beamline.loop.airflow), the pipeline reading --data."""
        from beamline.loop.airflow import loop_settings
        from beamline.monitor.thresholds import parse_overrides

        data = self.data
        if data_root and data and (
            Path(data_root).expanduser().resolve() != data.expanduser().resolve()
        ):
            raise ConfigError(
                f"--data-root {data_root} and --data {data} differ: with --loop the pipeline "
                "reads the newest span of --data, the directory the loop watches. Give --data "
                "only."
            )
        return loop_settings(
            data=data,
            requests=self.requests_dir,
            policy=self.policy,
            push_policy=self.push_policy,
            thresholds=parse_overrides(self.thresholds),
            max_invalid_fraction=self.max_invalid_fraction,
            beam_profile=beam_profile,
        )


@click.command("compile", cls=Command)
@click.argument("pipeline")
@click.option(
    "--target",
    type=click.Choice(["kubeflow", "vertex", "airflow"]),
    required=True,
    help="Orchestrator.",
)
@click.option("--image", help="kubeflow/vertex: pipeline image built from the Dockerfile.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the PipelineJob JSON (kubeflow/vertex) or the DAG file (airflow).",
)
@click.option(
    "--pipeline-root",
    envvar="BEAMLINE_PIPELINE_ROOT",
    help="kubeflow/vertex: storage URI for artifacts, e.g. gs://BUCKET/beamline "
    "($BEAMLINE_PIPELINE_ROOT).",
)
@click.option("--data-root", help="Input data URI (default: the pipeline's default_data_root()).")
@root_option("airflow: run root for artifacts, MLMD, logs and pushed models.")
@metadata_option
@click.option(
    "--schedule",
    help="airflow: '@daily' (or another preset), a 5-field cron expression, or none "
    "(only triggered runs; the default).",
)
@click.option("--start-date", help="airflow: first schedule date, YYYY-MM-DD [default: today].")
@click.option(
    "--retries", type=int, default=1, show_default=True, help="airflow: retries per task."
)
@click.option("--serving-dir", help="Push destination (default: PIPELINE_ROOT/serving/NAME).")
@beam_option(
    default="direct",
    help_text="Beam profile every Beam-powered step runs with (airflow: also auto).",
)
@click.option("--beam-arg", "beam_extra", multiple=True, help="Raw Beam flag (repeatable).")
@click.option(
    "--secret",
    "secret_specs",
    multiple=True,
    metavar="NAME=SOURCE",
    help="Secret env var resolved at run time: k8s:SECRET/KEY, gcp:projects/P/secrets/S/"
    "versions/V or env. Refer to it in --beam-arg as ${secret:NAME}.",
)
@click.option("--no-tune", is_flag=True, help="Build the pipeline without the Tuner.")
@deprecated_alias("--no-tuning", "--no-tune", is_flag=True)
@click.option("--display-name", help="Display name of the job (default: the pipeline name).")
@click.option(
    "--loop",
    is_flag=True,
    help="airflow: the DAG's first task is a `beamline loop` step; the pipeline tasks run "
    "only when it decides to retrain (needs --data and --requests).",
)
@loop_watch_options(required=False, note="--loop: ")
@threshold_options(DEFAULT_MAX_INVALID_FRACTION, note="--loop: ")
@_gathered(KubeflowFlags, "kubeflow")
@_gathered(AirflowFlags, "airflow")
@_gathered(LoopFlags, "loop")
def compile_command(
    pipeline: str,
    target: str,
    out: Path,
    data_root: str | None,
    serving_dir: str | None,
    beam_profile: str,
    beam_extra: tuple[str, ...],
    secret_specs: tuple[str, ...],
    no_tune: bool,
    no_tune_deprecated: bool,
    kubeflow: KubeflowFlags,
    airflow: AirflowFlags,
    loop: LoopFlags,
) -> None:
    """Compile PIPELINE for --target: a PipelineJob JSON (TFX's KubeflowV2DagRunner) for
    kubeflow/vertex, or a DAG file (TFX's AirflowDagRunner, one task per node) for airflow.

    Kubeflow/Vertex: module files and schemas are referenced inside --image (the project lives at
    /pipeline there), so rebuild the image when they change. Airflow: workers import the
    installed project. No secret value is ever written: declare secrets with --secret and they
    are resolved where each step runs, at run time.

    With --loop (airflow), the DAG's first task is one `beamline loop` step over the DAG run's
    data interval (--data, --requests, --retrain-on, --threshold as for `beamline loop`), and
    the pipeline tasks run only when it decides to retrain.

    Example:

    \b
        beamline compile penguin --target airflow --schedule @daily --out dags/penguin.py
    """
    from beamline.deploy.secrets import parse_secret
    from beamline.quiet import quiet_library_logs

    quiet_library_logs()
    no_tune = new_or_deprecated(no_tune, no_tune_deprecated)
    loop.check(target)
    refs = tuple(parse_secret(s) for s in secret_specs)
    if target == "airflow":
        loop_settings = None
        if loop.loop:
            loop_settings = loop.settings(data_root, beam_profile)
            data_root = loop_settings["data"]
        _compile_airflow(
            pipeline,
            out=out,
            root=airflow.root,
            data_root=data_root,
            metadata=airflow.metadata,
            serving_dir=serving_dir,
            schedule=airflow.schedule,
            start_date=airflow.start_date,
            retries=airflow.retries,
            enable_tuning=not no_tune,
            beam_profile=beam_profile,
            beam_extra=beam_extra,
            refs=refs,
            loop=loop_settings,
        )
        return
    from beamline.deploy import compile as compiler

    options = kubeflow.options(
        target,
        data_root=data_root,
        serving_dir=serving_dir,
        beam=beam_profile,
        beam_extra=beam_extra,
        secrets=refs,
        enable_tuning=not no_tune,
    )
    compiler.check_options(options)  # fail on flags before paying for the TFX import
    compiler.check_out(out)
    compiled = compiler.compile_pipeline(pipeline, options)
    compiler.write_job(compiled.job, out)
    for warning in compiled.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"Compiled {pipeline} for {target}: {len(compiled.tasks)} tasks "
        f"({', '.join(compiled.tasks)}), image {options.image}, Beam args "
        f"{' '.join(compiled.beam_args)} -> {out}"
    )
    for note in compiled.notes:
        click.echo(f"  on {target}: {note}")


def _compile_airflow(
    pipeline: str, *, out: Path, root: Path, refs, loop: dict | None = None, **flags
) -> None:
    from beamline.deploy import airflow_dag

    if out.suffix != ".py":
        raise ConfigError(f"--out {out} must end in .py: Airflow loads DAGs from Python files.")
    settings = airflow_dag.dag_settings(pipeline, root=root, refs=refs, **flags)
    as_dict = airflow_dag.asdict(settings)
    dag = airflow_dag.build_dag(as_dict)  # the DAG Airflow will build
    command = f"beamline compile {pipeline} --target airflow"
    if loop is not None:
        from beamline.loop.airflow import add_loop_tasks

        dag = add_loop_tasks(dag, as_dict, loop)
        command += " --loop"
    text = airflow_dag.render(settings, command, loop)
    airflow_dag.write(text, out, refs)
    gate = (
        f"; gated by the loop (retrain on {loop['policy']}, requests {loop['requests']})"
        if loop is not None
        else ""
    )
    click.echo(
        f"Compiled {pipeline} for airflow: DAG {dag.dag_id!r} with {len(dag.tasks)} tasks "
        f"({', '.join(dag.task_ids)}), schedule "
        f"{settings.schedule or 'none (triggered runs only)'}, run root {settings.root}{gate} "
        f"-> {out}"
    )
