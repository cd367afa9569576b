"""Demo traffic: records, labels, metrics and events of three models over a week.

- fraud-scorer (GPU): v6 all week; v7 goes canary at 10 % two days before the end and rolls out
  fully the next morning. v7 is about 45 % slower at p95. Late fraud labels for 60 % of requests.
  Every request looks its features up in the feature store (a few ms); five days before the end
  the store slows to ~40 ms for 90 minutes. One request in twenty is traced (OpenTelemetry
  spans: the feature-store lookup, preprocess, forward, postprocess).
- recsys-ranker (GPU): latency grows with the number of candidates (input_size); a traffic
  surge three days before the end saturates the GPUs; host gpu-3 runs hot and throttles for
  three hours on the last day, slowing every request it serves.
- churn-classifier (CPU): four days before the end a promotion brings in a new kind of
  customer: higher monthly charges, shorter tenure, more month-to-month contracts (drift in
  three of five features, against training too); a 30-minute error spike (a failing upstream)
  two days before the end, with an incident event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from observe.demo.traces import request_spans
from observe.pipeline.writer import BatchKind
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn, MetricSampleIn

DEMO_MODELS = ("fraud-scorer", "recsys-ranker", "churn-classifier")
GPU_HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
CPU_HOSTS = ("cpu-1", "cpu-2")
REGIONS = ("eu-west", "us-east")
BATCH = 5_000
MINUTE = 60
#: Share of fraud-scorer requests traced with OpenTelemetry spans.
TRACED_SHARE = 0.05


SLOS = {
    "fraud-scorer": (95.0, 60.0, 0.5),
    "recsys-ranker": (99.0, 250.0, 1.0),
    "churn-classifier": (95.0, 40.0, 1.0),
}


@dataclass(frozen=True)
class Timeline:
    """The demo's week. Incidents are placed at hours of calendar days (`at(2) + 14 h` is
    14:00 UTC the day before yesterday), so they fall in the same busy hours whenever the demo
    is built, and always before its end."""

    start: dt.datetime
    end: dt.datetime

    def at(self, days_before_end: int) -> dt.datetime:
        """Midnight UTC `days_before_end` days before the end's day."""
        midnight = self.end.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - dt.timedelta(days=days_before_end)

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds()) // MINUTE

    def epoch(self, moment: dt.datetime) -> float:
        return moment.timestamp()


def all_items(
    timeline: Timeline, rng: np.random.Generator
) -> Iterator[tuple[BatchKind, list[Any]]]:
    """Every batch of the demo's traffic, in the order it is stored."""
    yield BatchKind.EVENTS, _events(timeline)
    for generator in (_fraud_scorer, _recsys_ranker, _churn_classifier):
        records, spans = generator(timeline, rng)
        for offset in range(0, len(records), BATCH):
            yield BatchKind.RECORDS, records[offset : offset + BATCH]
        for offset in range(0, len(spans), BATCH):
            yield BatchKind.SPANS, spans[offset : offset + BATCH]
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
    features: Mapping[str, Sequence[Any]],
    predictions: Sequence[Any],
    tags: Sequence[dict[str, str]],
    *,
    errors: npt.NDArray[np.bool_] | None = None,
    input_size: npt.NDArray[np.float64] | None = None,
    trace_ids: Sequence[str | None] | None = None,
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
                timestamp=dt.datetime.fromtimestamp(float(moment), dt.UTC),
                request_id=f"{model}-{int(moment * 1000)}-{i}",
                latency_ms=float(round(latency_ms[i], 3)),
                status="error" if is_error else "ok",
                error="upstream feature store timed out" if is_error else None,
                features={name: column[i] for name, column in zip(names, columns, strict=True)},
                prediction=None if is_error else predictions[i],
                tags=tags[i],
                input_size=None if input_size is None else float(input_size[i]),
                trace_id=None if trace_ids is None else trace_ids[i],
            )
        )
    return records


def _fraud_scorer(timeline: Timeline, rng: np.random.Generator) -> tuple[list[Any], list[Any]]:
    times = _arrivals(timeline, rng, per_minute=14)
    n = times.size
    store_slow_at = timeline.epoch(timeline.at(5)) + 10 * 3600
    store_slow = (times >= store_slow_at) & (times < store_slow_at + 90 * 60)
    lookup_ms = rng.gamma(8.0, 0.5, n) * np.where(store_slow, 10.0, 1.0)
    canary_at, rollout_at = (
        timeline.epoch(timeline.at(2)) + 14 * 3600,
        timeline.epoch(timeline.at(1)) + 9 * 3600,
    )
    canary_share = np.where(times >= rollout_at, 1.0, np.where(times >= canary_at, 0.10, 0.0))
    is_v7 = rng.uniform(size=n) < canary_share
    versions = np.where(is_v7, "v7", "v6")
    hosts = rng.choice(GPU_HOSTS, size=n)
    features = fraud_features(rng, n)
    amount = np.asarray(features["amount"])
    model_ms = rng.gamma(6.0, 4.5, n) * np.where(is_v7, 1.45, 1.0) + 3.0
    latency = model_ms + lookup_ms
    traced = rng.uniform(size=n) < TRACED_SHARE
    trace_ids = [rng.bytes(16).hex() if t else None for t in traced]
    score = 1 / (1 + np.exp(-(np.log(amount) - 5.5 + rng.normal(0, 1, n))))
    tags = [
        {"host": str(h), "region": REGIONS[i % 2], "canary": "true" if v else "false"}
        for i, (h, v) in enumerate(zip(hosts, is_v7, strict=True))
    ]
    records = _records(
        "fraud-scorer",
        times,
        versions.tolist(),
        latency,
        features,
        np.round(score, 4).tolist(),
        tags,
        trace_ids=trace_ids,
    )
    spans = [
        span
        for i in np.flatnonzero(traced)
        for span in request_spans(records[i], lookup_ms=float(lookup_ms[i]), rng=rng)
    ]
    return records, spans


