"""`beamline init DIR`: a new project of your own, from a table of yours or a bundled example."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.help import Command

TEMPLATE_NAMES = ("penguin", "taxi")
TASK_NAMES = ("auto", "binary", "multiclass", "regression")


@click.command("init", cls=Command)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--data", "data", type=click.Path(path_type=Path), default=None,
              help="Your table (CSV, Parquet or TFRecord of tf.Example; a file, or a directory "
                   "of files or of span directories): the project is generated from it.")
@click.option("--label", default=None,
              help="With --data: the column the model predicts.")
@click.option("--task", type=click.Choice(TASK_NAMES), default="auto", show_default=True,
              help="With --data: what to learn; auto decides from the label (two values: "
                   "binary; a few text values or whole numbers: multiclass; many numbers: "
                   "regression) and says why.")
@click.option("--name", default=None,
              help="With --data: the pipeline's name (default: from the data file's name).")
@click.option("--template", type=click.Choice(TEMPLATE_NAMES), default=None,
              help="Without --data: the example pipeline the project starts from (penguin).")
def init_command(directory: Path, data: Path | None, label: str | None, task: str,
                 name: str | None, template: str | None) -> None:
    """Create a Beamline project in DIRECTORY (new or empty): pyproject.toml with
    [tool.beamline], pipelines/, components/, schemas/, a test and a README.

    With --data and --label, everything is generated from your table: the schema, a Transform
    module that prepares each column by its kind, a model for the task, and a pipeline that
    blesses only a model beating a naive baseline. Without them, the project is a copy of a
    bundled example.

    Example:

    \b
        beamline init churn --data customers.csv --label churned
        beamline init my-project --template penguin
    """
    from beamline.errors import ConfigError

    if data is None:
        if label is not None or name is not None or task != "auto":
            raise ConfigError(
                "--label, --name and --task describe the table given with --data; pass --data "
                "PATH as well (your table), or drop them to start from --template."
            )
        _from_template(directory, template or "penguin")
        return
    if template is not None:
        raise ConfigError(
            "--template starts from a bundled example, --data from your own table: pass one of "
            "them, not both."
        )
    if not label:
        raise ConfigError(
            f"--data {data} needs --label COLUMN: the column of that table the model predicts."
        )
    from beamline.scaffold import init_from_data
    from beamline.settings import apply_tf_environment

    apply_tf_environment()  # before TFDV imports TensorFlow: its C++ start-up logs stay off
    root, table = init_from_data(directory, data, label, task, name)
    decision = table.decision
    left_out = [p for p in table.plans if p.kind == "dropped"]
    lines = [
        f"beamline: created a project in {root} from {table.data} "
        f"({table.rows:,} rows, {len(table.plans)} feature column(s)).",
        f"  task: {decision.task}, because {decision.reason}",
        "  blessing: a model must beat "
        + "; ".join(f"{b.metric} {b.value:.4g} ({b.how})" for b in decision.baselines),
    ]
    if table.rows != table.labelled_rows:
        lines.append(f"  rows without a {table.label!r} value: "
                     f"{table.rows - table.labelled_rows:,} (each run leaves them out)")
    for plan in left_out:
        lines.append(f"  left out: {plan.name} ({plan.reason})")
    lines += [
        f"  cd {root}",
        f"  beamline run {table.name:<12}# trains, evaluates and pushes a model",
        f"  beamline serve{'':<11}# serves what the run pushed",
    ]
    click.echo("\n".join(lines))


def _from_template(directory: Path, template: str) -> None:
    from beamline.scaffold import init

    root = init(directory, template)
    click.echo(
        f"beamline: created a project in {root} from the {template} example.\n"
        f"  cd {root}\n"
        f"  beamline run {template:<12}# trains, evaluates and pushes a model\n"
        f"  beamline serve{'':<11}# serves what the run pushed"
    )
