"""Storing validated batches: the records, everything derived from them, in one transaction.

Each `store_*` function takes the caller's session; the batch writer wraps a batch in one
transaction, so a batch is stored completely or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from observe.pipeline import spans as span_pipeline
from observe.pipeline.rollups import RecordColumns, update_latency_rollups
from observe.schemas.record_table import RecordTable, as_record_table
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn, MetricSampleIn
from observe.schemas.spans import SpanIn
from observe.storage import models as model_store
from observe.storage import records as record_store
from observe.storage import signals as signal_store


@dataclass(frozen=True)
class IngestCounts:
    """How many items of a batch were stored now, and how many were already there."""

    accepted: int
    new: int
    duplicates: int

    def __add__(self, other: IngestCounts) -> IngestCounts:
        return IngestCounts(
            self.accepted + other.accepted, self.new + other.new, self.duplicates + other.duplicates
        )


def store_records(
    session: Session,
    records: RecordTable | Sequence[InferenceRecordIn],
    *,
    rollup_tags: Sequence[str],
    now: dt.datetime,
) -> IngestCounts:
    """Insert new records, register their model versions, add them to the rollups and link
    the traces they carry to their model."""
    table = as_record_table(records, tag_keys=rollup_tags)
    result = record_store.insert_records(session, table, received_at=now)
    new = table.take(result.new_positions)
    columns = RecordColumns.of(new)
    model_store.record_versions_seen(session, _versions_seen(columns), now=now)
    update_latency_rollups(session, columns, rollup_tags)
    span_pipeline.link_records_to_traces(session, span_pipeline.trace_links(new))
    return IngestCounts(len(table), result.num_new, result.num_duplicates)


def _versions_seen(columns: RecordColumns) -> list[model_store.VersionSeen]:
    if not columns.versions:
        return []
    codes = columns.version_codes
    first = np.full(len(columns.versions), np.inf)
    last = np.full(len(columns.versions), -np.inf)
    np.minimum.at(first, codes, columns.epoch_seconds)
    np.maximum.at(last, codes, columns.epoch_seconds)
    return [
        model_store.VersionSeen(model, version, _utc(first[code]), _utc(last[code]))
        for code, (model, version) in enumerate(columns.versions)
    ]


def _utc(epoch_seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC)


def store_labels(session: Session, labels: Sequence[LabelIn], *, now: dt.datetime) -> IngestCounts:
    """Insert or update labels; `duplicates` counts labels that changed nothing."""
    written, unchanged = record_store.upsert_labels(session, labels, received_at=now)
    return IngestCounts(len(labels), written, unchanged)


def store_events(session: Session, events: Sequence[EventIn], *, now: dt.datetime) -> IngestCounts:
    new, duplicates = signal_store.insert_events(session, events, received_at=now)
    return IngestCounts(len(events), new, duplicates)


def store_metric_samples(
    session: Session, samples: Sequence[MetricSampleIn], *, now: dt.datetime
) -> IngestCounts:
    new, duplicates = signal_store.insert_metric_samples(session, samples)
    return IngestCounts(len(samples), new, duplicates)


def store_spans(session: Session, spans: Sequence[SpanIn], *, now: dt.datetime) -> IngestCounts:
    """Insert new spans, link them to models, and update trace summaries and span rollups."""
    new = span_pipeline.ingest_spans(session, spans, now=now)
    return IngestCounts(len(spans), new, len(spans) - new)
