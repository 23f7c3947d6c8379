"""`beamline data log|checkout|du|verify`: the data and code versions runs kept."""

from __future__ import annotations

from pathlib import Path

import click

from beamline.commands.gc import keep_data_option, labelled_option
from beamline.commands.help import Command, Group
from beamline.commands.options import json_option, metadata_option, root_option
from beamline.timefmt import TIME_HELP, TimeType


@click.group(cls=Group)
def data() -> None:
    """The data and code versions each run kept: every `beamline run` stores the input files it
    read and the pipeline's source files by content under the run root (`objects/`), and names
    them on the run's record.

    Example:

    \b
        beamline data log penguin
    """


def _open(root: Path, metadata: str | None):
    from beamline.metadata.connection import open_existing
    from beamline.settings import RootLayout
    from beamline.versions.store import ObjectStore

    layout = RootLayout(root)
    return ObjectStore(layout.objects_dir), open_existing(metadata, layout.metadata_path)


@data.command(cls=Command)
@click.argument("pipeline")
@root_option()
@metadata_option
@json_option
def log(pipeline, root, metadata, as_json) -> None:
    """The data versions PIPELINE's runs read, newest last: files, bytes, rows (as the run's
    StatisticsGen counted them), span, the first and last run that read each, and the model
    versions pushed from those runs with the labels they hold.

    Example:

    \b
        beamline data log penguin --json
    """
    import json

    from beamline.lineage.data_versions import version_rows
    from beamline.lineage.format import printable
    from beamline.timefmt import format_ms
    from beamline.versions.remote import describe

    objects, store = _open(root, metadata)
    rows = version_rows(store, objects, pipeline, root=root, metadata=metadata)
    if not rows:
        from beamline.lineage.access import require_pipeline
        from beamline.metadata.connection import describe
        from beamline.settings import RootLayout

        require_pipeline(store, pipeline, describe(metadata, RootLayout(root).metadata_path))
    if as_json:
        click.echo(json.dumps({"pipeline": pipeline, "data_versions": rows}, indent=2))
        return
    if not rows:
        click.echo(f"No run of {pipeline!r} kept a data version.")
        return
    click.echo(f"Data versions of {pipeline!r} (oldest first):")
    for row in rows:
        span = f", span {row['span']}" if row["span"] is not None else ""
        rows_read = f"{row['rows']:,} rows" if row["rows"] is not None else "rows not counted"
        size = f"{row['bytes']:,} bytes" if row["bytes"] is not None else "bytes unknown"
        click.echo(f"  {row['data_version'][:12]}  {len(row['files'])} file(s), "
                   f"{size}, {rows_read}{span}, read by {row['runs']} run(s)")
        if row["problem"]:
            click.echo(printable(f"    not readable: {row['problem']}"))
        click.echo(f"    first  {row['first_run']['run_id']}  "
                   f"{format_ms(row['first_run']['time_ms'])}")
        click.echo(f"    last   {row['last_run']['run_id']}  "
                   f"{format_ms(row['last_run']['time_ms'])}")
        for f in row["files"]:
            where = (f"remote, not kept: {describe(f.get('identity'))}" if f.get("remote")
                     else f"sha256 {f['sha256'][:16]}...")
            size = f"{f['bytes']:,} bytes  " if f["bytes"] is not None else ""
            click.echo(printable(f"    {f['path']}  {size}{where}"))
        models = ", ".join(
            str(m["version"]) + (f" ({', '.join(m['labels'])})" if m["labels"] else "")
            for m in row["models"]
        )
        click.echo(f"    models {models or 'none pushed'}")


@data.command(cls=Command)
@click.option("--run", "run_id", default=None, help="The run whose data to restore.")
@click.option("--model", type=int, default=None, metavar="VERSION",
              help="A pushed model version: the data its run read.")
@click.option("--label", default=None, help="The model version holding this label.")
@click.option("--at", "at", type=TimeType(), default=None,
              help=f"With --label: the version that held it then: {TIME_HELP}.")
@click.option("--pipeline", "-p", default=None, help="Whose --model or --label.")
@click.option("--to", "target", required=True, type=click.Path(path_type=Path),
              help="A new or empty directory to write the files into.")
@click.option("--code", "with_code", is_flag=True,
              help="Also restore the run's code (pipeline, module files, schemas) under DIR/code/.")
