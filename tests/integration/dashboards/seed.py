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

from observe.db.engine import Database
from observe.pipeline.writer import BatchKind, ImmediateWriter
from observe.schemas.findings import FindingIn
from observe.schemas.records import EventIn, InferenceRecordIn, MetricSampleIn
from observe.storage import findings as finding_store
from observe.storage import models as model_store

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
