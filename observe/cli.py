"""The `observe` command line. OBSERVE_DATABASE_URL (or the default SQLite file) selects the
database; every command that prints results has --json."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from observe.auth import parse_scopes
from observe.config import Settings
from observe.db import migrate
from observe.db.engine import Database, create_database

app = typer.Typer(help="observe: ML observability and root-cause diagnosis.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
models_app = typer.Typer(help="Models, their traffic and SLOs.", invoke_without_command=True)
import_app = typer.Typer(
    help="Import records, labels, events, metrics, spans or profiler traces from files.",
    no_args_is_help=True,
)
collect_app = typer.Typer(
    help="Collect GPU and host metrics and send them to an observe server.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(import_app, name="import")
analyze_app = typer.Typer(
    help="Run an analysis of one model now: latency regressions, drift, training-serving skew.",
    no_args_is_help=True,
)
app.add_typer(analyze_app, name="analyze")
app.add_typer(collect_app, name="collect")

# Wide enough for tables when output goes to a file or pipe (rich assumes 80 columns there).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
# Messages are not wrapped: a path or URL broken across lines cannot be copied or grepped.
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise fail(f"invalid settings: {problems}") from None


def open_database(settings: Settings, *, upgrade: bool = True) -> Database:
    """Connect and bring the schema up to date (or refuse if it is not and `upgrade` is off)."""
    db = create_database(
        settings.database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    try:
        if upgrade:
            migrate.upgrade(db.engine)
        elif not migrate.is_up_to_date(db.engine):
            raise fail("the database schema is not up to date: run `observe db upgrade`")
    except typer.Exit:
        raise
    except Exception as error:
        raise fail(
            f"cannot use the database {safe_url(settings.database_url)}: {first_line(error)}"
        ) from None
    return db


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


# --- serve -------------------------------------------------------------------------------------


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to bind (default OBSERVE_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default OBSERVE_PORT or 8080)."),
) -> None:
    """Serve the API (and UI) until stopped."""
    settings = load_settings(host=host, port=port)
    run_server(settings)


def run_server(settings: Settings) -> None:
    import uvicorn

    from observe.app import create_app
    from observe.pipeline.keys import ensure_admin_key

    try:
        settings.check_bind_is_safe()
    except ValueError as error:
        raise fail(str(error)) from None
    db = open_database(settings, upgrade=settings.migrate_on_start)
    if settings.auth_enabled:
        configured = settings.bootstrap_admin_key
        key = ensure_admin_key(
            db.write_sessions, configured=configured.get_secret_value() if configured else None
        )
        if key is not None:
            # Printed to the terminal once, never logged: it is not stored in plain text anywhere.
            out.print(f"Created an admin API key (shown only this once):\n\n    {key}\n")
    db.engine.dispose()
    workers = settings.num_workers
    out.print(
        f"observe is serving on {settings.base_url}  (API docs: {settings.base_url}/docs"
        f"{f', {workers} worker processes' if workers > 1 else ''})"
    )
    if settings.ui_enabled:
        login = (
            " (log in with a key that has the read or admin scope)" if settings.auth_enabled else ""
        )
        out.print(f"Open the UI at {settings.base_url}/ui/{login}")
    if workers == 1:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
        )
        return
    with _multiprocess_environment(settings):
        uvicorn.run(
            "observe.app:create_app_from_environment",
            factory=True,
            workers=workers,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
        )


@contextmanager
def _multiprocess_environment(settings: Settings) -> Iterator[None]:
    """Worker processes read their settings from the environment: pass on what the command line
    overrode, and give them a shared directory for their Prometheus metrics."""
    import os
    import tempfile

    from observe.api.telemetry import MULTIPROC_ENV

    os.environ["OBSERVE_HOST"] = settings.host
    os.environ["OBSERVE_PORT"] = str(settings.port)
    if os.environ.get(MULTIPROC_ENV):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="observe-metrics-") as directory:
        os.environ[MULTIPROC_ENV] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]


# --- db ----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Upgrade the database schema (creating the database if needed)."""
    settings = load_settings()
    db = create_database(settings.database_url)
    try:
        before = migrate.current_revision(db.engine)
        migrate.upgrade(db.engine, revision)
        after = migrate.current_revision(db.engine)
    except Exception as error:
        raise fail(
            f"upgrade of {safe_url(settings.database_url)} failed: {first_line(error)}"
        ) from None
    out.print(f"{safe_url(settings.database_url)}: {before or 'empty'} -> {after}")


@db_app.command("current")
def db_current(as_json: bool = JsonOption) -> None:
    """Show the schema revision of the database and the newest one available."""
    settings = load_settings()
    db = create_database(settings.database_url)
    try:
        current = migrate.current_revision(db.engine)
    except Exception as error:
        raise fail(f"cannot read {safe_url(settings.database_url)}: {first_line(error)}") from None
    info = {
        "database": safe_url(settings.database_url),
        "current": current,
        "head": migrate.head_revision(),
    }
    if as_json:
        print_json(info)
    else:
        out.print(f"{info['database']}: at {current or 'empty'}, newest {info['head']}")


