"""The KServe / Seldon payload-logger sink: joining request and response events into records.

The halves of one inference can reach different server processes, in either order. Each is
stored in `kserve_pairs` under the key of its CloudEvents source and id; the transaction that
brings the second half reads the first (holding the pair's row lock), joins them
(collectors.kserve.join_halves) and stores the records through the same path as
``POST /api/v1/records`` (validation, idempotency by request id, rollups), all in one
transaction. A repeated event, before or after the join, changes nothing.

A half whose partner has not come within the pair timeout is dropped by `expire_kserve_pairs`
and counted. Records need a latency, which only the pair gives; and KServe logs a response
only for a successful (200) answer, so an unpaired request usually means a failed inference,
counted in observe's own /metrics as ``observe_kserve_unpaired_halves_total{half="request"}``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from collectors.kserve import (
    InferenceHalf,
    KServePayloadError,
    decode_half,
    join_halves,
    read_cloudevents,
)
from observe.pipeline.ingest import IngestCounts, store_records
from observe.schemas.common import describe_error, simplify_errors
from observe.schemas.records import InferenceRecordIn
from observe.storage import kserve as kserve_store

log = logging.getLogger(__name__)

#: How long a joined pair is remembered, so that a redelivered event is still recognised.
JOINED_KEEP_SECONDS = 86_400.0
DELETE_CHUNK = 5_000


@dataclass(frozen=True)
class KServeCounts(IngestCounts):
    """`accepted` events; `new` records stored now; `duplicates` events seen before (or records
    stored before); `pending` events waiting for their partner."""

    pending: int = 0


def pair_key(half: InferenceHalf) -> str:
    """SHA-256 hex of the CloudEvents source and id shared by the two halves."""
    return hashlib.sha256(f"{half.source}\n{half.event_id}".encode()).hexdigest()


def with_arrival_time(half: InferenceHalf, received_at: dt.datetime) -> InferenceHalf:
    """The half, stamped with its arrival time when its event carried no ``time``."""
    return half if half.time is not None else dataclasses.replace(half, time=received_at)


def decode_kserve_request(
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_features: int,
    overrides: Mapping[str, str],
    received_at: dt.datetime,
) -> list[InferenceHalf]:
    """The halves carried by one HTTP request to the sink, each with a time.

    Raises:
        KServePayloadError: the request is not a usable payload-logger event (its `status`
            is the HTTP status to answer).
    """
    events = read_cloudevents(headers, body)
    return [
        with_arrival_time(
            decode_half(event, max_features=max_features, overrides=overrides), received_at
        )
        for event in events
    ]


def store_kserve_halves(
    session: Session,
    halves: Sequence[InferenceHalf],
    *,
    rollup_tags: Sequence[str],
    now: dt.datetime,
) -> KServeCounts:
    """Store each half, or join it with its stored partner and store the records.

    Halves are handled in pair-key order (request before response), so concurrent
    transactions lock pairs in the same order.

    Raises:
        KServePayloadError: a pair cannot be joined (no model name, counts that differ, a
            record the records API would refuse); the transaction must be rolled back.
    """
    new = duplicates = 0
    pending: set[str] = set()  # pairs whose half waits at the end of this batch
    ordered = sorted(halves, key=lambda h: (pair_key(h), h.kind != "request"))
    for half in ordered:
        key = pair_key(half)
        state = kserve_store.lock_pair(
            session, pair_key=key, event_id=half.event_id, received_at=now
        )
        stored = state.request if half.kind == "request" else state.response
        partner = state.response if half.kind == "request" else state.request
        if state.joined_at is not None or stored is not None:
            duplicates += 1
        elif partner is None:
            kserve_store.save_half(session, key, half.kind, half.to_json())
            pending.add(key)
        else:
            counts = _join(session, half, InferenceHalf.from_json(partner), rollup_tags, now)
            kserve_store.mark_joined(session, key, joined_at=now)
            pending.discard(key)
            new += counts.new
            duplicates += counts.duplicates
    return KServeCounts(len(halves), new, duplicates, len(pending))


def _join(
    session: Session,
    half: InferenceHalf,
    partner: InferenceHalf,
    rollup_tags: Sequence[str],
    now: dt.datetime,
) -> IngestCounts:
    request, response = (half, partner) if half.kind == "request" else (partner, half)
    records = []
    for index, record in enumerate(join_halves(request, response)):
        try:
            records.append(InferenceRecordIn.model_validate(record))
        except ValidationError as error:
            field, message = describe_error(simplify_errors(error.errors())[0])
            raise KServePayloadError(
                f"event {request.event_id}, instance {index}: {field}: {message}"
            ) from None
    if not records:
        return IngestCounts(0, 0, 0)
    return store_records(session, records, rollup_tags=rollup_tags, now=now)


def expire_kserve_pairs(
    write_sessions: sessionmaker[Session], *, now: dt.datetime, timeout_seconds: float
) -> dict[str, int]:
    """Drop halves whose partner did not come within `timeout_seconds`, and forget joined
    pairs after a day.

    Returns:
        Halves dropped unpaired: ``{"request": n, "response": m}``.
    """
    unpaired = {"request": 0, "response": 0}
    before = now - dt.timedelta(seconds=timeout_seconds)
    while True:
        with write_sessions.begin() as session:
            counts = kserve_store.delete_unjoined_pairs(session, before=before, limit=DELETE_CHUNK)
        for half, count in counts.items():
            unpaired[half] += count
        if sum(counts.values()) < DELETE_CHUNK:
            break
    joined_before = now - dt.timedelta(seconds=JOINED_KEEP_SECONDS)
    while True:
        with write_sessions.begin() as session:
            deleted = kserve_store.delete_joined_pairs(
                session, before=joined_before, limit=DELETE_CHUNK
            )
        if deleted < DELETE_CHUNK:
            break
    if any(unpaired.values()):
        log.info(
            "dropped payload-logger events whose partner never came: %d requests, %d responses",
            unpaired["request"],
            unpaired["response"],
        )
    return unpaired
