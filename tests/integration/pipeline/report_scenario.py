"""Two weeks of serving with known answers, for the weekly report tests (week 2026-W47 against
2026-W46), stored through observe's own write path.

fraud-scorer serves v1 (about 40 ms, one request in 200 failing) from gpu-1 and gpu-2, one
request every 10 minutes, every 2 minutes in the day either side of the deploy: on Wednesday
of W47 at 12:00 v2 is deployed and takes all traffic at
twice the latency with one request in 50 failing, which breaks its SLO (p95 under 60 ms,
errors under 1 %). The hourly analysis, run 6 hours after the deploy, stores the latency
regression, the SLO breaches and the day's drift findings. A training reference of v2 has a
feature (`merchant`) serving never sends. ranker serves v1 (about 20 ms) from gpu-3 every 10
minutes; its `amount` feature moves up in W47 (drift against W46), and it is rolled back on
Friday. GPUs report every hour; gpu-2 peaks at 15,500 of 16,000 MB.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import analysis, ingest
from observe.pipeline.weeks import Week
from observe.schemas.records import EventIn, InferenceRecordIn, MetricSampleIn
from observe.storage import models as model_store
from observe.storage import signals as signal_store
from tests.factories import records_in, stored_reference

WEEK = Week(2026, 47)
PREVIOUS = Week(2026, 46)
DEPLOY_AT = WEEK.start + dt.timedelta(days=2, hours=12)
ROLLBACK_AT = WEEK.start + dt.timedelta(days=4, hours=9)
ANALYSED_AT = DEPLOY_AT + dt.timedelta(hours=6)
#: When the report is written: the Monday after the week, at the default schedule's time.
REPORT_AT = WEEK.end + dt.timedelta(hours=6)
#: When the records are received (so that the profiling job, which folds records received a
#: minute or more before its run, takes them all in, at the analysis and at the report).
RECEIVED_AT = PREVIOUS.start
ROLLUP_TAGS = ("host",)
#: fraud-scorer's requests: dense around the deploy (so that 5-minute buckets have enough for
#: the regression analysis), sparse elsewhere (so the scenario stores quickly).
DENSE_SPACING = dt.timedelta(minutes=2)
SPARSE_SPACING = dt.timedelta(minutes=10)
DENSE = (DEPLOY_AT - dt.timedelta(days=1), DEPLOY_AT + dt.timedelta(days=1))
RANKER_SPACING = dt.timedelta(minutes=10)
MEMORY_TOTAL_MB = 16_000.0
GPU_MEMORY_USED_MB = {"gpu-1": 8_000.0, "gpu-2": 15_500.0, "gpu-3": 4_000.0}
GPU_UTILIZATION_PCT = {"gpu-1": 50.0, "gpu-2": 60.0, "gpu-3": 40.0}


def settings_for(settings: Settings) -> Settings:
    """The test settings with the scenario's rolled-up tags."""
    return settings.model_copy(update={"rollup_tags": ROLLUP_TAGS})


def seed(db: Database, settings: Settings, *, analyse: bool = True) -> None:
    """Store the two weeks (and, with `analyse`, the hourly analysis's findings)."""
    _store(db, fraud_scorer() + ranker())
    with db.write_sessions.begin() as session:
        signal_store.insert_events(session, events(), received_at=REPORT_AT)
        signal_store.insert_metric_samples(session, metrics())
        model_store.set_slo(
            session,
            "fraud-scorer",
            latency_percentile=95,
            latency_ms=60,
            error_rate_pct=1.0,
            now=PREVIOUS.start,
        )
        model_store.set_slo(
            session,
            "ranker",
            latency_percentile=95,
            latency_ms=100,
            error_rate_pct=None,
            now=PREVIOUS.start,
        )
    training = pd.DataFrame({"amount": np.linspace(5, 200, 300), "merchant": ["shop"] * 300})
    stored_reference(db, training, model_version="v2", name="training", now=PREVIOUS.start)
    if analyse:
        analysis.analyze_models(db, now=ANALYSED_AT, settings=settings_for(settings))


