"""Retention: delete raw rows and rollups past their age, in short transactions."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session, sessionmaker

from observe.storage import feature_profiles as profile_store
from observe.storage import retention as retention_store
from observe.storage import rollups as rollup_store
from observe.storage import span_rollups as span_rollup_store

log = logging.getLogger(__name__)

DELETE_CHUNK = 5_000


def apply_retention(
    write_sessions: sessionmaker[Session],
    *,
    now: dt.datetime,
    retention_days: float,
    rollup_retention_days: float,
) -> dict[str, int]:
    """Delete raw rows older than `retention_days` and rollups (latency and span duration)
    older than `rollup_retention_days`; returns the number of rows deleted per table."""
    raw_cutoff = now - dt.timedelta(days=retention_days)
    deleted = {}
    for table in retention_store.RAW_TABLES:
        deleted[table] = _delete_in_chunks(write_sessions, table, raw_cutoff)
    with write_sessions.begin() as session:
        cutoff = now - dt.timedelta(days=rollup_retention_days)
        deleted["latency_rollups"] = rollup_store.delete_rollups_before(session, cutoff)
        deleted["span_rollups"] = span_rollup_store.delete_span_rollups_before(session, cutoff)
        deleted["feature_profiles"] = profile_store.delete_feature_profiles_before(session, cutoff)
    if any(deleted.values()):
        log.info("retention deleted %s", {k: v for k, v in deleted.items() if v})
    return deleted


def _delete_in_chunks(
    write_sessions: sessionmaker[Session], table: str, cutoff: dt.datetime
) -> int:
    total = 0
    while True:
        with write_sessions.begin() as session:
            count = retention_store.delete_raw_rows_before(
                session, table, cutoff, limit=DELETE_CHUNK
            )
        total += count
        if count < DELETE_CHUNK:
            return total