def fraud_features(rng: np.random.Generator, n: int) -> dict[str, list[Any]]:
    """fraud-scorer's inputs, as in training (serving does not drift)."""
    return {
        "amount": np.round(rng.lognormal(3.6, 1.1, n), 2).tolist(),
        "merchant_category": rng.choice(
            ["grocery", "travel", "electronics", "fuel", "online"], n, p=[0.35, 0.1, 0.15, 0.2, 0.2]
        ).tolist(),
        "country": rng.choice(["DE", "FR", "US", "GB", "NL"], n).tolist(),
        "card_present": (rng.uniform(size=n) < 0.6).tolist(),
        "account_age_days": rng.integers(1, 4000, n).tolist(),
        "num_tx_24h": rng.poisson(3, n).tolist(),
    }


def recsys_features(rng: np.random.Generator, n: int) -> dict[str, list[Any]]:
    """recsys-ranker's inputs; `num_candidates` is also each request's input size."""
    return {
        "user_tenure_days": rng.integers(0, 3000, n).tolist(),
        "num_candidates": rng.integers(20, 400, n).tolist(),
        "device": rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2]).tolist(),
        "session_length_s": np.round(rng.exponential(300, n), 1).tolist(),
    }


def churn_features(
    rng: np.random.Generator, n: int, *, drifted: npt.NDArray[np.bool_] | None = None
) -> dict[str, list[Any]]:
    """churn-classifier's inputs; rows marked `drifted` come from the promotion's customers
    (higher charges, shorter tenure, mostly month-to-month)."""
    new = np.zeros(n, bool) if drifted is None else drifted
    charges = rng.normal(65, 18, n) + np.where(new, 22.0, 0.0)
    tenure = np.where(new, rng.integers(0, 12, n), rng.integers(0, 72, n))
    contract = np.where(
        new,
        rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.9, 0.07, 0.03]),
        rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.55, 0.25, 0.2]),
    )
    return {
        "tenure_months": tenure.tolist(),
        "monthly_charges": np.round(charges, 2).tolist(),
        "contract": contract.tolist(),
        "support_calls": rng.poisson(1.2, n).tolist(),
        "paperless_billing": (rng.uniform(size=n) < 0.6).tolist(),
    }


def _recsys_ranker(timeline: Timeline, rng: np.random.Generator) -> tuple[list[Any], list[Any]]:
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
    features = recsys_features(rng, n)
    candidates = np.asarray(features["num_candidates"])
    latency = 25 + 0.35 * candidates + rng.gamma(3.0, 6.0, n)
    latency *= np.where(in_surge, 2.2, 1.0) * np.where(throttled, 1.8, 1.0)
    tags = [{"host": str(h), "region": REGIONS[i % 2]} for i, h in enumerate(hosts)]
    predictions = [
        {"top_item": int(c % 997), "score": round(float(s), 4)}
        for c, s in zip(candidates, rng.uniform(size=n), strict=True)
    ]
    records = _records(
        "recsys-ranker",
        times,
        ["v3"] * n,
        latency,
        features,
        predictions,
        tags,
        input_size=candidates.astype(float),
    )
    return records, []


def _churn_classifier(timeline: Timeline, rng: np.random.Generator) -> tuple[list[Any], list[Any]]:
    times = _arrivals(timeline, rng, per_minute=6)
    n = times.size
    drifted = times >= timeline.epoch(timeline.at(4))
    features = churn_features(rng, n, drifted=drifted)
    spike_start = timeline.epoch(timeline.at(2)) + 10 * 3600
    errors = (times >= spike_start) & (times < spike_start + 1800) & (rng.uniform(size=n) < 0.3)
    latency = rng.gamma(4.0, 4.0, n) + 2.0
    latency = np.where(errors, rng.uniform(900, 1200, n), latency)
    predictions = np.round(rng.beta(2, 5, n), 4).tolist()
    tags = [{"host": CPU_HOSTS[i % 2], "region": REGIONS[i % 2]} for i in range(n)]
    records = _records(
        "churn-classifier",
        times,
        ["2024.11"] * n,
        latency,
        features,
        predictions,
        tags,
        errors=errors,
    )
    return records, []


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
                    timestamp=dt.datetime.fromtimestamp(float(t), dt.UTC),
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
            timestamp=at(5) + dt.timedelta(hours=9, minutes=50),
            model="fraud-scorer",
            kind="other",
            description="feature store cluster maintenance (one replica of three)",
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