def _store(db: Database, items: list[InferenceRecordIn]) -> None:
    for first in range(0, len(items), 5000):
        with db.write_sessions.begin() as session:
            ingest.store_records(
                session, items[first : first + 5000], rollup_tags=ROLLUP_TAGS, now=RECEIVED_AT
            )


def fraud_scorer(*, seed: int = 0) -> list[InferenceRecordIn]:
    rng = np.random.default_rng(seed)
    items = []
    moment, i = PREVIOUS.start, 0
    while moment < WEEK.end:
        is_v2 = moment >= DEPLOY_AT
        latency_ms = float(rng.lognormal(np.log(40.0), 0.2)) * (2.0 if is_v2 else 1.0)
        failing = i % (50 if is_v2 else 200) == 0
        items.append(
            _record(
                "fraud-scorer",
                i,
                moment,
                latency_ms,
                version="v2" if is_v2 else "v1",
                host=("gpu-1", "gpu-2")[i % 2],
                amount=float(rng.lognormal(3.0, 1.0)),
                failing=failing,
            )
        )
        is_dense = DENSE[0] <= moment < DENSE[1]
        moment, i = moment + (DENSE_SPACING if is_dense else SPARSE_SPACING), i + 1
    return items


def ranker(*, seed: int = 1) -> list[InferenceRecordIn]:
    rng = np.random.default_rng(seed)
    items = []
    moment, i = PREVIOUS.start, 0
    while moment < WEEK.end:
        shifted = moment >= WEEK.start
        amount = float(rng.lognormal(3.7 if shifted else 3.0, 0.5))
        latency_ms = float(rng.lognormal(np.log(20.0), 0.2))
        items.append(
            _record("ranker", i, moment, latency_ms, version="v1", host="gpu-3", amount=amount)
        )
        moment, i = moment + RANKER_SPACING, i + 1
    return items


def _record(
    model: str,
    i: int,
    moment: dt.datetime,
    latency_ms: float,
    *,
    version: str,
    host: str,
    amount: float,
    failing: bool = False,
) -> InferenceRecordIn:
    return InferenceRecordIn.model_validate(
        {
            "model": model,
            "model_version": version,
            "timestamp": moment.isoformat(),
            "request_id": f"{model}-{i}",
            "latency_ms": round(latency_ms, 3),
            "status": "error" if failing else "ok",
            "features": {"amount": round(amount, 3), "country": "DE"},
            "tags": {"host": host},
        }
    )


def events() -> list[EventIn]:
    return [
        EventIn(
            timestamp=DEPLOY_AT - dt.timedelta(minutes=1),
            model="fraud-scorer",
            kind="deploy",
            model_version="v2",
            traffic_pct=100,
            description="roll out v2",
        ),
        EventIn(
            timestamp=ROLLBACK_AT,
            model="ranker",
            kind="rollback",
            model_version="v1",
            description="back to v1",
        ),
    ]


def metrics() -> list[MetricSampleIn]:
    samples = []
    moment = PREVIOUS.start
    while moment < WEEK.end:
        for host in ("gpu-1", "gpu-2", "gpu-3"):
            # Memory climbs to its peak in the week's last hour.
            is_peak = moment >= WEEK.end - dt.timedelta(hours=1)
            used = GPU_MEMORY_USED_MB[host] * (1.0 if is_peak else 0.8)
            values = {
                "gpu_utilization_pct": GPU_UTILIZATION_PCT[host],
                "gpu_memory_used_mb": used,
                "gpu_memory_total_mb": MEMORY_TOTAL_MB,
                "gpu_temperature_c": 60.0,
            }
            samples += [
                MetricSampleIn(timestamp=moment, host=host, resource="gpu0", name=n, value=v)
                for n, v in values.items()
            ]
        moment += dt.timedelta(hours=1)
    return samples


def write_small_week(db: Database, settings: Settings) -> None:
    """A quick alternative: 300 fraud-scorer records in W47, written as the week's reports."""
    from observe.pipeline import reports

    items = records_in(300, start=WEEK.start + dt.timedelta(hours=1), spacing_seconds=1800)
    with db.write_sessions.begin() as session:
        ingest.store_records(session, items, rollup_tags=ROLLUP_TAGS, now=WEEK.start)
    reports.write_week(db, WEEK, settings=settings, now=REPORT_AT)