# --- keys --------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    scope: list[str] = typer.Option(..., "--scope", help="ingest, read or admin (repeatable)."),
    name: str = typer.Option("", help="What the key is for."),
    as_json: bool = JsonOption,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from observe.pipeline.keys import create_key

    try:
        scopes = parse_scopes(scope)
    except ValueError as error:
        raise fail(str(error), 2) from None
    db = open_database(load_settings())
    plain, row = create_key(db.write_sessions, name=name or ",".join(sorted(scopes)), scopes=scopes)
    if as_json:
        print_json({"id": row.id, "name": row.name, "scopes": sorted(scopes), "key": plain})
        return
    out.print(f"Created key {row.id} ({row.name}) with scopes {', '.join(sorted(scopes))}.")
    out.print("Store it now; it cannot be shown again:\n")
    out.print(f"    {plain}\n")


@keys_app.command("list")
def keys_list(as_json: bool = JsonOption) -> None:
    """List API keys (prefixes only)."""
    from observe.storage.keys import list_api_keys

    db = open_database(load_settings())
    with db.sessions() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": key.id,
                "name": key.name,
                "prefix": key.prefix,
                "scopes": key.scopes.split(","),
                "created_at": key.created_at,
                "last_used_at": key.last_used_at,
                "revoked_at": key.revoked_at,
            }
            for key in list_api_keys(session)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "prefix", "scopes", "created", "last used", "revoked")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["prefix"] + "…",
            ",".join(row["scopes"]),
            _when(row["created_at"]),
            _when(row["last_used_at"]),
            _when(row["revoked_at"]),
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="Key id or prefix, as `observe keys list` shows."),
) -> None:
    """Revoke a key; servers stop accepting it within 30 seconds."""
    from observe.storage.keys import revoke_api_key

    db = open_database(load_settings())
    with db.write_sessions.begin() as session:
        revoked = revoke_api_key(session, key.removesuffix("…"), now=dt.datetime.now(dt.UTC))
        names = [f"{row.id} ({row.name})" for row in revoked]
    if not names:
        raise fail(f"no active key with id or prefix {key!r}")
    out.print(f"Revoked {', '.join(names)}.")


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


# --- models ------------------------------------------------------------------------------------


@models_app.callback()
def models(
    ctx: typer.Context,
    start: str = typer.Option(
        None, help="Window start: RFC 3339, epoch seconds or -24h (default)."
    ),
    end: str = typer.Option(None, help="Window end (default now)."),
    as_json: bool = JsonOption,
) -> None:
    """List models with traffic, error rate, p50/p95/p99 and SLO status."""
    if ctx.invoked_subcommand is not None:
        return
    from observe.pipeline.overview import list_model_overviews

    start_at, end_at = _window(start, end)
    db = open_database(load_settings())
    with db.sessions() as session:
        overviews = list_model_overviews(session, start=start_at, end=end_at)
    if as_json:
        print_json(
            {
                "start": start_at,
                "end": end_at,
                "models": [o.model_dump(mode="json") for o in overviews],
            }
        )
        return
    table = Table("model", "version", "requests", "error rate", "p50 ms", "p95 ms", "p99 ms", "SLO")
    for model in overviews:
        table.add_row(
            model.name,
            "(all)",
            f"{model.num_requests:,}",
            _pct(model.error_rate),
            _ms(model.p50),
            _ms(model.p95),
            _ms(model.p99),
            _slo_text(model),
        )
        for version in model.versions:
            table.add_row(
                "",
                version.model_version,
                f"{version.num_requests:,}",
                _pct(version.error_rate),
                _ms(version.p50),
                _ms(version.p95),
                _ms(version.p99),
                "",
            )
    out.print(f"{start_at:%Y-%m-%d %H:%M} – {end_at:%Y-%m-%d %H:%M} UTC")
    out.print(table)


@models_app.command("slo")
def models_slo(
    model: str = typer.Argument(..., help="Model name."),
    percentile: float = typer.Option(
        None, help="Latency percentile the objective is about, e.g. 95."
    ),
    latency_ms: float = typer.Option(
        None, help="Latency bound in milliseconds at that percentile."
    ),
    error_rate_pct: float = typer.Option(None, help="Error-rate bound in percent, e.g. 1.0."),
    clear: bool = typer.Option(False, "--clear", help="Remove the model's SLO."),
    as_json: bool = JsonOption,
) -> None:
    """Show a model's SLO, or set it with --percentile/--latency-ms and/or --error-rate-pct."""
    from observe.pipeline.overview import slo_out
    from observe.schemas.reads import Slo
    from observe.storage import models as model_store

    db = open_database(load_settings())
    changing = clear or any(v is not None for v in (percentile, latency_ms, error_rate_pct))
    if changing:
        try:
            slo = (
                Slo()
                if clear
                else Slo(
                    latency_percentile=percentile,
                    latency_ms=latency_ms,
                    error_rate_pct=error_rate_pct,
                )
            )
        except ValidationError as error:
            raise fail(
                "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors()), 2
            ) from None
        with db.write_sessions.begin() as session:
            stored = model_store.set_slo(
                session,
                model,
                latency_percentile=slo.latency_percentile,
                latency_ms=slo.latency_ms,
                error_rate_pct=slo.error_rate_pct,
                now=dt.datetime.now(dt.UTC),
            )
        result = slo_out(stored)
    else:
        with db.sessions() as session:
            info = model_store.get_model(session, model)
        if info is None:
            raise fail(f"no model named {model!r}")
        result = slo_out(info.slo)
    if as_json:
        print_json({"model": model, "slo": result.model_dump(mode="json")})
        return
    latency_part = (
        f"p{result.latency_percentile:g} <= {result.latency_ms:g} ms"
        if result.latency_ms is not None
        else "no latency objective"
    )
    error_part = (
        f"error rate <= {result.error_rate_pct:g}%"
        if result.error_rate_pct is not None
        else "no error-rate objective"
    )
    out.print(f"{model}: {latency_part}; {error_part}")


