"""`observe serve` and `observe demo`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from observe.cli.base import app, err, fail, load_settings, open_database, out, safe_url
from observe.config import Settings

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
