"""`beamline schema infer`: a first schema.pbtxt for a pipeline, inferred from its data."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.help import Command, Group


@click.group(cls=Group)
def schema() -> None:
    """Schemas: the data contracts pipelines enforce.

    Example:

    \b
        beamline schema infer --data data/penguins.csv --label species --pipeline penguin
    """


@schema.command("infer", cls=Command)
@click.option("--data", "data", type=click.Path(path_type=Path), required=True,
              help="CSV, TFRecord (tf.Example) or Parquet file, or a directory of them.")
@click.option("--label", required=True, help="The column the model predicts: required in "
              "TRAINING, absent in SERVING, its values as the domain.")
@click.option("--pipeline", "-p", default=None,
              help="Pipeline name: writes <project schemas>/<name>/schema.pbtxt [default: the "
              "data directory's name].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write here instead of the project's schemas directory.")
@click.option("--force", is_flag=True, help="Replace an existing schema file.")
def infer_command(data: Path, label: str, pipeline: str | None, out: Path | None,
                  force: bool) -> None:
    """Infer a schema from DATA with TFDV, ready to curate.

    Example:

    \b
        beamline schema infer --data data/penguins.csv --label species --pipeline penguin
    """
    from beamline import project
    from beamline.quiet import quiet_library_logs
    from beamline.schema_infer import infer
    from beamline.settings import apply_tf_environment

    apply_tf_environment()
    quiet_library_logs()
    resolved = data.expanduser().resolve()
    name = pipeline or (resolved.parent.name if resolved.is_file() else resolved.name)
    target = out if out is not None else project.current().schema_path(name)
    written = infer(resolved, name, label, target.expanduser().resolve(), force=force)
    click.echo(f"beamline: wrote {written} (label {label!r}); curate it, then run the pipeline.")