def _window(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    from observe.api.errors import ApiError
    from observe.api.params import resolve_window

    try:
        return resolve_window(start, end)
    except ApiError as error:
        raise fail(error.detail, 2) from None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _slo_text(model: Any) -> str:
    status = model.slo_status
    breached = []
    if status.latency_ok is False:
        breached.append(f"p{model.slo.latency_percentile:g} > {model.slo.latency_ms:g} ms")
    if status.error_rate_ok is False:
        breached.append(f"errors > {model.slo.error_rate_pct:g}%")
    if breached:
        return "[red]breached: " + ", ".join(breached) + "[/red]"
    return "ok" if status.latency_ok or status.error_rate_ok else "-"


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
    if as_json:
        print_json(summary.as_dict())
    else:
        rate = summary.num_rows / summary.seconds if summary.seconds else 0.0
        out.print(
            f"{path.name}: {summary.num_rows:,} rows read, {summary.num_imported:,} imported, "
            f"{summary.num_duplicates:,} duplicates, {summary.num_rejected:,} rejected "
            f"({summary.seconds:.1f} s, {rate:,.0f} rows/s)"
        )
        if summary.rejects_path:
            out.print(f"rejected rows and their reasons: {summary.rejects_path}")
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


# --- diagnose ----------------------------------------------------------------------------------

STATUS_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow", "skipped": "dim"}


@app.command()
def diagnose(
    model: str = typer.Option(..., "--model", help="Model to diagnose."),
    start: str = typer.Option(None, help="Window start: RFC 3339, epoch seconds or -2h."),
    end: str = typer.Option(None, help="Window end (default now)."),
    baseline_start: str = typer.Option(None, help="Baseline start (default: same length before)."),
    baseline_end: str = typer.Option(None, help="Baseline end (default: the window's start)."),
    as_json: bool = JsonOption,
) -> None:
    """Walk the isolate -> data -> infra -> model checklist for a window and rank the causes."""
    from observe.api.errors import ApiError
    from observe.api.params import parse_time, resolve_window
    from observe.pipeline.diagnosis import Windows, run_diagnosis
    from observe.storage import models as model_store

    try:
        start_at, end_at = resolve_window(start, end, default_seconds=3600)
        windows = Windows.resolve(
            start_at,
            end_at,
            parse_time(baseline_start, "baseline-start"),
            parse_time(baseline_end, "baseline-end"),
        )
    except ApiError as error:
        raise fail(error.detail, 2) from None
    except ValueError as error:
        raise fail(str(error), 2) from None
    settings = load_settings()
    db = open_database(settings)
    with db.sessions() as session:
        if model_store.get_model(session, model) is None:
            raise fail(f"no model named {model!r}")
        diagnosis = run_diagnosis(
            session, model=model, windows=windows, rollup_tags=settings.rollup_tags
        )
    if as_json:
        print_json(diagnosis.as_dict())
        return
    _print_diagnosis(diagnosis)


def _print_diagnosis(diagnosis: Any) -> None:
    symptom = diagnosis.symptom
    out.print(
        f"[bold]{diagnosis.model}[/bold] {diagnosis.window[0]:%Y-%m-%d %H:%M} – "
        f"{diagnosis.window[1]:%H:%M} UTC against {diagnosis.baseline[0]:%Y-%m-%d %H:%M} – "
        f"{diagnosis.baseline[1]:%H:%M}"
    )
    steps = Table("step", "check", "status", "finding")
    for step in diagnosis.steps:
        style = STATUS_STYLE[step.status]
        steps.add_row(step.step, step.check, f"[{style}]{step.status}[/{style}]", step.summary)
    out.print(steps)
    if not diagnosis.causes:
        verdict = "regressed" if symptom.is_regression else "did not regress"
        out.print(f"Nothing stands out ({symptom.metric} {verdict}).")
        return
    causes = Table("#", "cause", "score", "scope", "evidence", "action")
    for rank, cause in enumerate(diagnosis.causes, start=1):
        scope = ", ".join(f"{k}={v}" for k, v in cause.scope.items())
        causes.add_row(
            str(rank), cause.kind, f"{cause.score:.2f}", scope, cause.summary, cause.action
        )
    out.print(causes)


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


def _time_option(value: str | None, name: str) -> dt.datetime | None:
    from observe.api.errors import ApiError
    from observe.api.params import parse_time

    try:
        return parse_time(value, name)
    except ApiError as error:
        raise fail(error.detail, 2) from None


def _validation_message(error: ValidationError) -> str:
    from observe.schemas.common import describe_error

    return "; ".join(
        f"--{(field or '').replace('_', '-')}: {message}"
        for field, message in (describe_error(detail) for detail in error.errors())
    )


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


# --- analyze latency ---------------------------------------------------------------------------


@analyze_app.command("latency")
def analyze_latency(
    model: str = typer.Option(..., "--model", help="Model name."),
    version: list[str] = typer.Option(
        None, "--version", help="Only this version's series (repeatable)."
    ),
    start: str = typer.Option(
        None, help="Window start: RFC 3339, epoch seconds or -24h (default)."
    ),
    end: str = typer.Option(None, help="Window end (default now)."),
    percentile: list[float] = typer.Option(
        None, "--percentile", help="Percentile to analyse, 0-100 (repeatable; default 50, 95, 99)."
    ),
    bucket: str = typer.Option("5m", help="Bucket of the percentile series: 1m, 5m, 1h, ..."),
    as_json: bool = JsonOption,
) -> None:
    """Latency regressions: change points in the per-bucket percentile series of the model and
    each version, with the before/after test, the nearest change event and the slices that
    carry each."""
    from observe.api.errors import ApiError
    from observe.api.params import parse_duration
    from observe.pipeline import latency_analysis

    start_at, end_at = _window(start, end)
    percentiles = percentile or [50.0, 95.0, 99.0]
    if any(not 0 < p < 100 for p in percentiles):
        raise fail("--percentile must be between 0 and 100, exclusive", 2)
    try:
        bucket_seconds = parse_duration(bucket, "--bucket")
    except ApiError as error:
        raise fail(error.detail, 2) from None
    settings = load_settings()
    db = open_database(settings)
    try:
        with db.sessions() as session:
            regressions = latency_analysis.detect_regressions(
                session,
                model=model,
                start=start_at,
                end=end_at,
                bucket_seconds=bucket_seconds,
                percentiles=percentiles,
                model_versions=version or None,
                rollup_tags=settings.rollup_tags,
            )
    except ValueError as error:
        raise fail(str(error), 2) from None
    if as_json:
        print_json(
            {
                "model": model,
                "start": start_at,
                "end": end_at,
                "bucket_seconds": bucket_seconds,
                "percentiles": percentiles,
                "regressions": [r.as_dict() for r in regressions],
            }
        )
        return
    _print_regressions(model, start_at, end_at, regressions)


def _print_regressions(
    model: str, start: dt.datetime, end: dt.datetime, regressions: list[Any]
) -> None:
    out.print(f"{model}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC")
    if not regressions:
        out.print("no latency regressions")
        return
    table = Table(
        "onset (UTC)",
        "series",
        "pct",
        "before ms",
        "after ms",
        "x",
        "p",
        "status",
        "carried by",
        "event before",
    )
    for r in regressions:
        test = r.significance["quantile_test"]
        top = r.carriers[0] if r.carriers and r.carriers[0]["explained"] >= 0.5 else None
        event = r.event
        table.add_row(
            f"{r.onset_at:%Y-%m-%d %H:%M}",
            r.series,
            f"p{r.percentile:g}",
            _ms(r.before_ms),
            _ms(r.after_ms),
            f"{r.ratio:.2f}",
            f"{test['p_value']:.1e}",
            "open" if r.is_open else f"cleared {r.cleared_at:%H:%M}",
            f"{top['dimension']}={top['value']}" if top else "-",
            f"{event['kind']} {event.get('model_version') or ''} "
            f"({event['seconds_before_onset'] / 60:.0f} min)"
            if event
            else "-",
        )
    out.print(table)


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
    if as_json:
        print_json(summary.as_dict())
    else:
        rate = summary.num_rows / summary.seconds if summary.seconds else 0.0
        out.print(
            f"{file.name}: {summary.num_rows:,} spans read, {summary.num_imported:,} imported, "
            f"{summary.num_duplicates:,} duplicates, {summary.num_rejected:,} rejected "
            f"({summary.seconds:.1f} s, {rate:,.0f} spans/s)"
        )
        if summary.rejects_path:
            out.print(f"rejected spans and lines and their reasons: {summary.rejects_path}")
    if summary.num_rejected:
        raise typer.Exit(3)


# --- collect -----------------------------------------------------------------------------------

DEFAULT_SERVER_URL = "http://127.0.0.1:8080"
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0}

