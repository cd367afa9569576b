"""Writing the weekly reports: by the scheduler inside `observe serve`, or on request.

The report job runs every minute. Once the cron schedule (`report_cron`, in UTC) has fired,
the last complete ISO week is due, and so are the `report_catch_up_weeks - 1` weeks before it,
so that a server that was down when the schedule fired catches up (weeks that ended before the
first record are skipped). For each due week that has not been written, the first process to
claim it in the database (a `job_claims` row for the week's Monday) writes it: each model's
report, then the summary, each inserted once by its unique (week, kind, model). Then it queues
the week's delivery through every configured channel and sends it. Every other process, on
this server or another one on the same database, sees the claim and leaves the week alone; a
claim left unfinished for an hour (its process died) is taken over, and what it wrote stays.
Each run also sends the deliveries that are due again after a failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline.analysis import process_name, utc_now
from observe.pipeline.delivery import Deliverer, DeliveryListener
from observe.pipeline.report_content import (
    ReportContext,
    build_model_report,
    build_summary_report,
    models_of_week,
)
from observe.pipeline.weeks import Week, due_weeks
from observe.schemas.reports import ModelReport
from observe.storage import deliveries as delivery_store
from observe.storage import jobs as job_store
from observe.storage import models as model_store
from observe.storage import reports as report_store
from observe.storage.reports import StoredReport

log = logging.getLogger(__name__)

JOB_NAME = "weekly-report"
#: How often each process checks whether a week is due.
CHECK_INTERVAL_SECONDS = 60.0
#: A week claimed this long ago and not finished is taken over.
STALE_CLAIM = dt.timedelta(hours=1)


class WeekNotOver(ValueError):
    """A report was asked for a week that has not ended."""


@dataclass
class WeekResult:
    """A week's reports (the summary first, unless only some models were asked for) and how
    many of them this call wrote."""

    week: Week
    reports: list[StoredReport] = field(default_factory=list)
    num_written: int = 0


def check_week_is_over(week: Week, now: dt.datetime) -> None:
    """Refuse a week that has not ended: its report would change as it goes on."""
    if week.end > now:
        raise WeekNotOver(
            f"week {week} has not ended yet (it ends {week.end:%Y-%m-%d %H:%M} UTC); the last "
            f"complete week is {Week.containing(now).previous()}"
        )


def write_week(
    db: Database,
    week: Week,
    *,
    settings: Settings,
    now: dt.datetime,
    owner: str | None = None,
    models: Sequence[str] | None = None,
    rerender: bool = False,
    listener: DeliveryListener | None = None,
) -> WeekResult:
    """Write the reports of `week` that are not stored yet (all of them with `rerender`).

    Args:
        models: only these models' reports, and no summary; None for every model with traffic
            in the week or the week before, and the summary.
        rerender: build the reports again and replace the stored ones.
    """
    check_week_is_over(week, now)
    context = ReportContext(week, settings, now)
    owner = owner or process_name()
    names = models_of_week(db, week) if models is None else list(models)
    result = WeekResult(week)
    model_reports = []
    for name in names:
        stored, written = _model_report(db, name, context, owner=owner, rerender=rerender)
        model_reports.append(ModelReport.model_validate(stored.content))
        result.reports.append(stored)
        result.num_written += written
    if models is None:
        stored, written = _summary(db, model_reports, context, owner=owner, rerender=rerender)
        result.reports.insert(0, stored)
        result.num_written += written
    if result.num_written and listener is not None:
        listener.on_reports_written(result.num_written)
    return result


def _model_report(
    db: Database, model: str, context: ReportContext, *, owner: str, rerender: bool
) -> tuple[StoredReport, int]:
    week = context.week
    with db.sessions() as session:
        stored = report_store.find_report(session, week=week.name, model=model)
    if stored is not None and not rerender:
        return stored, 0
    content = build_model_report(db, model, context).model_dump(mode="json")
    return _save(db, week, model, content, stored, context.now, owner)


def _summary(
    db: Database,
    model_reports: list[ModelReport],
    context: ReportContext,
    *,
    owner: str,
    rerender: bool,
) -> tuple[StoredReport, int]:
    week = context.week
    with db.sessions() as session:
        stored = report_store.find_report(session, week=week.name, model=None)
    if stored is not None and not rerender:
        return stored, 0
    content = build_summary_report(db, model_reports, context).model_dump(mode="json")
    return _save(db, week, None, content, stored, context.now, owner)


def _save(
    db: Database,
    week: Week,
    model: str | None,
    content: dict[str, object],
    stored: StoredReport | None,
    now: dt.datetime,
    owner: str,
) -> tuple[StoredReport, int]:
    with db.write_sessions.begin() as session:
        if stored is not None:
            report_store.replace_report_content(session, stored.id, content, now=now, owner=owner)
            written = 1
        else:
            written = int(
                report_store.insert_report(
                    session,
                    week=week.name,
                    week_start=week.start,
                    model=model,
                    content=content,
                    now=now,
                    owner=owner,
                )
                is not None
            )
    with db.sessions() as session:
        found = report_store.find_report(session, week=week.name, model=model)
    assert found is not None  # inserted now, or by whoever won the insert
    return found, written


def queue_week_delivery(
    db: Database, week: Week, channels: Sequence[str], *, now: dt.datetime, requeue: bool = False
) -> None:
    """Make the week's reports due for delivery through `channels` (again, with `requeue`)."""
    with db.write_sessions.begin() as session:
        delivery_store.enqueue_deliveries(
            session, channels=channels, now=now, week=week.name, requeue=requeue
        )


