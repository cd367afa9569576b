"""A small incident for the UI tests, stored through observe's own write path.

fraud-scorer serves v1 for four hours, then v2 is deployed and runs twice as slow for the last
two hours, breaking the p95 SLO; a latency regression and a drift finding are open for it.
ranker runs steadily within its SLO. Two GPUs report metrics; gpu-2 runs hot in the last hour.
Every timestamp is relative to `end` (a whole minute), so the UI's default 24-hour window
holds all of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from observe.db.engine import Database
from observe.pipeline.profiles import import_profile_file
from observe.pipeline.references import store_reference
from observe.pipeline.writer import BatchKind, ImmediateWriter
from observe.schemas.findings import FindingIn
from observe.schemas.profiles import ProfileMeta
from observe.schemas.records import EventIn, InferenceRecordIn, MetricSampleIn
from observe.schemas.spans import SpanIn
from observe.storage import findings as finding_store
from observe.storage import models as model_store
from tests.factories import span_in

SPACING_SECONDS = 20
V1_HOURS, V2_HOURS = 4, 2
#: v1 latencies cycle through these; v2 doubles them.
LATENCY_CYCLE_MS = (30.0, 35.0, 40.0, 45.0, 50.0)
NUM_V1 = V1_HOURS * 3600 // SPACING_SECONDS
NUM_V2 = V2_HOURS * 3600 // SPACING_SECONDS
NUM_RANKER = (V1_HOURS + V2_HOURS) * 3600 // 60
NUM_V2_ERRORS = NUM_V2 // 50  # every 50th v2 request fails
REGRESSION_SUMMARY = "p95 of fraud-scorer rose from 50 ms to 100 ms after the v2 deploy"
DEPLOY_DESCRIPTION = "roll out v2 (new tokenizer)"
HOT_GPU_TEMPERATURE_C = 91.5
METRIC_SPACING_MINUTES = 5


@dataclass(frozen=True)
class Seeded:
    end: dt.datetime
    deploy_at: dt.datetime


def seed_incident(db: Database, *, end: dt.datetime | None = None) -> Seeded:
    end = (end or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    start = end - dt.timedelta(hours=V1_HOURS + V2_HOURS)
    deploy_at = start + dt.timedelta(hours=V1_HOURS)
    writer = ImmediateWriter(db.write_sessions, rollup_tags=("host",))
    writer.submit(BatchKind.RECORDS, _fraud_scorer(start)).result()
    writer.submit(BatchKind.RECORDS, _ranker(start)).result()
    writer.submit(BatchKind.EVENTS, _events(deploy_at)).result()
    writer.submit(BatchKind.METRICS, _metrics(start, end)).result()
    with db.write_sessions.begin() as session:
        model_store.set_slo(
            session,
            "fraud-scorer",
            latency_percentile=95,
            latency_ms=60,
            error_rate_pct=1.0,
            now=end,
        )
        model_store.set_slo(
            session, "ranker", latency_percentile=99, latency_ms=250, error_rate_pct=1.0, now=end
        )
        finding_store.upsert_findings(session, _findings(deploy_at, end), now=end)
    return Seeded(end, deploy_at)


def _fraud_scorer(start: dt.datetime) -> list[InferenceRecordIn]:
    records = []
    for i in range(NUM_V1 + NUM_V2):
        is_v2 = i >= NUM_V1
        latency = LATENCY_CYCLE_MS[i % len(LATENCY_CYCLE_MS)] * (2.0 if is_v2 else 1.0)
        is_error = is_v2 and (i - NUM_V1) % 50 == 49
        records.append(
            InferenceRecordIn(
                model="fraud-scorer",
                model_version="v2" if is_v2 else "v1",
                timestamp=start + dt.timedelta(seconds=i * SPACING_SECONDS),
                request_id=f"f-{i}",
                latency_ms=latency,
                status="error" if is_error else "ok",
                features={"amount": float(i % 97)},
                prediction=0.1,
                tags={"host": "gpu-1" if i % 2 else "gpu-2"},
            )
        )
    return records


def _ranker(start: dt.datetime) -> list[InferenceRecordIn]:
    return [
        InferenceRecordIn(
            model="ranker",
            model_version="r3",
            timestamp=start + dt.timedelta(minutes=i),
            request_id=f"r-{i}",
            latency_ms=100.0 + (i % 10),
            tags={"host": "gpu-1"},
        )
        for i in range(NUM_RANKER)
    ]


def _events(deploy_at: dt.datetime) -> list[EventIn]:
    return [
        EventIn(
            timestamp=deploy_at,
            model="fraud-scorer",
            kind="deploy",
            model_version="v2",
            traffic_pct=100,
            description=DEPLOY_DESCRIPTION,
        )
    ]


def _metrics(start: dt.datetime, end: dt.datetime) -> list[MetricSampleIn]:
    samples = []
    minutes = int((end - start).total_seconds()) // 60
    for minute in range(0, minutes, METRIC_SPACING_MINUTES):
        at = start + dt.timedelta(minutes=minute)
        hot = minute >= minutes - 60
        for host, utilization in (("gpu-1", 40.0), ("gpu-2", 60.0)):
            temperature = HOT_GPU_TEMPERATURE_C if host == "gpu-2" and hot else 65.0
            for name, value in (
                ("gpu_utilization_pct", utilization),
                ("gpu_temperature_c", temperature),
                ("gpu_memory_used_mb", 20_000.0),
            ):
                samples.append(
                    MetricSampleIn(timestamp=at, host=host, resource="gpu0", name=name, value=value)
                )
    return samples


def _findings(deploy_at: dt.datetime, end: dt.datetime) -> list[FindingIn]:
    return [
        FindingIn(
            kind="latency_regression",
            model="fraud-scorer",
            model_version="v2",
            window_start=deploy_at - dt.timedelta(hours=2),  # the baseline it was compared to
            window_end=end,
            status="open",
            severity=0.8,
            summary=REGRESSION_SUMMARY,
            details={"series": "v2", "onset_at": deploy_at.isoformat()},
            dedupe_key="latency_regression:fraud-scorer:v2",
        ),
        FindingIn(
            kind="drift",
            model="fraud-scorer",
            window_start=end - dt.timedelta(hours=6),
            window_end=end,
            status="open",
            summary="amount drifted",
            dedupe_key="drift:fraud-scorer",
        ),
        FindingIn(
            kind="drift",
            model="ranker",
            window_start=end - dt.timedelta(hours=6),
            window_end=end,
            status="ok",
            summary="no feature drifted",
            dedupe_key="drift:ranker",
        ),
    ]


# --- a canary incident, for triage ------------------------------------------------------------

CANARY_MODEL = "checkout"
CANARY_VERSION, STABLE_VERSION = "v7", "v6"
CANARY_SHARE = 0.25
CANARY_SLOWDOWN = 3.0
CANARY_HOSTS = ("gpu-1", "gpu-2")
CANARY_PER_MINUTE = 20
#: The canary starts this long before `end` and serves until `end`; the hour before it is
#: v6 alone. The diagnosis window is the canary's first hour.
CANARY_STARTS_BEFORE_END = dt.timedelta(hours=3)
CANARY_HOURS_BEFORE = 1
TRACE_EVERY = 10
LOOKUP_MS = 4.0
CHANGED_OPERATOR = "aten::addmm"
CANARY_SUMMARY = "p95 of checkout rose from 24 ms to 55 ms when the v7 canary started"
COUNTRIES = ("DE", "FR", "NL", "PL")
UNSEEN_COUNTRY = "BR"
DEVICES = ("ios", "android")
#: The training reference: the features of the hour before the canary, one amount in five
#: different, `device` never recorded in training and `channel` never sent when serving.
NUM_REFERENCE = CANARY_HOURS_BEFORE * 60 * CANARY_PER_MINUTE
SKEWED_EVERY = 5
REFERENCE_NAME = "training"
PROFILES = {STABLE_VERSION: "profile_v1.json.gz", CANARY_VERSION: "profile_v2.json.gz"}
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True)
class Canary:
    end: dt.datetime
    onset_at: dt.datetime
    window_end: dt.datetime
    slowest_trace_id: str
    profile_ids: dict[str, int]

    def triage_query(self) -> str:
        """The triage page's query string for the canary's first hour."""
        return (
            f"model={CANARY_MODEL}&start={self.onset_at:%Y-%m-%dT%H:%M:%SZ}"
            f"&end={self.window_end:%Y-%m-%dT%H:%M:%SZ}"
        )


def seed_canary(db: Database, *, end: dt.datetime | None = None, seed: int = 7) -> Canary:
    """checkout: v6 on two hosts, then a v7 canary on a quarter of the traffic that runs three
    times slower (its profiler trace spends the extra time in aten::addmm); every tenth request
    is traced (a feature store lookup, then the forward pass); a training reference for v6; a
    stored latency regression at the canary's start. Independent of `seed_incident`: another
    model, no metrics of its own."""
    end = (end or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    onset = end - CANARY_STARTS_BEFORE_END
    start = onset - dt.timedelta(hours=CANARY_HOURS_BEFORE)
    records, spans = _canary_traffic(start, onset, end, np.random.default_rng(seed))
    writer = ImmediateWriter(db.write_sessions, rollup_tags=("host",))
    writer.submit(BatchKind.RECORDS, records).result()
    writer.submit(BatchKind.SPANS, spans).result()
    writer.submit(BatchKind.EVENTS, [_canary_event(onset)]).result()
    profile_ids = _canary_profiles(db, onset)
    _canary_reference(db, records, end)
    with db.write_sessions.begin() as session:
        model_store.set_slo(
            session, CANARY_MODEL, latency_percentile=95, latency_ms=40, error_rate_pct=1.0, now=end
        )
        finding_store.upsert_findings(session, [_canary_finding(onset, end)], now=end)
    slowest = max(
        (s for s in spans if s.parent_span_id is None),
        key=lambda s: s.end_time_unix_nano - s.start_time_unix_nano,
    )
    return Canary(end, onset, onset + dt.timedelta(hours=1), slowest.trace_id, profile_ids)


def _canary_traffic(
    start: dt.datetime, onset: dt.datetime, end: dt.datetime, rng: np.random.Generator
) -> tuple[list[InferenceRecordIn], list[SpanIn]]:
    records: list[InferenceRecordIn] = []
    spans: list[SpanIn] = []
    num = int((end - start).total_seconds()) // 60 * CANARY_PER_MINUTE
    for i in range(num):
        at = start + dt.timedelta(seconds=i * 60 / CANARY_PER_MINUTE)
        is_canary = at >= onset and rng.random() < CANARY_SHARE
        version = CANARY_VERSION if is_canary else STABLE_VERSION
        forward_ms = 15.0 * rng.lognormal(0, 0.2) * (CANARY_SLOWDOWN if is_canary else 1.0)
        latency = round(LOOKUP_MS + forward_ms + 1.0, 3)
        trace_id = None
        if i % TRACE_EVERY == 0:
            trace_id = f"{0xC0FFEE:08x}{i:024x}"
            spans += _canary_trace(trace_id, at, version, forward_ms)
        records.append(
            InferenceRecordIn(
                model=CANARY_MODEL,
                model_version=version,
                timestamp=at,
                request_id=f"c-{i}",
                latency_ms=latency,
                features=_canary_features(i, is_canary, rng),
                prediction=0.2,
                input_size=float(rng.integers(50, 150)),
                tags={"host": CANARY_HOSTS[i % len(CANARY_HOSTS)]},
                trace_id=trace_id,
            )
        )
    return records, spans


def _canary_features(number: int, is_canary: bool, rng: np.random.Generator) -> dict[str, Any]:
    """amount triples in the canary; one canary request in five comes from a country never
    seen in training; the others cycle, so their shares stay put."""
    country = COUNTRIES[number % len(COUNTRIES)]
    if is_canary and number % 5 == 0:
        country = UNSEEN_COUNTRY
    return {
        "amount": round(float(rng.gamma(2.0, 40.0)) * (3.0 if is_canary else 1.0), 2),
        "country": country,
        "num_items": number % 5 + 1,
        "device": DEVICES[number % len(DEVICES)],
    }


def _canary_trace(trace_id: str, at: dt.datetime, version: str, forward_ms: float) -> list[SpanIn]:
    """predict (root, names the model) -> feature_store.lookup (client), then forward."""
    root_id = f"{int(trace_id[-8:], 16) + 1:08x}00000000"
    total_ms = LOOKUP_MS + forward_ms + 1.0
    children = (
        ("feature_store.lookup", "client", 0.5, LOOKUP_MS, {"db.system": "redis", "keys": 12}),
        ("forward", "internal", 0.5 + LOOKUP_MS, forward_ms, {"model.version": version}),
    )
    spans = [
        span_in(
            model=CANARY_MODEL,
            trace_id=trace_id,
            span_id=root_id,
            start=at,
            duration_ms=total_ms,
            service_name=CANARY_MODEL,
            status_code="ok",
            attributes={"model.name": CANARY_MODEL, "model.version": version},
            resource_attributes={"service.name": CANARY_MODEL},
        )
    ]
    for number, (name, kind, offset_ms, ms, attributes) in enumerate(children, start=1):
        spans.append(
            span_in(
                trace_id=trace_id,
                span_id=f"{root_id[:8]}{number:08x}",
                parent_span_id=root_id,
                name=name,
                kind=kind,
                start=at + dt.timedelta(milliseconds=offset_ms),
                duration_ms=ms,
                service_name=CANARY_MODEL,
                attributes=attributes,
                resource_attributes={"service.name": CANARY_MODEL},
            )
        )
    return spans


def _canary_event(onset: dt.datetime) -> EventIn:
    return EventIn(
        timestamp=onset - dt.timedelta(minutes=1),
        model=CANARY_MODEL,
        kind="canary",
        model_version=CANARY_VERSION,
        traffic_pct=100 * CANARY_SHARE,
        description="canary v7 (fused attention)",
    )


def _canary_profiles(db: Database, onset: dt.datetime) -> dict[str, int]:
    ids = {}
    for version, name in PROFILES.items():
        meta = ProfileMeta(
            model=CANARY_MODEL,
            model_version=version,
            host=CANARY_HOSTS[0],
            captured_at=onset + dt.timedelta(minutes=10),
        )
        stored = import_profile_file(db.write_sessions, DATA_DIR / name, meta, now=onset)
        ids[version] = stored.profile.id
    return ids


def _canary_reference(db: Database, records: list[InferenceRecordIn], end: dt.datetime) -> None:
    """v6's training data (see NUM_REFERENCE)."""
    rows = []
    for number, record in enumerate(records[:NUM_REFERENCE]):
        features = {k: v for k, v in (record.features or {}).items() if k != "device"}
        if number % SKEWED_EVERY == 0:
            features["amount"] = round(float(features["amount"]) + 10.0, 2)
        rows.append({"request_id": record.request_id, **features, "channel": "web"})
    store_reference(
        db,
        pd.DataFrame(rows),
        model=CANARY_MODEL,
        model_version=STABLE_VERSION,
        name=REFERENCE_NAME,
        source="test",
        max_rows=10_000,
        now=end,
    )


def _canary_finding(onset: dt.datetime, end: dt.datetime) -> FindingIn:
    return FindingIn(
        kind="latency_regression",
        model=CANARY_MODEL,
        model_version=CANARY_VERSION,
        window_start=onset - dt.timedelta(hours=1),
        window_end=end,
        status="open",
        severity=0.9,
        summary=CANARY_SUMMARY,
        details={"series": CANARY_VERSION, "onset_at": onset.isoformat()},
        dedupe_key=f"latency_regression:{CANARY_MODEL}:{CANARY_VERSION}",
    )
