"""`observe import records|labels|events|metrics|spans|profile|reference|whylogs`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from observe.cli.base import (
    JsonOption,
    _time_option,
    _validation_message,
    err,
    fail,
    import_app,
    load_settings,
    open_database,
    out,
    print_json,
)

# --- import ------------------------------------------------------------------------------------


def _import(
    kind_name: str, path: Path, fmt: str, rejects: Path | None, batch_size: int, as_json: bool
) -> None:
    from collectors.files import FileFormatError
    from observe.pipeline.importer import import_file
    from observe.pipeline.writer import BatchKind

    settings = load_settings()
    db = open_database(settings)
    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"importing {path.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=True,
    )
    task = progress.add_task("import", total=None)

    def on_progress(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total)

    try:
        with progress:
            summary = import_file(
                db,
                path,
                BatchKind(kind_name),
                rollup_tags=settings.rollup_tags,
                fmt=fmt,
                batch_size=batch_size,
                rejects_path=rejects,
                on_progress=on_progress,
            )
    except FileFormatError as error:
        raise fail(str(error)) from None
    _report_import(path, summary, as_json, unit="rows", rejected="rejected rows")


def _report_import(path: Path, summary: Any, as_json: bool, *, unit: str, rejected: str) -> None:
    """Print an import's summary (JSON, or a line counting `unit`) and exit with code 3 when
    anything was rejected; `rejected` names what the rejects file holds."""
    if as_json:
        print_json(summary.as_dict())
    else:
        rate = summary.num_rows / summary.seconds if summary.seconds else 0.0
        out.print(
            f"{path.name}: {summary.num_rows:,} {unit} read, {summary.num_imported:,} imported, "
            f"{summary.num_duplicates:,} duplicates, {summary.num_rejected:,} rejected "
            f"({summary.seconds:.1f} s, {rate:,.0f} {unit}/s)"
        )
        if summary.rejects_path:
            out.print(f"{rejected} and their reasons: {summary.rejects_path}")
    if summary.num_rejected:
        raise typer.Exit(3)


def _register_import(kind_name: str, noun: str) -> None:
    def command(
        file: Path = typer.Argument(
            ..., help="JSONL, JSON, CSV or Parquet file (.gz JSONL/CSV too)."
        ),
        fmt: str = typer.Option(
            "auto", "--format", help="jsonl, json, csv, parquet or auto (by suffix)."
        ),
        rejects: Path = typer.Option(
            None, help="Where to write rejected rows (default ./<file>.rejects.jsonl)."
        ),
        batch_size: int = typer.Option(5_000, min=1, max=100_000, help="Rows per transaction."),
        as_json: bool = JsonOption,
    ) -> None:
        _import(kind_name, file, fmt, rejects, batch_size, as_json)

    command.__doc__ = (
        f"Import {noun}. Bad rows are skipped and written with their reasons to a rejects file "
        "(exit code 3 when any row was rejected)."
    )
    import_app.command(kind_name)(command)


_register_import("records", "inference records")
_register_import("labels", "late ground-truth labels")
_register_import("events", "deploy and change events")
_register_import("metrics", "GPU, host and queue metric samples")


@import_app.command("profile")
def import_profile(
    file: Path = typer.Argument(..., help="Chrome-trace JSON from torch.profiler, or .json.gz."),
    model: str = typer.Option(..., "--model", help="Model name."),
    version: str = typer.Option(..., "--version", help="Model version."),
    host: str = typer.Option(..., "--host", help="Host the trace was captured on."),
    captured_at: str = typer.Option(
        None,
        "--captured-at",
        help="Capture time (RFC 3339 or epoch seconds); default from the trace, else the "
        "file's modification time.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import a PyTorch profiler trace: summarized per operator and per step, stored with its
    raw file. The same file imported twice is stored once."""
    from observe.pipeline.profiles import TraceFormatError, TraceTooLarge, import_profile_file
    from observe.schemas.profiles import ProfileMeta

    if not file.is_file():
        raise fail(f"{file}: no such file", 2)
    try:
        meta = ProfileMeta(
            model=model,
            model_version=version,
            host=host,
            captured_at=_time_option(captured_at, "--captured-at"),
            file_name=file.name,
        )
    except ValidationError as error:
        raise fail(_validation_message(error), 2) from None
    settings = load_settings()
    db = open_database(settings)
    try:
        stored = import_profile_file(
            db.write_sessions,
            file,
            meta,
            now=dt.datetime.now(dt.UTC),
            max_bytes=settings.max_profile_bytes,
        )
    except (TraceFormatError, TraceTooLarge) as error:
        raise fail(f"{file.name}: {error}; nothing was stored") from None
    except OSError as error:
        raise fail(f"cannot read {file}: {error}") from None
    if as_json:
        print_json({"duplicate": stored.duplicate, "profile": stored.profile.model_dump()})
        return
    _print_stored_profile(file, stored)


