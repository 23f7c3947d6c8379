"""`beamline compile`: a pipeline -> a Kubeflow Pipelines v2 / Vertex AI PipelineJob JSON."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.beam import profile_names


@click.command("compile")
@click.argument("pipeline")
@click.option(
    "--target", type=click.Choice(["kubeflow", "vertex"]), required=True, help="Orchestrator."
)
@click.option("--image", required=True, help="Pipeline image built from the Dockerfile.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the PipelineJob JSON.",
)
@click.option(
    "--pipeline-root",
    envvar="BEAMLINE_PIPELINE_ROOT",
    required=True,
    help="Storage URI for artifacts, e.g. gs://BUCKET/beamline ($BEAMLINE_PIPELINE_ROOT).",
)
@click.option("--data-root", help="Input data URI (default: the pipeline's default_data_root()).")
@click.option("--serving-dir", help="Push destination (default: PIPELINE_ROOT/serving/NAME).")
@click.option(
    "--beam",
    "beam_profile",
    type=click.Choice(profile_names()),
    default="direct",
    show_default=True,
    help="Beam profile every Beam-powered step runs with.",
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
@click.option("--no-tuning", is_flag=True, help="Build the pipeline without the Tuner.")
@click.option("--display-name", help="Display name of the job (default: the pipeline name).")
def compile_command(
    pipeline: str,
    target: str,
    image: str,
    out: Path,
    pipeline_root: str,
    data_root: str | None,
    serving_dir: str | None,
    beam_profile: str,
    beam_extra: tuple[str, ...],
    secret_specs: tuple[str, ...],
    no_tuning: bool,
    display_name: str | None,
) -> None:
    """Compile PIPELINE with TFX's KubeflowV2DagRunner into a PipelineJob JSON for --target.

    Module files and schemas are referenced inside --image (the project lives at /pipeline
    there), so rebuild the image when they change. No secret value is ever written: declare
    secrets with --secret and they are resolved in each step's container at run time.
    """
    from beamline.deploy import compile as compiler
    from beamline.deploy.secrets import parse_secret

    options = compiler.CompileOptions(
        target=target,
        image=image,
        pipeline_root=pipeline_root,
        data_root=data_root,
        serving_dir=serving_dir,
        beam=beam_profile,
        beam_extra=beam_extra,
        secrets=tuple(parse_secret(s) for s in secret_specs),
        enable_tuning=not no_tuning,
        display_name=display_name,
    )
    compiler.check_options(options)  # fail on flags before paying for the TFX import
    compiler.check_out(out)
    compiled = compiler.compile_pipeline(pipeline, options)
    compiler.write_job(compiled.job, out)
    for warning in compiled.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"Compiled {pipeline} for {target}: {len(compiled.tasks)} tasks "
        f"({', '.join(compiled.tasks)}), image {image}, Beam args "
        f"{' '.join(compiled.beam_args)} -> {out}"
    )