@root_option()
@metadata_option
@json_option
def checkout(run_id, model, label, at, pipeline, target, with_code, root, metadata,
             as_json) -> None:
    """Write the exact input files a run read (by --run, --model or --label) into an empty
    directory, each checked against its SHA-256 on the way out; with --code, the run's
    pipeline and module files beside them.

    Example:

    \b
        beamline data checkout --label stable --pipeline penguin --to restored/
    """
    import json

    from beamline.errors import ConfigError
    from beamline.timefmt import to_ms
    from beamline.versions import log as vlog
    from beamline.versions.checkout import CODE_SUBDIR, require_empty
    from beamline.versions.checkout import checkout as write_out

    if sum(x is not None for x in (run_id, model, label)) != 1:
        raise ConfigError(
            "Name exactly one of --run RUN, --model VERSION or --label LABEL: the run whose "
            "data to restore (`beamline data log PIPELINE` lists them)."
        )
    require_empty(target)  # before any store is opened: the cheapest refusal first
    objects, store = _open(root, metadata)
    run = vlog.run_for(store, pipeline, run_id=run_id, model=model, label=label,
                       at_ms=to_ms(at) if at is not None else None)
    if with_code and not run.code_key:
        raise ConfigError(f"Run {run.run_id} kept no code version; leave out --code.")
    data, code = write_out(objects, run.data_key, run.code_key if with_code else None, target)
    if as_json:
        click.echo(json.dumps({
            "run_id": run.run_id, "data_version": run.data_key, "code_version": run.code_key,
            "to": str(target), "files": data.files, "bytes": data.bytes,
            "remote_not_kept": list(data.remote),
            "code_files": code.files if code else None,
        }, indent=2))
        return
    click.echo(f"Restored data version {run.data_key[:12]} of run {run.run_id}: {data.files} "
               f"file(s), {data.bytes:,} bytes in {target} (each SHA-256 checked)")
    for uri in data.remote:
        click.echo(f"  not kept (remote input): {uri}")
    if code is not None:
        click.echo(f"Restored code version {run.code_key[:12]}: {code.files} file(s) in "
                   f"{target / CODE_SUBDIR}")


@data.command(cls=Command)
@click.argument("pipeline", required=False)
@root_option()
@metadata_option
@keep_data_option(lead="Count as gc --keep-data N would: gc would delete")
@labelled_option
@json_option
def du(pipeline, root, metadata, keep_data, labelled, as_json) -> None:
    """Where the kept bytes go: per data version (PIPELINE's, or every pipeline's) and per
    code version, its bytes in the store, how many of them no other version shares, and what
    `beamline gc` (with the same --keep-data and --labelled) would free.

    Example:

    \b
        beamline data du penguin
        beamline data du --keep-data 3 --json
    """
    import json

    from beamline.commands.gc import gc_command, retention_policy
    from beamline.versions import retention

    objects, store = _open(root, metadata)
    if pipeline is not None:
        from beamline.lineage.access import require_pipeline
        from beamline.metadata.connection import describe
        from beamline.settings import RootLayout

        require_pipeline(store, pipeline, describe(metadata, RootLayout(root).metadata_path))
    used = retention.usage(objects, store, retention_policy(store, pipeline, keep_data,
                                                            labelled))
    report = {"store": str(objects.directory), **used.to_json(pipeline),
              "gc_command": gc_command(pipeline, keep_data, labelled)}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print_du(report)


def _print_du(report: dict) -> None:
    from beamline.lineage.format import table

    click.echo(f"{report['store']}: {report['objects']:,} object(s), {report['bytes']:,} bytes")
    headers = ["VERSION", "FILES", "BYTES", "UNIQUE", "SHARED", "RUNS", "GC", "GC FREES"]
    for kind, title in (("data_version", "Data versions"), ("code_version", "Code snapshots")):
        rows = report[f"{kind}s"]
        whose = f" of {report['pipeline']!r}" if report["pipeline"] else ""
        click.echo(f"\n{title}{whose} (oldest first):")
        if not rows:
            click.echo("  none kept")
            continue
        click.echo("  " + table(headers, [
            [r[kind][:12], r["files"], f"{r['bytes']:,}", f"{r['unique_bytes']:,}",
             f"{r['shared_bytes']:,}", r["runs"], "keeps" if r["kept_by_gc"] else "frees",
             f"{r['gc_frees_bytes']:,}"] for r in rows
        ]).replace("\n", "\n  "))
        for r in rows:
            if r["problem"]:
                click.echo(f"  {r[kind][:12]}: {r['problem']}")
    unnamed, free = report["named_by_no_run"], report["gc_would_free"]
    click.echo(f"\nNamed by no run: {unnamed['objects']:,} object(s), {unnamed['bytes']:,} bytes")
    if free["blocked"]:
        click.echo(f"`{report['gc_command']}` would free nothing: {free['blocked']}")
    else:
        click.echo(f"`{report['gc_command']}` would free {free['objects']:,} object(s), "
                   f"{free['bytes']:,} bytes (`--dry-run` lists them)")
    for refused in report["refused"]:
        click.echo(f"refused {refused}")


@data.command(cls=Command)
@root_option()
@json_option
def verify(root, as_json) -> None:
    """Re-hash every object in the run root's store and name each whose bytes no longer match
    its SHA-256 (exit 3 when any does).

    Example:

    \b
        beamline data verify
    """
    import json

    from beamline.errors import DataError
    from beamline.settings import RootLayout
    from beamline.versions.store import ObjectStore

    objects = ObjectStore(RootLayout(root).objects_dir)
    checked = sum(1 for _ in objects.keys())
    corrupt = objects.verify()
    if as_json:
        click.echo(json.dumps({"objects": checked, "corrupt": corrupt}, indent=2))
    else:
        click.echo(f"{checked} object(s) checked in {objects.directory}")
    if corrupt:
        raise DataError(
            f"{len(corrupt)} object(s) no longer match their SHA-256: "
            + ", ".join(str(objects.path_of(k)) for k in corrupt)
            + ". Their data cannot be restored from this store; the runs that kept them name "
            "them in `beamline data log PIPELINE`."
        )
