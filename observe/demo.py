"""A demo data set: a week of serving three models, with incidents worth finding.

Everything goes through the same pipeline as real traffic (validation, idempotent insert,
rollups). The week ends at the current minute, so the read API's default windows show it.

- fraud-scorer (GPU): v6 all week; v7 goes canary at 10 % two days before the end and rolls out
  fully the next morning. v7 is about 45 % slower at p95. Late fraud labels for 60 % of requests.
- recsys-ranker (GPU): latency grows with the number of candidates (input_size); a traffic
  surge three days before the end saturates the GPUs; host gpu-3 runs hot and throttles for
  three hours on the last day, slowing every request it serves.
- churn-classifier (CPU): `monthly_charges` drifts upward four days before the end; a
  30-minute error spike (a failing upstream) two days before the end, with an incident event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from observe.db.engine import Database
from observe.pipeline.ingest import IngestCounts
from observe.pipeline.writer import BatchKind, ImmediateWriter
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn, MetricSampleIn
from observe.storage import models as model_store

DEMO_MODELS = ("fraud-scorer", "recsys-ranker", "churn-classifier")
GPU_HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
CPU_HOSTS = ("cpu-1", "cpu-2")
REGIONS = ("eu-west", "us-east")
BATCH = 5_000
MINUTE = 60


@dataclass
class DemoReport:
    counts: dict[str, IngestCounts] = field(default_factory=dict)
    skipped: bool = False
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def describe(self) -> str:
        if self.skipped:
            return "Demo data is already loaded (use --fresh to rebuild it)."
        lines = [f"Demo data {self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC:"]
        for name, counts in self.counts.items():
            lines.append(f"  {name:<10} {counts.new:>9,} stored")
        return "\n".join(lines)


def build_demo(
    db: Database,
    *,
    days: int = 7,
    seed: int = 7,
    rollup_tags: Sequence[str] = (),
    fresh: bool = False,
    now: dt.datetime | None = None,
    log: Callable[[str], object] = print,
) -> DemoReport:
    """Generate and store the demo data set; skip if it is already there (unless `fresh`)."""
    with db.write_sessions.begin() as session:
        existing = {m.name for m in model_store.list_models(session)} & set(DEMO_MODELS)
        if existing and not fresh:
            return DemoReport(skipped=True)
        if existing:
            model_store.delete_models(session, DEMO_MODELS, hosts=GPU_HOSTS + CPU_HOSTS)
    end = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    rng = np.random.default_rng(seed)
    writer = ImmediateWriter(db.write_sessions, rollup_tags=rollup_tags)
    report = DemoReport(start=start, end=end)
    timeline = Timeline(start, end)
    for kind, items in _all_items(timeline, rng):
        batch_counts = writer.submit(kind, items).result()
        report.counts[kind.value] = (
            report.counts.get(kind.value, IngestCounts(0, 0, 0)) + batch_counts
        )
        if kind is BatchKind.RECORDS:
            log(f"  stored {report.counts[kind.value].new:,} records ...")
    with db.write_sessions.begin() as session:
        for model, (percentile, latency_ms, error_rate) in SLOS.items():
            model_store.set_slo(
                session,
                model,
                latency_percentile=percentile,
                latency_ms=latency_ms,
                error_rate_pct=error_rate,
                now=end,
            )
    return report


SLOS = {
    "fraud-scorer": (95.0, 60.0, 0.5),
    "recsys-ranker": (99.0, 250.0, 1.0),
    "churn-classifier": (95.0, 40.0, 1.0),
}


@dataclass(frozen=True)
class Timeline:
    start: dt.datetime
    end: dt.datetime

    def at(self, days_before_end: float) -> dt.datetime:
        return self.end - dt.timedelta(days=days_before_end)

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds()) // MINUTE

    def epoch(self, moment: dt.datetime) -> float:
        return moment.timestamp()


def _all_items(
    timeline: Timeline, rng: np.random.Generator
) -> Iterator[tuple[BatchKind, list[Any]]]:
    yield BatchKind.EVENTS, _events(timeline)
    for generator in (_fraud_scorer, _recsys_ranker, _churn_classifier):
        records = generator(timeline, rng)
        for offset in range(0, len(records), BATCH):
            yield BatchKind.RECORDS, records[offset : offset + BATCH]
        if generator is _fraud_scorer:
            yield BatchKind.LABELS, _late_labels(records, rng)
    samples = _gpu_metrics(timeline, rng)
    for offset in range(0, len(samples), BATCH):
        yield BatchKind.METRICS, samples[offset : offset + BATCH]


def _arrivals(
    timeline: Timeline, rng: np.random.Generator, per_minute: float
) -> npt.NDArray[np.float64]:
    """Request times (epoch seconds): Poisson arrivals with a diurnal cycle peaking at 15:00."""
    minute_starts = timeline.epoch(timeline.start) + MINUTE * np.arange(timeline.minutes)
    hour = (minute_starts % 86400) / 3600
    weekday = ((minute_starts // 86400) + 4) % 7  # 1970-01-01 was a Thursday
    weekend = np.where(weekday >= 5, 0.7, 1.0)
    rate = per_minute * weekend * (0.55 + 0.45 * np.cos((hour - 15) / 24 * 2 * np.pi))
    counts = rng.poisson(rate)
    times = np.repeat(minute_starts, counts) + rng.uniform(0, MINUTE, counts.sum())
    return np.sort(times)


def _records(
    model: str,
    times: npt.NDArray[np.float64],
    versions: Sequence[str],
    latency_ms: npt.NDArray[np.float64],
    features: dict[str, Sequence[Any]],
    predictions: Sequence[Any],
    tags: Sequence[dict[str, str]],
    *,
    errors: npt.NDArray[np.bool_] | None = None,
    input_size: npt.NDArray[np.float64] | None = None,
) -> list[InferenceRecordIn]:
    names = list(features)
    columns = [features[name] for name in names]
    records = []
    for i, moment in enumerate(times):
        is_error = bool(errors[i]) if errors is not None else False
        records.append(
            InferenceRecordIn(
                model=model,
                model_version=versions[i],
                timestamp=float(moment),
                request_id=f"{model}-{int(moment * 1000)}-{i}",
                latency_ms=float(round(latency_ms[i], 3)),
                status="error" if is_error else "ok",
                error="upstream feature store timed out" if is_error else None,
                features={name: column[i] for name, column in zip(names, columns, strict=True)},
                prediction=None if is_error else predictions[i],
                tags=tags[i],
                input_size=None if input_size is None else float(input_size[i]),
            )
        )
    return records


def _fraud_scorer(timeline: Timeline, rng: np.random.Generator) -> list[InferenceRecordIn]:
    times = _arrivals(timeline, rng, per_minute=14)
    n = times.size
    canary_at, rollout_at = (
        timeline.epoch(timeline.at(2)) + 14 * 3600,
        timeline.epoch(timeline.at(1)) + 9 * 3600,
    )
    canary_share = np.where(times >= rollout_at, 1.0, np.where(times >= canary_at, 0.10, 0.0))
    is_v7 = rng.uniform(size=n) < canary_share
    versions = np.where(is_v7, "v7", "v6")
    hosts = rng.choice(GPU_HOSTS, size=n)
    amount = np.round(rng.lognormal(3.6, 1.1, n), 2)
    latency = rng.gamma(6.0, 4.5, n) * np.where(is_v7, 1.45, 1.0) + 3.0
    score = 1 / (1 + np.exp(-(np.log(amount) - 5.5 + rng.normal(0, 1, n))))
    features = {
        "amount": amount.tolist(),
        "merchant_category": rng.choice(
            ["grocery", "travel", "electronics", "fuel", "online"], n, p=[0.35, 0.1, 0.15, 0.2, 0.2]
        ).tolist(),
        "country": rng.choice(["DE", "FR", "US", "GB", "NL"], n).tolist(),
        "card_present": (rng.uniform(size=n) < 0.6).tolist(),
        "account_age_days": rng.integers(1, 4000, n).tolist(),
        "num_tx_24h": rng.poisson(3, n).tolist(),
    }
    tags = [
        {"host": str(h), "region": REGIONS[i % 2], "canary": "true" if v else "false"}
        for i, (h, v) in enumerate(zip(hosts, is_v7, strict=True))
    ]
    return _records(
        "fraud-scorer",
        times,
        versions.tolist(),
        latency,
        features,
        np.round(score, 4).tolist(),
        tags,
    )


def _recsys_ranker(timeline: Timeline, rng: np.random.Generator) -> list[InferenceRecordIn]:
    times = _arrivals(timeline, rng, per_minute=10)
    surge_start = timeline.epoch(timeline.at(3)) + 18 * 3600
    in_surge = (times >= surge_start) & (times < surge_start + 2 * 3600)
    extra = times[in_surge]
    times = np.sort(
        np.concatenate(
            [times, extra + rng.uniform(0, 1, extra.size), extra + rng.uniform(0, 1, extra.size)]
        )
    )
    n = times.size
    in_surge = (times >= surge_start) & (times < surge_start + 2 * 3600)
    hosts = rng.choice(GPU_HOSTS, size=n)
    throttle_start = timeline.epoch(timeline.at(1)) + 13 * 3600
    throttled = (hosts == "gpu-3") & (times >= throttle_start) & (times < throttle_start + 3 * 3600)
    candidates = rng.integers(20, 400, n)
    latency = 25 + 0.35 * candidates + rng.gamma(3.0, 6.0, n)
    latency *= np.where(in_surge, 2.2, 1.0) * np.where(throttled, 1.8, 1.0)
    features = {
        "user_tenure_days": rng.integers(0, 3000, n).tolist(),
        "num_candidates": candidates.tolist(),
        "device": rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2]).tolist(),
        "session_length_s": np.round(rng.exponential(300, n), 1).tolist(),
    }
    tags = [{"host": str(h), "region": REGIONS[i % 2]} for i, h in enumerate(hosts)]
    predictions = [
        {"top_item": int(c % 997), "score": round(float(s), 4)}
        for c, s in zip(candidates, rng.uniform(size=n), strict=True)
    ]
    return _records(
        "recsys-ranker",
        times,
        ["v3"] * n,
        latency,
        features,
        predictions,
        tags,
        input_size=candidates.astype(float),
    )


def _churn_classifier(timeline: Timeline, rng: np.random.Generator) -> list[InferenceRecordIn]:
    times = _arrivals(timeline, rng, per_minute=6)
    n = times.size
    drift_at = timeline.epoch(timeline.at(4))
    charges = rng.normal(65, 18, n) + np.where(times >= drift_at, 22.0, 0.0)
    spike_start = timeline.epoch(timeline.at(2)) + 10 * 3600
    errors = (times >= spike_start) & (times < spike_start + 1800) & (rng.uniform(size=n) < 0.3)
    latency = rng.gamma(4.0, 4.0, n) + 2.0
    latency = np.where(errors, rng.uniform(900, 1200, n), latency)
    features = {
        "tenure_months": rng.integers(0, 72, n).tolist(),
        "monthly_charges": np.round(charges, 2).tolist(),
        "contract": rng.choice(
            ["month-to-month", "one-year", "two-year"], n, p=[0.55, 0.25, 0.2]
        ).tolist(),
        "support_calls": rng.poisson(1.2, n).tolist(),
        "paperless_billing": (rng.uniform(size=n) < 0.6).tolist(),
    }
    predictions = np.round(rng.beta(2, 5, n), 4).tolist()
    tags = [{"host": CPU_HOSTS[i % 2], "region": REGIONS[i % 2]} for i in range(n)]
    return _records(
        "churn-classifier",
        times,
        ["2024.11"] * n,
        latency,
        features,
        predictions,
        tags,
        errors=errors,
    )


def _late_labels(records: Sequence[InferenceRecordIn], rng: np.random.Generator) -> list[LabelIn]:
    chosen = rng.uniform(size=len(records)) < 0.6
    labels = []
    for record, keep in zip(records, chosen, strict=True):
        if keep and isinstance(record.prediction, float):
            is_fraud = rng.uniform() < record.prediction * 0.8
            labels.append(
                LabelIn(
                    model=record.model,
                    request_id=record.request_id,
                    label=int(is_fraud),
                    timestamp=record.timestamp + dt.timedelta(hours=6),
                )
            )
    return labels


def _gpu_metrics(timeline: Timeline, rng: np.random.Generator) -> list[MetricSampleIn]:
    samples = []
    minutes = timeline.epoch(timeline.start) + MINUTE * np.arange(timeline.minutes)
    hour = (minutes % 86400) / 3600
    base = 45 + 30 * np.cos((hour - 15) / 24 * 2 * np.pi)
    surge_start = timeline.epoch(timeline.at(3)) + 18 * 3600
    surge = (minutes >= surge_start) & (minutes < surge_start + 2 * 3600)
    throttle_start = timeline.epoch(timeline.at(1)) + 13 * 3600
    for host in GPU_HOSTS:
        utilization = np.clip(
            base + np.where(surge, 45, 0) + rng.normal(0, 4, minutes.size), 0, 100
        )
        hot = (
            (host == "gpu-3") & (minutes >= throttle_start) & (minutes < throttle_start + 3 * 3600)
        )
        temperature = 48 + 0.3 * utilization + np.where(hot, 28, 0) + rng.normal(0, 1, minutes.size)
        clock = np.where(hot, 1100, 1980) + rng.normal(0, 10, minutes.size)
        values = {
            "gpu_utilization_pct": utilization,
            "gpu_memory_used_mb": 30_000 + 250 * utilization + rng.normal(0, 300, minutes.size),
            "gpu_memory_total_mb": np.full(minutes.size, 81_559.0),
            "gpu_temperature_c": temperature,
            "gpu_power_w": 90 + 5.5 * utilization + rng.normal(0, 8, minutes.size),
            "gpu_sm_clock_mhz": clock,
        }
        for name, series in values.items():
            samples += [
                MetricSampleIn(
                    timestamp=float(t),
                    host=host,
                    resource="gpu0",
                    name=name,
                    value=round(float(v), 2),
                )
                for t, v in zip(minutes[::5], series[::5], strict=True)
            ]
    return samples


def _events(timeline: Timeline) -> list[EventIn]:
    at = timeline.at
    return [
        EventIn(
            timestamp=at(6) + dt.timedelta(hours=11),
            model="fraud-scorer",
            kind="config",
            model_version="v6",
            description="raised batch size 16 -> 32",
        ),
        EventIn(
            timestamp=at(2) + dt.timedelta(hours=14),
            model="fraud-scorer",
            kind="canary",
            model_version="v7",
            traffic_pct=10,
            description="canary v7 (new attention kernel)",
        ),
        EventIn(
            timestamp=at(1) + dt.timedelta(hours=9),
            model="fraud-scorer",
            kind="deploy",
            model_version="v7",
            traffic_pct=100,
            description="full rollout of v7",
        ),
        EventIn(
            timestamp=at(3) + dt.timedelta(hours=17, minutes=55),
            model="recsys-ranker",
            kind="other",
            description="marketing push notification to all users",
        ),
        EventIn(
            timestamp=at(2) + dt.timedelta(hours=10),
            model="churn-classifier",
            kind="incident",
            description="feature store timeouts",
        ),
    ]
