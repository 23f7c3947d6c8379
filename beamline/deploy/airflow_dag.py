"""Compile a pipeline into an Apache Airflow DAG file built on TFX's own AirflowDagRunner.

The file Beamline writes is small: a docstring, a `SETTINGS` dict of plain values (pipeline name,
run root, metadata URI, data, schedule, start date, retries, Beam args, secret *references*) and
`dag = build_dag(SETTINGS)`. Airflow imports it on the scheduler and on every worker; `build_dag`
then builds the pipeline with `create_pipeline()` and hands it to TFX's `AirflowDagRunner`, which
makes one PythonOperator per TFX node (no Beamline operators). So:

- the file holds no secret value: `--secret NAME=env|gcp:...` references go into the file, and a
  `pre_execute` hook resolves them in the worker just before each task (env: must be set there;
  gcp: fetched from Secret Manager), replacing `${secret:NAME}` in the Beam args;
- module files are imported in place from the installed project (no wheel is built into the
  pipeline root each time the scheduler parses the file);
- the run root and metadata store default like every other command: `--root`, then
  `$BEAMLINE_ROOT`, then ./beamline_runs, with SQLite MLMD under the root.

Nothing here imports Airflow, TFX or croniter at module import time.
"""

from __future__ import annotations

import datetime
import functools
import importlib.util
import os
import pprint
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from beamline import beam, registry
from beamline import project as project_mod
from beamline.deploy import secrets as secrets_mod
from beamline.errors import BeamlineError, ConfigError
from beamline.settings import (
    NO_USER_MODULE_WHEELS,
    PipelineSettings,
    RootLayout,
    apply_tf_environment,
    is_uri,
    resolve_root,
)

# Airflow's schedule presets (airflow.utils.dates.cron_presets, plus @once and None).
PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
DEFAULT_RETRIES = 1
DEFAULT_RETRY_DELAY_S = 300
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AIRFLOW_EXTRA_HINT = (
    "Install it with the project's extra: `pip install 'beamline-tfx[airflow]'` (apache-airflow "
    "2.10.3; `make run`/`make test` install it from requirements.lock)."
)


class AirflowMissing(ConfigError):
    """apache-airflow is not importable in this environment."""


@dataclass(frozen=True)
class DagSettings:
    """Everything the written DAG file holds (plain values only: it is rendered as Python)."""

    pipeline: str
    root: str
    data_root: str | None = None  # None: the pipeline's default_data_root() where it is parsed
    metadata: str | None = None
    serving_dir: str | None = None
    schedule: str | None = None
    start_date: str = ""
    retries: int = DEFAULT_RETRIES
    retry_delay_s: int = DEFAULT_RETRY_DELAY_S
    enable_tuning: bool = True
    beam_args: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # NAME -> source (no values)
    # The Beamline project whose pipeline this is (None: the bundled examples).
    project: str | None = None


def require_airflow() -> None:
    if importlib.util.find_spec("airflow") is None:
        raise AirflowMissing(
            "--target airflow needs Apache Airflow, which is not installed in this Python "
            f"environment, so nothing was written. {AIRFLOW_EXTRA_HINT}"
        )


def check_schedule(schedule: str | None) -> str | None:
    """None (manual/triggered runs only), an Airflow preset, or a 5-field cron expression."""
    if schedule is None or schedule.strip().lower() in ("", "none", "manual"):
        return None
    schedule = schedule.strip()
    if schedule.startswith("@"):
        if schedule not in PRESETS:
            raise ConfigError(
                f"--schedule {schedule!r} is not an Airflow preset; use one of "
                f"{', '.join(PRESETS)}, a 5-field cron expression such as '0 3 * * *', or none."
            )
        return schedule
    from croniter import croniter

    fields = schedule.split()
    if len(fields) != 5 or not croniter.is_valid(schedule):
        raise ConfigError(
            f"--schedule {schedule!r} is not a valid 5-field cron expression (minute hour "
            "day-of-month month day-of-week, e.g. '0 3 * * *' for 03:00 every day) nor an Airflow "
            f"preset ({', '.join(PRESETS)}); nothing was written."
        )
    return schedule


def check_start_date(value: str | None, today: datetime.date | None = None) -> str:
    """YYYY-MM-DD (default: today, UTC); Airflow schedules the first run after it."""
    if not value:
        return (today or datetime.datetime.now(datetime.timezone.utc).date()).isoformat()
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(
            f"--start-date {value!r} is not a date: use YYYY-MM-DD, e.g. 2026-12-01."
        ) from exc
    return value


