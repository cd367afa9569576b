"""The composition root: `create_app(settings)` builds everything inside the FastAPI lifespan."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from dashboards.app import mount_ui
from dashboards.session import create_signer
from observe import __version__
from observe.api import (
    diagnoses,
    drift,
    findings,
    health,
    ingest,
    kserve,
    models,
    otlp,
    profiles,
    records,
    regressions,
    reports,
    traces,
)
from observe.api.deps import refuse_nul_parameters
from observe.api.errors import install_error_handlers
from observe.api.security import KeyVerifier, RedactQueryKeys
from observe.api.telemetry import Telemetry, TelemetryMiddleware
from observe.config import Settings
from observe.db import migrate
from observe.db.engine import Database, create_database
from observe.pipeline import reports as report_pipeline
from observe.pipeline.alerts import notify_incidents
from observe.pipeline.analysis import CHECK_INTERVAL_SECONDS, analysis_job
from observe.pipeline.delivery import Deliverer
from observe.pipeline.kserve import expire_kserve_pairs
from observe.pipeline.profiling import refresh_profiles
from observe.pipeline.retention import apply_retention
from observe.pipeline.scheduler import Job, Scheduler
from observe.pipeline.writer import BatchWriter, Writer

log = logging.getLogger(__name__)

KEY_USAGE_INTERVAL_SECONDS = 60.0
KSERVE_EXPIRY_INTERVAL_SECONDS = 60.0


class SchemaOutOfDate(RuntimeError):
    """The database is not at the newest migration and migrate_on_start is off."""


def create_app(
    settings: Settings, *, engine: Engine | None = None, writer: Writer | None = None
) -> FastAPI:
    """Build the API app. Nothing connects until the lifespan starts.

    Args:
        settings: configuration.
        engine: use this engine instead of one made from settings.database_url (tests).
        writer: use this writer instead of a `BatchWriter` (tests pass an `ImmediateWriter`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = _database(settings, engine)
        _prepare_schema(db, settings)
        app.state.db = db
        app.state.writer = writer or _batch_writer(db, settings)
        app.state.writer.stats.listener = app.state.telemetry
        app.state.keys = KeyVerifier(db.sessions)
        if ui is not None:
            app.state.ui_signer = create_signer(settings)
        app.state.writer.start()
        scheduler = Scheduler(_jobs(app, settings))
        app.state.scheduler = scheduler
        scheduler.start()
        access_log = logging.getLogger("uvicorn.access")
        redact = RedactQueryKeys()
        access_log.addFilter(redact)
        try:
            yield
        finally:
            access_log.removeFilter(redact)
            scheduler.stop()
            app.state.writer.stop()
            if ui is not None:
                ui.close()
            if engine is None:
                db.engine.dispose()

    app = FastAPI(
        title="observe",
        version=__version__,
        summary="ML observability and root-cause diagnosis",
        description="Ingest inference records, labels, events, metrics and OpenTelemetry spans "
        "(OTLP/HTTP at /v1/traces); read models, latency series, records and traces. Send an API "
        "key as `Authorization: Bearer KEY` or `X-API-Key: KEY`.",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul_parameters)],
    )
    app.state.settings = settings
    app.state.writer = writer
    app.state.telemetry = Telemetry()
    app.state.profile_upload_slots = threading.BoundedSemaphore(profiles.MAX_CONCURRENT_UPLOADS)
    install_error_handlers(app)
    routers = (
        ingest,
        otlp,
        kserve,
        models,
        regressions,
        records,
        traces,
        findings,
        diagnoses,
        profiles,
        drift,
        reports,
        health,
    )
    for module in routers:
        app.include_router(module.router)
    ui = mount_ui(app, settings) if settings.ui_enabled else None
    app.add_middleware(TelemetryMiddleware, telemetry=app.state.telemetry)
    return app