# --- the scheduled job -------------------------------------------------------------------------


@dataclass
class ScheduleRun:
    """What one run of the report job did."""

    due: list[Week] = field(default_factory=list)
    written: list[Week] = field(default_factory=list)


def run_report_schedule(
    db: Database,
    *,
    settings: Settings,
    now: dt.datetime,
    deliverer: Deliverer,
    owner: str | None = None,
    listener: DeliveryListener | None = None,
) -> ScheduleRun:
    """Write every due week nobody has written (see the module's description), then send
    the deliveries that are due."""
    run = ScheduleRun()
    if settings.report_cron:
        run.due = _weeks_to_write(db, settings, now)
        for week in run.due:
            if not _claim(db, week, now=now, owner=owner or process_name()):
                continue
            try:
                _write_claimed(db, week, settings, now, deliverer, owner, listener)
            except Exception:  # left claimed, unfinished: taken over once the claim is stale
                log.exception("writing the weekly reports of %s failed", week)
                continue
            run.written.append(week)
    deliverer.deliver_due(now=now)
    return run


def _weeks_to_write(db: Database, settings: Settings, now: dt.datetime) -> list[Week]:
    weeks = due_weeks(settings.report_cron, now, catch_up_weeks=settings.report_catch_up_weeks)
    with db.sessions() as session:
        first_record = model_store.first_record_time(session)
        claims = job_store.load_job_claims(session, JOB_NAME, limit=len(weeks) + 60)
    if first_record is None:
        return []
    finished = {c.slot_start for c in claims if c.finished_at is not None}
    return [w for w in weeks if w.end > first_record and w.start not in finished]


def _claim(db: Database, week: Week, *, now: dt.datetime, owner: str) -> bool:
    with db.write_sessions.begin() as session:
        if job_store.claim_job_slot(session, JOB_NAME, week.start, now=now, owner=owner):
            return True
        return job_store.reclaim_stale_job_slot(
            session, JOB_NAME, week.start, now=now, owner=owner, stale_before=now - STALE_CLAIM
        )


def _write_claimed(
    db: Database,
    week: Week,
    settings: Settings,
    now: dt.datetime,
    deliverer: Deliverer,
    owner: str | None,
    listener: DeliveryListener | None,
) -> None:
    started = time.monotonic()
    result = write_week(db, week, settings=settings, now=now, owner=owner, listener=listener)
    queue_week_delivery(db, week, deliverer.channel_names, now=now)
    with db.write_sessions.begin() as session:
        job_store.finish_job_slot(session, JOB_NAME, week.start, now=utc_now())
    log.info(
        "weekly reports of %s: %d of %d written (%d models and the summary) in %.1f s",
        week,
        result.num_written,
        len(result.reports),
        len(result.reports) - 1,
        time.monotonic() - started,
    )


def report_job(
    db: Database,
    settings: Settings,
    *,
    deliverer: Deliverer,
    listener: DeliveryListener | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> Callable[[], ScheduleRun]:
    """The scheduler's callable: write the due weeks nobody has written, send what is due."""

    def run() -> ScheduleRun:
        now = clock() if clock else utc_now()
        return run_report_schedule(
            db, settings=settings, now=now, deliverer=deliverer, listener=listener
        )

    return run