ApiKeyOption = typer.Option(
    None,
    "--api-key",
    envvar="OBSERVE_API_KEY",
    help="A key with the ingest scope (default $OBSERVE_API_KEY).",
    show_envvar=False,
)
IntervalOption = typer.Option("10s", help="Time between polls: 500ms, 10s, 1m ...")
OnceOption = typer.Option(
    False, "--once", help="Take one reading (rates from two, 1 s apart), send it and exit."
)
DryRunOption = typer.Option(
    False, "--dry-run", help="Print the samples as JSON lines instead of sending them."
)
MaxBufferOption = typer.Option(
    100_000, min=1, help="Samples held while the server is unreachable; more are dropped."
)
FlushTimeoutOption = typer.Option(
    "30s", help="How long to keep trying to deliver held samples when stopping."
)


def _seconds(value: str, option: str) -> float:
    match = _SECONDS.match(value)
    seconds = float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise fail(f"{option}: {value!r} is not a positive duration such as 500ms, 10s or 1m", 2)
    return seconds


@collect_app.command("gpu")
def collect_gpu(
    server_url: str = typer.Option(
        DEFAULT_SERVER_URL,
        "--server-url",
        "--url",
        envvar="OBSERVE_URL",
        help="The observe server (default $OBSERVE_URL or http://127.0.0.1:8080).",
        show_envvar=False,
    ),
    api_key: str = ApiKeyOption,
    host: str = typer.Option(None, help="Host name of the samples (default: this machine's)."),
    interval: str = IntervalOption,
    host_metrics: bool = typer.Option(
        True, "--host-metrics/--no-host-metrics", help="Also send host CPU and memory."
    ),
    once: bool = OnceOption,
    dry_run: bool = DryRunOption,
    max_buffer: int = MaxBufferOption,
    flush_timeout: str = FlushTimeoutOption,
) -> None:
    """Poll this machine's GPUs through NVML (and its CPU and memory) until stopped."""
    import socket

    from collectors.host import HostCollector
    from collectors.nvml import NvmlCollector, NvmlUnavailable

    host_name = host or socket.gethostname()
    gpus = NvmlCollector(host=host_name)
    try:
        gpus.open()
    except NvmlUnavailable as error:
        raise fail(str(error)) from None
    collectors: list[Any] = [gpus]
    if host_metrics:
        collectors.append(HostCollector(host=host_name))
        collectors[-1].open()
    what = f"{gpus.num_gpus} GPU(s){' and CPU/memory' if host_metrics else ''} of {host_name}"
    try:
        _collect(
            collectors,
            what,
            server_url,
            api_key,
            interval,
            once,
            dry_run,
            max_buffer,
            flush_timeout,
        )
    finally:
        for collector in collectors:
            collector.close()


