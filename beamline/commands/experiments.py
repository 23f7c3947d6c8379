"""`beamline experiments PIPELINE`: every run as a row of a table, its Tuner's trials under it."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import json_option, metadata_option, root_option


@click.command(cls=Command)
@click.argument("pipeline")
@root_option("Run root whose metadata.sqlite to read.")
@metadata_option
@click.option("--where", metavar="EXPRESSION", default=None,
              help="Only runs for which EXPRESSION holds: comparisons of columns (= != < <= > "
              ">= ~) with numbers or quoted text, joined by and, or, not and parentheses; a "
              "column alone tests it (\"auc > 0.95 and blessed\"). Never run as code.")
@click.option("--sort", metavar="[-]COLUMN", default=None,
              help="Order runs by COLUMN, -COLUMN for descending; runs without a value last "
              "[default: newest first].")
@click.option("--columns", metavar="A,B,C", default=None,
              help="The table's columns, in this order [default: run, experiment, overrides, "
              "state, hyperparameters, the evaluation's metrics, blessed, version, labels, "
              "span, fingerprint, trigger, duration]. --json gives every column.")
@click.option("--experiment", metavar="NAME", default=None,
              help="Only the runs of the experiment NAME.")
@click.option("--slices", is_flag=True,
              help="Under each run, a row per evaluation slice with its metrics.")
@json_option
def experiments(pipeline, root, metadata, where, sort, columns, experiment, slices,
                as_json) -> None:
    """Every run of PIPELINE as a table: its experiment and overrides, the hyperparameters that
    reached its Trainer, its evaluation's metrics, blessing, pushed version and the labels that
    version holds now, its data (span, input fingerprint), trigger and duration; a row per
    Tuner trial under the run that searched (status, score, hyperparameters). Columns are
    named as --where, --sort and --columns take them: the table's header, each hyperparameter
    by its name (hp.NAME), each override as set.NAME, the last epoch's training metrics as
    train.NAME; `beamline experiments PIPELINE --json` lists them all.

    Example:

    \b
        beamline experiments penguin --where "blessed and units >= 16" --sort -duration
    """
    from beamline.experiments import table as experiments_table
    from beamline.experiments.cache import experiment_rows

    # Rows of ended runs come from the run root's row cache; trials only for the text table
    # (--json prints each row's kept JSON).
    answer = experiment_rows(root, metadata, pipeline, children=not as_json, with_slices=slices)
    rows = answer.rows
    chosen = experiments_table.choose_columns(rows, columns) if not as_json else None
    rows = experiments_table.order(experiments_table.select(rows, where, experiment), sort)
    if as_json:
        click.echo(answer.json_text(rows))
        return
    if not rows:
        which = f" of experiment {experiment!r}" if experiment is not None else ""
        matching = f" for which {where!r} holds" if where else ""
        click.echo(f"No runs of {pipeline!r}{which}{matching}.")
        return
    from beamline.experiments.text import render

    click.echo(render(rows, chosen))
