"""`beamline loop`: continuous training (beamline/loop/)."""

from __future__ import annotations

import click

from beamline.commands.help import Command
from beamline.commands.options import (
    beam_option,
    loop_watch_options,
    metadata_option,
    root_option,
    threshold_options,
)
from beamline.monitor.quality import DEFAULT_MAX_INVALID_FRACTION
from beamline.timefmt import TIME_HELP, TimeType


@click.command(cls=Command)
@click.argument("pipeline")
@loop_watch_options()
@click.option("--every", default=None, metavar="DURATION",
              help="Step every DURATION (90s, 15m, 6h, 1d) until SIGTERM.")
@click.option("--once", is_flag=True, help="One step; the exit code says what it decided.")
@click.option("--on-failure", default=None, metavar="CMD",
              help="Shell command run when a run the loop started fails; {run_id} is replaced "
              "(else the run id is appended); $BEAMLINE_RUN_ID is set.")
@click.option("--no-tune", is_flag=True, help="Runs skip the Tuner (as `beamline run --no-tune`).")
@click.option("--tune", "retune", is_flag=True,
              help="Runs search hyperparameters again (default: reuse the last search while the "
              "model module and schema are unchanged).")
@click.option("--until", type=TimeType(), default=None,
              help=f"End the window at TIME instead of now (an Airflow data interval): "
              f"{TIME_HELP}.")
@threshold_options(DEFAULT_MAX_INVALID_FRACTION)
@beam_option(help_text="Beam profile for the runs (and for the monitoring's statistics when a "
             "cluster's; a local profile computes them in-process).")
@root_option()
@metadata_option
def loop(
    pipeline, data, requests_dir, policy, every, once, on_failure, push_policy, no_tune, retune,
    until, thresholds, max_invalid_fraction, beam_profile, root, metadata,
) -> None:
    """Continuous training: each step monitors the traffic logged since the last step against
    the data that trained the served version, decides by --retrain-on, runs PIPELINE on the
    newest span of --data and pushes a blessed model; every decision is a beamline.Trigger
    execution in MLMD. --once exits 0 (nothing to do, or retrained), 1 (its run failed), 6
    (a run is live), 9 (data quality), 12 (drift, no new data).

    Example:

    \b
        beamline loop penguin --data data/ --requests logs/requests --every 6h --no-tune
    """
    import sys

    from beamline.errors import ConfigError, LoopAlert
    from beamline.loop.loop import one_step, parse_duration, run_loop
    from beamline.loop.step import EXIT_ALERT, EXIT_OK, LoopRequest, check_config
    from beamline.monitor.thresholds import parse_overrides

    if once == (every is not None):
        raise ConfigError("Give exactly one of --once (one step) and --every DURATION.")
    config = LoopRequest(
        pipeline=pipeline,
        data=data.expanduser().resolve(),
        requests=requests_dir.expanduser().resolve(),
        root=root,
        metadata=metadata,
        policy=policy,
        tune=not no_tune,
        retune=retune,
        push_policy=push_policy,
        on_failure=on_failure,
        thresholds=parse_overrides(thresholds),
        max_invalid_fraction=max_invalid_fraction,
        beam_profile=beam_profile,
        until=until,
    )
    check_config(config)
    if every is not None:
        sys.exit(run_loop(config, parse_duration(every), sys.stdout))
    result = one_step(config, sys.stdout)
    if result.exit_code == EXIT_ALERT:
        raise LoopAlert(result.message)
    if result.exit_code != EXIT_OK:
        sys.exit(result.exit_code)