@collect_app.command("prometheus")
def collect_prometheus(
    url: str = typer.Option(
        ..., "--url", help="Prometheus endpoint to scrape, e.g. http://node:9400/metrics."
    ),
    server_url: str = typer.Option(
        DEFAULT_SERVER_URL,
        "--server-url",
        envvar="OBSERVE_URL",
        help="The observe server (default $OBSERVE_URL or http://127.0.0.1:8080).",
        show_envvar=False,
    ),
    api_key: str = ApiKeyOption,
    host: str = typer.Option(
        None, help="Host name of every sample (default: Hostname label, else the target's)."
    ),
    interval: str = IntervalOption,
    keep_unknown: bool = typer.Option(
        False, "--keep-unknown", help="Also send metrics observe has no name for, as they are."
    ),
    timeout: str = typer.Option("5s", help="Scrape timeout."),
    once: bool = OnceOption,
    dry_run: bool = DryRunOption,
    max_buffer: int = MaxBufferOption,
    flush_timeout: str = FlushTimeoutOption,
) -> None:
    """Scrape a Prometheus endpoint (dcgm-exporter, node-exporter) until stopped."""
    from collectors.prometheus import PrometheusCollector, http_fetch

    if not url.startswith(("http://", "https://")):
        raise fail(f"--url: {url!r} is not an http:// or https:// URL", 2)
    fetch = http_fetch(url, timeout_seconds=_seconds(timeout, "--timeout"))
    collector = PrometheusCollector(url, host=host, keep_unknown=keep_unknown, fetch=fetch)
    _collect(
        [collector], url, server_url, api_key, interval, once, dry_run, max_buffer, flush_timeout
    )