def _print_stored_profile(file: Path, stored: Any) -> None:
    profile = stored.profile
    if stored.duplicate:
        out.print(
            f"{file.name}: already stored as profile {profile.id} "
            f"({profile.model} {profile.model_version} on {profile.host}); nothing new stored"
        )
        return
    out.print(
        f"{file.name}: stored as profile {profile.id} ({profile.model} {profile.model_version} "
        f"on {profile.host}, captured {profile.captured_at:%Y-%m-%d %H:%M:%S} UTC): "
        f"{profile.num_events:,} events, {profile.num_operators:,} operators, "
        f"{profile.num_steps} profiler steps"
    )


@import_app.command("spans")
def import_spans(
    file: Path = typer.Argument(
        ...,
        help="OTLP/JSON: one export request per line (the OpenTelemetry Collector file "
        "exporter's format) or one request in the file; .gz too.",
    ),
    rejects: Path = typer.Option(
        None, help="Where to write rejected spans (default ./<file>.rejects.jsonl)."
    ),
    batch_size: int = typer.Option(5_000, min=1, max=100_000, help="Spans per transaction."),
    as_json: bool = JsonOption,
) -> None:
    """Import OpenTelemetry spans. Invalid spans and lines are skipped and written with their
    reasons to a rejects file (exit code 3 when any was rejected)."""
    from collectors.files import FileFormatError
    from observe.pipeline.importer import import_span_file

    settings = load_settings()
    db = open_database(settings)
    try:
        summary = import_span_file(
            db,
            file,
            model_attributes=settings.span_model_attributes,
            batch_size=batch_size,
            rejects_path=rejects,
        )
    except FileFormatError as error:
        raise fail(str(error)) from None
    _report_import(file, summary, as_json, unit="spans", rejected="rejected spans and lines")


@import_app.command("reference")
def import_reference(
    file: Path = typer.Argument(..., help="Parquet or CSV file, one column per feature."),
    model: str = typer.Option(..., "--model", help="Model name."),
    version: str = typer.Option(..., "--version", help="Model version trained on this data."),
    name: str = typer.Option("training", help="Name; importing a name again replaces it."),
    max_rows: int = typer.Option(
        None, min=1, help="Rows to store (default OBSERVE_REFERENCE_MAX_ROWS)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import a training reference data set: a profile of every row and up to --max-rows rows."""
    from observe.pipeline import references as reference_pipeline

    settings = load_settings()
    db = open_database(settings)
    try:
        frame = reference_pipeline.read_reference_file(file)
        summary = reference_pipeline.store_reference(
            db,
            frame,
            model=model,
            model_version=version,
            name=name,
            source=str(file),
            max_rows=max_rows or settings.reference_max_rows,
            now=dt.datetime.now(dt.UTC),
        )
    except reference_pipeline.ReferenceError as error:
        raise fail(str(error)) from None
    _print_reference(summary, as_json)


def _print_reference(summary: Any, as_json: bool) -> None:
    if as_json:
        print_json(summary.as_dict())
        return
    out.print(
        f"reference {summary.name} of {summary.model} {summary.model_version}: "
        f"{summary.num_rows:,} rows profiled, {summary.num_rows_stored:,} stored, "
        f"{len(summary.feature_types)} features (id {summary.id})"
    )


@import_app.command("whylogs")
def import_whylogs(
    file: Path = typer.Argument(..., help="A whylogs profile (.bin from profile.view().write())."),
    model: str = typer.Option(..., "--model", help="Model name."),
    version: str = typer.Option(..., "--version", help="Model version."),
    as_: str = typer.Option(
        "reference", "--as", help="reference (a training profile) or serving (hourly profiles)."
    ),
    name: str = typer.Option("whylogs", help="Reference name (with --as reference)."),
    hour: str = typer.Option(
        None, help="Hour the serving profile covers (default: the profile's dataset timestamp)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import a whylogs profile as a reference or as serving profiles (needs `whylogs`)."""
    from observe.pipeline import whylogs_import

    if as_ not in ("reference", "serving"):
        raise fail("--as must be reference or serving", 2)
    settings = load_settings()
    db = open_database(settings)
    try:
        result = whylogs_import.import_whylogs(
            db,
            file,
            model=model,
            model_version=version,
            as_reference=as_ == "reference",
            name=name,
            hour=_time_option(hour, "hour"),
            now=dt.datetime.now(dt.UTC),
        )
    except whylogs_import.WhylogsImportError as error:
        raise fail(str(error)) from None
    if as_json:
        print_json(result)
        return
    out.print(
        f"imported {result['num_features']} features of {file.name} as "
        f"{as_} profiles of {model} {version}"
    )