def check_secrets(refs: tuple[secrets_mod.SecretRef, ...], beam_args: list[str]) -> None:
    secrets_mod.check_references(beam_args, refs)
    k8s = [s for s in refs if s.kind == "k8s"]
    if k8s:
        raise ConfigError(
            f"--secret {k8s[0].name}={k8s[0].source}: an Airflow worker cannot mount a Kubernetes "
            f"Secret by itself. Set it in the workers' environment and use --secret "
            f"{k8s[0].name}=env, or use gcp:projects/P/secrets/S/versions/V (Secret Manager)."
        )


def dag_settings(
    pipeline: str,
    *,
    root: Path,
    data_root: str | None,
    metadata: str | None,
    serving_dir: str | None,
    schedule: str | None,
    start_date: str | None,
    retries: int,
    enable_tuning: bool,
    beam_profile: str,
    beam_extra: tuple[str, ...],
    refs: tuple[secrets_mod.SecretRef, ...],
) -> DagSettings:
    """Checks every flag (no TFX, no Airflow import) and resolves the defaults."""
    require_airflow()
    current = project_mod.current()
    registry.get(pipeline, current)
    schedule = check_schedule(schedule)
    start = check_start_date(start_date)
    if retries < 0:
        raise ConfigError(f"--retries {retries} must be 0 or more.")
    if metadata is not None:
        from beamline.metadata.connection import connection_config

        # Parses and checks the value (a MySQL password comes from the workers' environment).
        connection_config(metadata, RootLayout(root).metadata_path, check=False)
    data = _local_data(data_root or _default_data_root(pipeline), pipeline)
    args = beam.beam_args(beam_profile, data.total_bytes, beam_extra)
    check_secrets(refs, args)
    return DagSettings(
        pipeline=pipeline,
        root=str(resolve_root(root)),
        data_root=str(Path(data_root).expanduser().resolve()) if data_root else None,
        metadata=metadata,
        serving_dir=serving_dir,
        schedule=schedule,
        start_date=start,
        retries=retries,
        enable_tuning=enable_tuning,
        beam_args=args,
        secrets={s.name: s.source for s in refs},
        project=None if current.bundled else str(current.root),
    )


def _default_data_root(pipeline: str, proj: project_mod.Project | None = None) -> str:
    # The pipeline file imports TFX only inside create_pipeline(); default_data_root is light.
    return registry.load_module(pipeline, proj).default_data_root()


def _span_pattern(pipeline: str, proj: project_mod.Project | None = None) -> str:
    from beamline.data.spans import span_pattern_of

    return span_pattern_of(registry.load_module(pipeline, proj))


def _local_data(data: str, pipeline: str):
    """The data a run reads (its newest span when --data-root holds spans), checked."""
    from beamline.data.spans import resolve_input

    if is_uri(data):
        raise ConfigError(
            f"--data-root {data!r}: an Airflow DAG reads data from a path its workers share "
            "(a mounted volume); remote URIs are for --target kubeflow/vertex."
        )
    return resolve_input(Path(data), _span_pattern(pipeline))


# --- the file ------------------------------------------------------------------------------------


def render(settings: DagSettings, command: str, loop: Mapping[str, Any] | None = None) -> str:
    """The DAG file's text (checked for leaked secret values by `write`). With `loop` (the
    loop flags, beamline.loop.airflow.loop_settings), the loop's decision gates the tasks."""
    body = pprint.pformat(asdict(settings), indent=4, sort_dicts=False, width=96)
    if loop is None:
        about, imports, tail = "", "", "dag = build_dag(SETTINGS)"
    else:
        about = (
            "\nIts first task, loop_decide, is one `beamline loop` step (monitor the traffic "
            "logged in the\nDAG run's data interval, decide by the policy, record a "
            "beamline.Trigger execution); the\npipeline tasks run only when it decides to "
            "retrain, and loop_conclude records the outcome.\n"
        )
        imports = "from beamline.loop.airflow import add_loop_tasks\n"
        loop_body = pprint.pformat(dict(loop), indent=4, sort_dicts=False, width=96)
        tail = f"LOOP = {loop_body}\n\ndag = add_loop_tasks(build_dag(SETTINGS), SETTINGS, LOOP)"
    return f'''"""Airflow DAG for the Beamline pipeline {settings.pipeline!r}.

Written by `{command}`; recompile rather than edit. TFX's AirflowDagRunner turns the pipeline into
one Airflow task per TFX node (dag_id {settings.pipeline!r}). Scheduler and workers need the
Beamline project installed with its `airflow` extra (the same code and module files as here),
TF_USE_LEGACY_KERAS=1, read/write access to the run root, and the secrets named below in their
environment (only the names and sources are in this file).
{about}"""

from beamline.deploy.airflow_dag import build_dag
{imports}
SETTINGS = {body}

{tail}
'''