def _collect(
    collectors: list[Any],
    what: str,
    server_url: str,
    api_key: str | None,
    interval: str,
    once: bool,
    dry_run: bool,
    max_buffer: int,
    flush_timeout: str,
) -> None:
    """Poll until SIGINT/SIGTERM (or once), sending through the SDK client; exit 1 when
    samples could not all be delivered."""
    import threading

    from observe.client import Client
    from observe.pipeline.polling import PollFailed, client_sink, poll_until_stopped

    interval_seconds = _seconds(interval, "--interval")
    flush_seconds = _seconds(flush_timeout, "--flush-timeout")
    if not dry_run and not server_url.startswith(("http://", "https://")):
        raise fail(f"--server-url: {server_url!r} is not an http:// or https:// URL", 2)
    stop = threading.Event()
    send: Callable[[list[dict[str, Any]]], None]
    if dry_run:
        client = None
        send = _print_samples
    else:
        client = Client(
            server_url, api_key=api_key, batch_size=min(1000, max_buffer), max_buffer=max_buffer
        )
        send = client_sink(client)
    when = "once" if once else f"every {interval_seconds:g} s until stopped (Ctrl-C)"
    err.print(f"reading {what} {when}; {'printing' if dry_run else f'sending to {server_url}'}")
    try:
        with _stop_on_signals(stop):
            stats = poll_until_stopped(
                collectors, send, interval_seconds=interval_seconds, stop=stop, once=once
            )
    except PollFailed as error:
        if client is not None:
            client.close(timeout=0)
        raise fail(str(error)) from None
    if client is None:
        return
    delivered = client.close(timeout=flush_seconds)
    sent = client.stats
    err.print(
        f"{stats.num_polls} polls ({stats.num_failed_polls} failed), {stats.num_samples} "
        f"samples: {sent.num_sent} delivered, {sent.num_dropped} dropped, "
        f"{sent.num_rejected} rejected"
        + (f"; last error: {sent.last_error}" if not delivered and sent.last_error else "")
    )
    if not delivered or sent.num_dropped or sent.num_rejected:
        raise typer.Exit(1)


def _print_samples(samples: list[dict[str, Any]]) -> None:
    for sample in samples:
        sys.stdout.write(orjson.dumps(sample, option=orjson.OPT_NAIVE_UTC).decode() + "\n")
    sys.stdout.flush()


@contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop`, so the loop ends and held samples are flushed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- analyze drift / skew, import reference / whylogs --------------------------------------------


def _assignments(values: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition("=") if "=" in item else item.partition(":")
        if not sep or not key or not value:
            raise fail(f"{option}: {item!r} must look like feature=value", 2)
        pairs[key] = value
    return pairs


def _thresholds(values: list[str] | None) -> dict[str, float]:
    thresholds = {}
    for key, value in _assignments(values, "--threshold").items():
        try:
            thresholds[key] = float(value)
        except ValueError:
            raise fail(f"--threshold: {value!r} for {key} is not a number", 2) from None
        if not 0 <= thresholds[key] < float("inf"):
            raise fail(f"--threshold: {key} must be a finite number >= 0", 2)
    return thresholds


def _optional_time(value: str | None, name: str) -> dt.datetime | None:
    from observe.api.errors import ApiError
    from observe.api.params import parse_time

    try:
        return parse_time(value, name)
    except ApiError as error:
        raise fail(error.detail, 2) from None


@analyze_app.command("drift")
def analyze_drift(
    model: str = typer.Option(..., "--model", help="Model name."),
    version: str = typer.Option(None, "--version", help="Model version (default: all)."),
    start: str = typer.Option(None, help="Window start (default 24 h before end)."),
    end: str = typer.Option(None, help="Window end (default now)."),
    baseline_start: str = typer.Option(None, help="Baseline window start."),
    baseline_end: str = typer.Option(None, help="Baseline window end."),
    reference: str = typer.Option(None, help="Reference data set name (default: the newest)."),
    test: list[str] = typer.Option(None, "--test", help="feature=test, e.g. amount=psi."),
    threshold: list[str] = typer.Option(
        None, "--threshold", help="feature=value, e.g. amount=0.2."
    ),
    drift_share: float = typer.Option(None, min=0.0, max=1.0, help="Share of drifted features."),
    html: Path = typer.Option(None, "--html", help="Also write an Evidently HTML report here."),
    as_json: bool = JsonOption,
) -> None:
    """Per-feature drift of a window against a reference data set or a baseline window."""
    from observe.pipeline import drift as drift_pipeline

    start_at, end_at = _window(start, end)
    query = drift_pipeline.DriftQuery(
        model=model,
        start=start_at,
        end=end_at,
        model_version=version,
        baseline_start=_optional_time(baseline_start, "baseline-start"),
        baseline_end=_optional_time(baseline_end, "baseline-end"),
        reference=reference,
        tests=_assignments(test, "--test"),
        thresholds=_thresholds(threshold),
        drift_share=drift_share,
    )
    settings = load_settings()
    db = open_database(settings)
    try:
        report = drift_pipeline.analyze_drift(
            db, query, settings=settings, now=dt.datetime.now(dt.UTC)
        )
    except drift_pipeline.DriftInputError as error:
        raise fail(str(error)) from None
    if html is not None:
        _write_evidently_html(db, report, html)
    if as_json:
        print_json(report.to_dict())
        return
    _print_drift(report)


def _write_evidently_html(db: Database, report: Any, path: Path) -> None:
    from observe.pipeline import evidently_export

    try:
        evidently_export.write_report(db, report, path)
    except evidently_export.ExportError as error:
        raise fail(str(error)) from None
    err.print(f"Evidently report written to {path}")


def _print_drift(report: Any) -> None:
    result = report.result
    baseline = report.baseline.to_dict()
    against = (
        f"reference {baseline['reference']['name']}"
        if baseline["kind"] == "reference"
        else f"{baseline['start']:%Y-%m-%d %H:%M} – {baseline['end']:%Y-%m-%d %H:%M}"
    )
    out.print(
        f"{report.model} {report.model_version or '(all versions)'}: "
        f"{report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} UTC against {against} "
        f"({result.source}; {report.num_rows_current:,} vs {report.num_rows_baseline:,} rows)"
    )
    table = Table("feature", "kind", "test", "statistic", "p-value", "threshold", "drift")
    for f in result.features:
        table.add_row(
            f.feature,
            f.kind,
            f.test,
            f"{f.statistic:.4g}",
            "-" if f.p_value is None else f"{f.p_value:.4g}",
            f"{f.threshold:g}",
            "[red]yes[/red]" if f.drifted else "no",
        )
    out.print(table)
    for name, reason in result.skipped.items():
        out.print(f"skipped {name}: {reason}")
    verdict = "[red]drifted[/red]" if result.dataset_drifted else "not drifted"
    out.print(
        f"data set {verdict}: {result.num_drifted} of {len(result.features)} features "
        f"({result.share_drifted:.0%}, threshold {result.drift_share:.0%})"
    )


@analyze_app.command("skew")
def analyze_skew(
    model: str = typer.Option(..., "--model", help="Model name."),
    version: str = typer.Option(None, "--version", help="Model version (default: all)."),
    reference: str = typer.Option(None, help="Reference data set name (default: the newest)."),
    start: str = typer.Option(None, help="Window start (default 24 h before end)."),
    end: str = typer.Option(None, help="Window end (default now)."),
    join_key: str = typer.Option(
        None, help="request_id, or a feature naming the entity in both data sets."
    ),
    test: list[str] = typer.Option(None, "--test", help="feature=test, e.g. amount=psi."),
    threshold: list[str] = typer.Option(None, "--threshold", help="feature=value."),
    as_json: bool = JsonOption,
) -> None:
    """Training-serving skew: schema, distribution and feature-value skew."""
    from observe.pipeline.drift import DriftInputError
    from observe.pipeline.skew import SkewQuery
    from observe.pipeline.skew import analyze_skew as run_skew

    start_at, end_at = _window(start, end)
    query = SkewQuery(
        model=model,
        start=start_at,
        end=end_at,
        model_version=version,
        reference=reference,
        join_key=join_key,
        tests=_assignments(test, "--test"),
        thresholds=_thresholds(threshold),
    )
    settings = load_settings()
    db = open_database(settings)
    try:
        report = run_skew(db, query, settings=settings)
    except DriftInputError as error:
        raise fail(str(error)) from None
    if as_json:
        print_json(report.to_dict())
        return
    _print_skew(report)


def _print_skew(report: Any) -> None:
    result = report.result
    schema = result.schema
    out.print(
        f"{report.model} {report.model_version or '(all versions)'} against reference "
        f"{report.reference.name} ({report.num_rows_serving:,} serving rows)"
    )
    out.print(f"missing features: {', '.join(schema.missing) or 'none'}")
    out.print(f"extra features: {', '.join(schema.extra) or 'none'}")
    for name, types in schema.retyped.items():
        out.print(f"retyped {name}: {types['reference']} in training, {types['serving']} serving")
    for name, unseen in schema.unseen_categories.items():
        out.print(
            f"unseen categories of {name}: {unseen['num_values']} values, "
            f"{unseen['share']:.1%} of serving values ({', '.join(unseen['values'][:5])})"
        )
    _print_drift_table(result.distribution)
    if result.join_key:
        table = Table("feature", "joined", "mismatch rate", "mean |diff|", "max |diff|")
        for v in result.values:
            table.add_row(
                v.feature,
                f"{v.num_joined:,}",
                f"{v.mismatch_rate:.2%}",
                "-" if v.mean_abs_diff is None else f"{v.mean_abs_diff:.4g}",
                "-" if v.max_abs_diff is None else f"{v.max_abs_diff:.4g}",
            )
        out.print(f"feature values of {result.num_joined:,} entities joined on {result.join_key}:")
        out.print(table)


def _print_drift_table(result: Any) -> None:
    table = Table("feature", "kind", "test", "score", "threshold", "skew")
    for f in result.features:
        table.add_row(
            f.feature,
            f.kind,
            f.test,
            f"{f.score:.4g}",
            f"{f.threshold:g}",
            "[red]yes[/red]" if f.drifted else "no",
        )
    out.print(table)


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
            hour=_optional_time(hour, "hour"),
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


# --- demo --------------------------------------------------------------------------------------


@app.command()
def demo(
    days: int = typer.Option(7, min=1, max=60, help="Days of serving data to generate."),
    seed: int = typer.Option(7, help="Random seed."),
    serve_after: bool = typer.Option(
        True, "--serve/--no-serve", help="Serve the API after loading."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Delete earlier demo data first."),
) -> None:
    """Build a realistic demo data set in the database, then serve it."""
    from observe.demo import build_demo

    settings = load_settings()
    db = open_database(settings)
    out.print(f"Building {days} days of demo data in {safe_url(settings.database_url)} ...")
    report = build_demo(db, settings=settings, days=days, seed=seed, fresh=fresh, log=err.print)
    out.print(report.describe())
    db.engine.dispose()
    if serve_after:
        run_server(settings)


# --- weekly reports ----------------------------------------------------------------------------


@app.command()
def report(
    week: str = typer.Option(
        None, "--week", help="ISO week such as 2026-W47 (default: the last complete week)."
    ),
    model: list[str] = typer.Option(
        None, "--model", help="Only this model's report (repeatable); default: all and a summary."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Directory for <week>/<model>.html and .json (default: OBSERVE_REPORT_DIR, "
        "else <data dir>/reports).",
    ),
    deliver: bool = typer.Option(
        False,
        "--deliver",
        help="Also send the week through the configured channels (webhook, email), again if "
        "it was sent before.",
    ),
    rerender: bool = typer.Option(
        False, "--rerender", help="Build the reports again and replace the stored ones."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write a week's reports now: each model's and a summary, as self-contained HTML and JSON.
    Reports already stored for the week are reused (--rerender builds them again)."""
    from observe.pipeline import reports as report_pipeline
    from observe.pipeline.weeks import Week, last_complete_week

    now = dt.datetime.now(dt.UTC)
    try:
        chosen = Week.parse(week) if week else last_complete_week(now)
    except ValueError as error:
        raise fail(f"--week: {error}", 2) from None
    try:
        report_pipeline.check_week_is_over(chosen, now)
    except report_pipeline.WeekNotOver as error:
        raise fail(str(error), 2) from None
    if deliver and model:
        raise fail("--deliver sends the whole week: leave out --model", 2)
    settings = load_settings()
    folder = (out or settings.report_directory or Path("reports")) / chosen.name
    db = open_database(settings)
    try:
        result = report_pipeline.write_week(
            db, chosen, settings=settings, now=now, models=model or None, rerender=rerender
        )
    except LookupError as error:
        raise fail(str(error.args[0])) from None
    files = _write_report_files(folder, result.reports)
    outcome = _deliver_week(db, settings, chosen, now) if deliver else None
    if as_json:
        print_json(_report_json(chosen, result, files, outcome))
    else:
        _print_reports(chosen, result, files, outcome)
    if outcome is not None and (outcome.retrying or outcome.failed):
        raise typer.Exit(1)


def _write_report_files(folder: Path, reports: list[Any]) -> dict[int, list[Path]]:
    from observe.pipeline.delivery import write_report_files

    try:
        return {r.id: write_report_files(folder, r.content or {}) for r in reports}
    except OSError as error:
        raise fail(f"cannot write the reports to {folder}: {error}") from None


def _deliver_week(db: Database, settings: Settings, week: Any, now: dt.datetime) -> Any:
    from observe.pipeline.delivery import Deliverer
    from observe.pipeline.reports import queue_week_delivery

    deliverer = Deliverer.from_settings(db, settings)
    if not deliverer.channel_names:
        raise fail(
            "no delivery channel is configured (OBSERVE_REPORT_DIR, OBSERVE_WEBHOOK_URL, "
            "OBSERVE_SMTP_HOST)"
        )
    queue_week_delivery(db, week, deliverer.channel_names, now=now, requeue=True)
    return deliverer.deliver_due(now=now)


def _report_json(week: Any, result: Any, files: dict[int, list[Path]], outcome: Any) -> Any:
    deliveries = None
    if outcome is not None:
        deliveries = [{"channel": d.channel, "status": "sent"} for d in outcome.sent] + [
            {"channel": d.channel, "status": status, "error": error}
            for status, items in (("retrying", outcome.retrying), ("failed", outcome.failed))
            for d, error in items
        ]
    return {
        "week": week.name,
        "window": {"start": week.start, "end": week.end},
        "num_written": result.num_written,
        "reports": [
            {
                "id": r.id,
                "kind": r.kind,
                "model": r.model,
                "num_needs_attention": r.num_needs_attention,
                "files": [str(path) for path in files[r.id]],
            }
            for r in result.reports
        ],
        "deliveries": deliveries,
    }


def _print_reports(week: Any, result: Any, files: dict[int, list[Path]], outcome: Any) -> None:
    before = len(result.reports) - result.num_written
    out.print(
        f"[bold]Week {week.name}[/bold] ({week.start:%Y-%m-%d} – {week.end:%Y-%m-%d}): "
        f"{result.num_written} written now, {before} stored before"
    )
    table = Table("report", "needs attention", "files")
    for r in result.reports:
        names = " ".join(path.name for path in reversed(files[r.id]))
        table.add_row(r.model or "summary", str(r.num_needs_attention), names)
    out.print(table)
    folders = sorted({str(path.parent) for paths in files.values() for path in paths})
    for folder in folders:
        out.print(f"in {folder}", soft_wrap=True)
    if outcome is None:
        return
    for d in outcome.sent:
        out.print(f"delivered via {d.channel}")
    for status, items in (("will be retried", outcome.retrying), ("failed", outcome.failed)):
        for d, error in items:
            err.print(f"[red]delivery via {d.channel} {status}:[/red] {error}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
