"""Seeded serving histories with a known latency regression, for the analysis tests."""

from __future__ import annotations

import datetime as dt

import numpy as np

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import ingest
from observe.schemas.records import EventIn, InferenceRecordIn
from observe.storage import signals as signal_store
from tests.factories import T0, record

ROLLUP_TAGS = ("host", "canary")
HISTORY = dt.timedelta(hours=4)
AFTER = dt.timedelta(hours=2)
SPACING_SECONDS = 2.0


def settings_for(settings: Settings) -> Settings:
    """The test settings with the scenarios' rolled-up tags."""
    return settings.model_copy(update={"rollup_tags": ROLLUP_TAGS})


def canary_history(
    *, seed: int = 0, share: float = 0.3, slowdown: float = 2.5
) -> tuple[list[InferenceRecordIn], list[EventIn]]:
    """v1 serves alone for 4 h; at T0 a canary of v2 takes 30 % (`share`) of the requests and
    is 2.5 (`slowdown`) times slower. A canary event precedes it by one minute; a config change
    hours earlier."""
    rng = np.random.default_rng(seed)
    items = []
    for i, moment in enumerate(_moments()):
        is_canary = moment >= T0 and rng.random() < share
        latency_ms = float(rng.lognormal(np.log(40.0), 0.25)) * (slowdown if is_canary else 1.0)
        items.append(
            _record(
                i,
                moment,
                latency_ms,
                version="v2" if is_canary else "v1",
                host=str(rng.choice(["gpu-1", "gpu-2", "gpu-3"])),
                canary="true" if is_canary else "false",
            )
        )
    events = [
        EventIn(timestamp=T0 - dt.timedelta(hours=3), model="fraud-scorer", kind="config"),
        EventIn(
            timestamp=T0 - dt.timedelta(minutes=1),
            model="fraud-scorer",
            kind="canary",
            model_version="v2",
            traffic_pct=30,
            description="canary v2",
        ),
    ]
    return items, events


def host_history(*, seed: int = 1) -> tuple[list[InferenceRecordIn], list[EventIn]]:
    """v1 on three hosts; at T0 host gpu-3 gets twice as slow. No event."""
    rng = np.random.default_rng(seed)
    items = []
    for i, moment in enumerate(_moments()):
        host = str(rng.choice(["gpu-1", "gpu-2", "gpu-3"]))
        slow = moment >= T0 and host == "gpu-3"
        latency_ms = float(rng.lognormal(np.log(40.0), 0.25)) * (2.0 if slow else 1.0)
        items.append(_record(i, moment, latency_ms, version="v1", host=host, canary="false"))
    return items, []


def steady_history(*, seed: int = 2) -> tuple[list[InferenceRecordIn], list[EventIn]]:
    """Heavy-tailed but unchanging latency, with a deploy that changed nothing."""
    rng = np.random.default_rng(seed)
    items = []
    for i, moment in enumerate(_moments()):
        latency_ms = float(rng.lognormal(np.log(40.0), 0.25))
        if rng.random() < 0.01:
            latency_ms *= 20  # timeouts and retries: outliers, not a regression
        items.append(_record(i, moment, latency_ms, version="v1", host="gpu-1", canary="false"))
    event = EventIn(timestamp=T0, model="fraud-scorer", kind="deploy", model_version="v1")
    return items, [event]


def diurnal_history(
    *, days: int = 3, regression_at: dt.datetime | None = None, seed: int = 3
) -> tuple[list[InferenceRecordIn], list[EventIn]]:
    """Latency that rises 40 % every afternoon for `days` days before T0, one request a
    minute; optionally 1.8 times slower from `regression_at` on."""
    rng = np.random.default_rng(seed)
    items = []
    first = T0 - dt.timedelta(days=days)
    for i in range(days * 1440):
        moment = first + dt.timedelta(minutes=i)
        afternoon = 12 <= moment.hour < 18
        latency_ms = float(rng.lognormal(np.log(40.0), 0.1)) * (1.4 if afternoon else 1.0)
        if regression_at is not None and moment >= regression_at:
            latency_ms *= 1.8
        items.append(_record(i, moment, latency_ms, version="v1", host="gpu-1", canary="false"))
    return items, []


def store(db: Database, items: list[InferenceRecordIn], events: list[EventIn]) -> None:
    now = T0 + AFTER
    for first in range(0, len(items), 5000):
        with db.write_sessions.begin() as session:
            ingest.store_records(
                session, items[first : first + 5000], rollup_tags=ROLLUP_TAGS, now=now
            )
    if events:
        with db.write_sessions.begin() as session:
            signal_store.insert_events(session, events, received_at=now)


def _moments() -> list[dt.datetime]:
    count = int((HISTORY + AFTER).total_seconds() / SPACING_SECONDS)
    first = T0 - HISTORY
    return [first + dt.timedelta(seconds=i * SPACING_SECONDS) for i in range(count)]


def _record(
    i: int, moment: dt.datetime, latency_ms: float, *, version: str, host: str, canary: str
) -> InferenceRecordIn:
    return InferenceRecordIn.model_validate(
        record(
            request_id=f"req-{i}",
            timestamp=moment.isoformat(),
            latency_ms=round(latency_ms, 3),
            model_version=version,
            tags={"host": host, "canary": canary},
        )
    )