def create_app_from_environment() -> FastAPI:
    """The app with settings from OBSERVE_* variables: what each server worker process runs
    when `observe serve` starts several (uvicorn's factory mode)."""
    return create_app(Settings())


def _database(settings: Settings, engine: Engine | None) -> Database:
    if engine is None:
        return create_database(
            settings.database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.db_pool_size,
        )
    sessions = sessionmaker(engine, expire_on_commit=False)
    write_engine = (
        engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        if engine.dialect.name == "sqlite"
        else engine
    )
    return Database(engine, sessions, sessionmaker(write_engine, expire_on_commit=False))


def _prepare_schema(db: Database, settings: Settings) -> None:
    if settings.migrate_on_start:
        migrate.upgrade(db.engine)
    elif not migrate.is_up_to_date(db.engine):
        raise SchemaOutOfDate("the database schema is not up to date: run `observe db upgrade`")


def _batch_writer(db: Database, settings: Settings) -> BatchWriter:
    return BatchWriter(
        db.write_sessions,
        rollup_tags=settings.rollup_tags,
        num_threads=settings.num_writer_threads,
        max_queued_items=settings.writer_queue_items,
        write_timeout_seconds=settings.write_timeout_seconds,
    )


def _jobs(app: FastAPI, settings: Settings) -> list[Job]:
    db: Database = app.state.db

    def retention() -> object:
        return apply_retention(
            db.write_sessions,
            now=dt.datetime.now(dt.UTC),
            retention_days=settings.retention_days,
            rollup_retention_days=settings.rollup_retention_days,
        )

    def profiling() -> object:
        return refresh_profiles(
            db.write_sessions,
            now=dt.datetime.now(dt.UTC),
            lag_seconds=settings.profiling_lag_seconds,
        )

    def key_usage() -> object:
        return app.state.keys.record_usage(db.write_sessions)

    def kserve_expiry() -> object:
        unpaired = expire_kserve_pairs(
            db.write_sessions,
            now=dt.datetime.now(dt.UTC),
            timeout_seconds=settings.kserve_pair_timeout_seconds,
        )
        app.state.telemetry.on_unpaired(unpaired)
        return unpaired

    expiry_interval = min(KSERVE_EXPIRY_INTERVAL_SECONDS, settings.kserve_pair_timeout_seconds)
    deliverer = Deliverer.from_settings(db, settings, listener=app.state.telemetry)

    def alerts(now: dt.datetime) -> object:
        return notify_incidents(
            db, settings=settings, now=now, deliverer=deliverer, listener=app.state.telemetry
        )

    return [
        Job("retention", settings.retention_interval_seconds, retention, first_delay_seconds=60.0),
        Job(
            "profiling",
            settings.profiling_interval_seconds,
            profiling,
            first_delay_seconds=min(30.0, settings.profiling_interval_seconds),
        ),
        Job(
            "key-usage",
            KEY_USAGE_INTERVAL_SECONDS,
            key_usage,
            first_delay_seconds=KEY_USAGE_INTERVAL_SECONDS,
        ),
        # Checked every minute; the claim in the database makes each interval run once.
        Job(
            "analysis",
            min(CHECK_INTERVAL_SECONDS, settings.analysis_interval_seconds),
            analysis_job(db, settings, after=alerts if settings.alerts_enabled else None),
            first_delay_seconds=CHECK_INTERVAL_SECONDS,
        ),
        Job("kserve-expiry", expiry_interval, kserve_expiry, first_delay_seconds=expiry_interval),
        # Checked every minute: writes the weeks the schedule made due (once across servers)
        # and sends the deliveries that are due.
        Job(
            "reports",
            report_pipeline.CHECK_INTERVAL_SECONDS,
            report_pipeline.report_job(
                db, settings, deliverer=deliverer, listener=app.state.telemetry
            ),
            first_delay_seconds=report_pipeline.CHECK_INTERVAL_SECONDS,
        ),
    ]