def write(text: str, out: Path, refs: tuple[secrets_mod.SecretRef, ...]) -> None:
    """Writes the DAG file atomically; refuses (writing nothing) if it would hold a secret."""
    if out.suffix != ".py":
        raise ConfigError(f"--out {out} must end in .py: Airflow loads DAGs from Python files.")
    leaks = secrets_mod.find_leaks(text, refs)
    if leaks:
        raise ConfigError(
            f"The DAG file would contain the value of ${', $'.join(leaks)}, so nothing was "
            "written. Declare secrets with --secret NAME=env (or gcp:...) and write "
            "${secret:NAME} in --beam-arg; workers resolve them at run time."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)


# --- inside Airflow (scheduler and workers import the DAG file) --------------------------------


def build_dag(settings: Mapping[str, Any]):
    """The Airflow DAG for `settings` (a DagSettings as a dict), built by TFX's AirflowDagRunner."""
    s = DagSettings(**settings)
    apply_tf_environment()
    from beamline.runner.local import autograph_skips_tf_keras

    # Airflow runs the tasks in processes that parsed this DAG: as in a local run, the first
    # Keras model a task trains must not transpile tf_keras (~40 s of CPU in the Trainer task).
    autograph_skips_tf_keras()
    pipeline = _tfx_pipeline(s)
    from tfx.orchestration.airflow.airflow_dag_runner import (
        AirflowDagRunner,
        AirflowPipelineConfig,
    )

    default_args: dict[str, Any] = {
        "owner": "beamline",
        "retries": s.retries,
        "retry_delay": datetime.timedelta(seconds=s.retry_delay_s),
    }
    if s.secrets:
        default_args["pre_execute"] = functools.partial(resolve_secrets_hook, s.secrets)
    dag_config = {
        "schedule": s.schedule,
        "start_date": datetime.datetime.fromisoformat(s.start_date).replace(
            tzinfo=datetime.timezone.utc
        ),
        # A DAG deployed with an old start date must not backfill every missed interval, and two
        # runs of one pipeline must not write one metadata store and serving dir at once.
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args,
        "tags": ["beamline", s.pipeline],
        "params": {},
    }
    return AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config=dag_config)).run(pipeline)


def _tfx_pipeline(s: DagSettings):
    from beamline.deploy.compile import _data_location
    from beamline.metadata.connection import connection_config

    proj = project_mod.load(Path(s.project), "the DAG's project") if s.project else None
    entry = registry.get(s.pipeline, proj)
    layout = RootLayout(Path(s.root))
    data_root, pattern = _data_location(
        s.data_root or _default_data_root(s.pipeline, proj), _span_pattern(s.pipeline, proj)
    )
    settings = PipelineSettings(
        pipeline_name=s.pipeline,
        pipeline_root=str(layout.pipeline_root(s.pipeline)),
        data_root=data_root,
        data_pattern=pattern,
        serving_dir=s.serving_dir or str(layout.serving_dir(s.pipeline)),
        schema_path=str(entry.schema_path),
        enable_tuning=s.enable_tuning,
        beam_pipeline_args=tuple(s.beam_args),
        metadata_connection_config=connection_config(s.metadata, layout.metadata_path, check=False),
        components_dir=str(entry.project.components_dir),
    )
    # Module files are imported in place: no wheel built into the pipeline root at every parse.
    os.environ[NO_USER_MODULE_WHEELS] = "1"
    return registry.load_module(s.pipeline, proj).create_pipeline(settings)


def resolve_secrets_hook(sources: Mapping[str, str], context: Mapping[str, Any]) -> None:
    """Airflow `pre_execute`: puts declared secrets in the environment, fills ${secret:NAME}.

    Runs in the worker process just before the task's TFX launcher, so values never reach the
    DAG file, the serialized DAG or the rendered task fields in Airflow's database; their values
    are masked in the task's log from then on.
    """
    import json

    os.environ[secrets_mod.SOURCES_ENV] = json.dumps(dict(sources), sort_keys=True)
    try:
        args = context["task"].python_callable.keywords["beam_pipeline_args"]
        args[:] = secrets_mod.resolve_args(args, os.environ)
    except secrets_mod.SecretMissing as exc:
        raise BeamlineError(str(exc)) from exc
