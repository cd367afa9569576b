"""Test data: plain functions with keyword overrides and a seed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from observe.db.engine import Database
from observe.pipeline.references import ReferenceSummary, store_reference
from observe.schemas.records import EventIn, InferenceRecordIn, LabelIn, MetricSampleIn
from observe.schemas.spans import SpanIn

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def record(**overrides: Any) -> dict[str, Any]:
    """One inference record as a client sends it (JSON-ready)."""
    base: dict[str, Any] = {
        "model": "fraud-scorer",
        "model_version": "v1",
        "timestamp": T0.isoformat(),
        "request_id": "req-0",
        "latency_ms": 12.5,
        "features": {"amount": 12.5, "country": "DE", "card_present": True, "num_tx": 3},
        "prediction": 0.12,
        "tags": {"host": "gpu-1", "region": "eu-west"},
    }
    base.update(overrides)
    return base


def records(
    count: int,
    *,
    seed: int = 0,
    start: dt.datetime = T0,
    spacing_seconds: float = 1.0,
    prefix: str = "req",
    **overrides: Any,
) -> list[dict[str, Any]]:
    """`count` records one `spacing_seconds` apart with random latencies and features."""
    rng = np.random.default_rng(seed)
    latency = rng.gamma(4.0, 5.0, count) + 1.0
    hosts = rng.choice(["gpu-1", "gpu-2", "gpu-3"], count)
    return [
        record(
            request_id=f"{prefix}-{i}",
            timestamp=(start + dt.timedelta(seconds=i * spacing_seconds)).isoformat(),
            latency_ms=round(float(latency[i]), 3),
            features={"amount": round(float(rng.lognormal(3, 1)), 2), "country": "DE"},
            tags={"host": str(hosts[i]), "region": "eu-west"},
            **overrides,
        )
        for i in range(count)
    ]


def record_in(**overrides: Any) -> InferenceRecordIn:
    return InferenceRecordIn.model_validate(record(**overrides))


def records_in(count: int, **kwargs: Any) -> list[InferenceRecordIn]:
    return [InferenceRecordIn.model_validate(item) for item in records(count, **kwargs)]


def label(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"model": "fraud-scorer", "request_id": "req-0", "label": 1}
    base.update(overrides)
    return base


def label_in(**overrides: Any) -> LabelIn:
    return LabelIn.model_validate(label(**overrides))


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "timestamp": T0.isoformat(),
        "model": "fraud-scorer",
        "kind": "deploy",
        "model_version": "v2",
        "traffic_pct": 100,
        "description": "roll out v2",
    }
    base.update(overrides)
    return base


def event_in(**overrides: Any) -> EventIn:
    return EventIn.model_validate(event(**overrides))


def metric(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "timestamp": T0.isoformat(),
        "host": "gpu-1",
        "resource": "gpu0",
        "name": "gpu_utilization_pct",
        "value": 87.0,
    }
    base.update(overrides)
    return base


def metric_in(**overrides: Any) -> MetricSampleIn:
    return MetricSampleIn.model_validate(metric(**overrides))


def finding_in(**overrides: Any) -> Any:
    """One analysis finding (a latency regression of fraud-scorer v2 by default)."""
    from observe.schemas.findings import FindingIn

    base: dict[str, Any] = {
        "kind": "latency_regression",
        "model": "fraud-scorer",
        "model_version": "v2",
        "window_start": T0,
        "window_end": T0 + dt.timedelta(hours=1),
        "status": "open",
        "severity": 0.7,
        "summary": "p95 of fraud-scorer v2 rose from 40 ms to 90 ms at 12:05",
        "details": {"before_ms": 40.0, "after_ms": 90.0},
        "dedupe_key": "latency_regression:fraud-scorer:v2:2026-11-16T12:05",
    }
    base.update(overrides)
    return FindingIn(**base)


def unix_nano(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def span(
    *,
    start: dt.datetime = T0,
    duration_ms: float = 5.0,
    **overrides: Any,
) -> dict[str, Any]:
    """One span as collectors.otlp decodes it (a root span of fraud-scorer by default)."""
    start_nano = unix_nano(start)
    base: dict[str, Any] = {
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174",
        "parent_span_id": None,
        "name": "predict",
        "service_name": "fraud-scorer",
        "kind": "server",
        "start_time_unix_nano": start_nano,
        "end_time_unix_nano": start_nano + round(duration_ms * 1e6),
        "status_code": "unset",
        "status_message": None,
        "attributes": None,
        "resource_attributes": {"service.name": "fraud-scorer"},
    }
    base.update(overrides)
    return base


def span_in(*, model: str | None = None, **overrides: Any) -> SpanIn:
    """A validated span; `model` is the model it names itself."""
    return SpanIn.model_validate({**span(**overrides), "model": model})


def trace_spans(
    trace_number: int,
    *,
    start: dt.datetime = T0,
    model: str | None = "fraud-scorer",
    child_ms: tuple[tuple[str, float], ...] = (("feature_store.lookup", 4.0), ("forward", 9.0)),
    service_name: str = "fraud-scorer",
    error: bool = False,
) -> list[SpanIn]:
    """One trace: a root `predict` span naming `model` whose children run one after another."""
    trace_id = f"{trace_number + 1:032x}"
    root_id = f"{trace_number + 1:08x}00000000"
    total_ms = sum(ms for _, ms in child_ms) + 1.0
    spans = [
        span_in(
            model=model,
            trace_id=trace_id,
            span_id=root_id,
            start=start,
            duration_ms=total_ms,
            service_name=service_name,
            status_code="error" if error else "ok",
            attributes={"model.name": model} if model else None,
        )
    ]
    offset_ms = 0.5
    for number, (name, ms) in enumerate(child_ms, start=1):
        spans.append(
            span_in(
                trace_id=trace_id,
                span_id=f"{trace_number + 1:08x}{number:08x}",
                parent_span_id=root_id,
                name=name,
                kind="client" if name.startswith("feature_store") else "internal",
                start=start + dt.timedelta(milliseconds=offset_ms),
                duration_ms=ms,
                service_name=service_name,
            )
        )
        offset_ms += ms
    return spans


def record_file_table(count: int, *, seed: int = 0, nested: bool = True) -> pa.Table:
    """An Arrow table of `count` records as a CSV or Parquet file holds them, with the awkward
    values files carry: NaN, infinities and nulls, integers and booleans, strings that need
    escaping (JSON and COPY), digits in text fields, nanosecond timestamps, repeated request ids
    and rows the contract refuses. `nested` adds struct and list columns (Parquet only)."""
    rng = np.random.default_rng(seed)
    t0_ns = int(T0.timestamp()) * 10**9
    texts = ["DE", 'quo"te', "back\\slash", "new\nline", "tab\tx", "ünï 🚀", "", "ctl\x01", "x"]
    latency = rng.gamma(3.0, 5.0, count)
    latency[rng.random(count) < 0.03] = -1.0
    features = rng.normal(0, 1, (count, 3)) * 10.0 ** rng.integers(-8, 22, (count, 3))
    features[rng.random((count, 3)) < 0.05] = np.nan
    features[rng.random((count, 3)) < 0.01] = np.inf
    columns: dict[str, Any] = {
        "model": pa.array(
            ["fraud\tscorer" if i % 7 == 0 else "fraud-scorer" for i in range(count)]
        ),
        "model_version": pa.array([["v1", "v2", "v\\3"][i % 3] for i in range(count)]),
        "timestamp": pa.array(
            t0_ns + rng.integers(0, 3 * 3600 * 10**9, count), pa.timestamp("ns", tz="UTC")
        ),
        "request_id": pa.array([f"req-{i % (count - 3)}" for i in range(count)]),
        "latency_ms": pa.array(latency),
        "status": pa.array(rng.choice(["ok", "error", "ok", None], count).tolist()),
        "error": pa.array(
            [None if i % 9 else "boom\twith\\ tabs\nand lines" for i in range(count)]
        ),
        "input_size": pa.array(
            rng.integers(0, 1000, count).astype(float), mask=rng.random(count) < 0.3
        ),
        "prediction": pa.array(rng.random(count)),
        "label": pa.array(rng.integers(0, 2, count), mask=rng.random(count) < 0.5),
        "trace_id": pa.array(
            [None if i % 5 else f"{i:032X}" if i else "0" * 32 for i in range(count)]
        ),
        "features.amount": pa.array(features[:, 0]),
        "features.score": pa.array(features[:, 1].astype(np.float32)),
        "features.ratio": pa.array(features[:, 2]),
        "features.count": pa.array(rng.integers(-5, 5, count), mask=rng.random(count) < 0.1),
        "features.flag": pa.array((rng.random(count) < 0.5).tolist()),
        "features.country": pa.array(rng.choice(texts, count).tolist()),
        "tags.host": pa.array([None if i % 11 == 0 else f"gpu-{i % 4}" for i in range(count)]),
        "tags.zone": pa.array(rng.integers(1, 3, count)),
        "tags.canary": pa.array([i % 2 == 0 for i in range(count)]),
    }
    if nested:
        columns["features"] = pa.array(
            [
                None if i % 6 == 0 else {"depth": float(i), "kind": texts[i % len(texts)]}
                for i in range(count)
            ]
        )
        columns["prediction"] = pa.array(
            [{"score": float(p), "classes": ["a", "b"]} for p in rng.random(count)]
        )
    return pa.table(columns)


def stored_reference(db: Database, frame: pd.DataFrame, **overrides: Any) -> ReferenceSummary:
    """`frame` stored as a reference data set: "train" of fraud-scorer v1, up to 1,000 rows
    kept, stored at T0, unless overridden (keywords of `store_reference`)."""
    options: dict[str, Any] = {
        "model": "fraud-scorer",
        "model_version": "v1",
        "name": "train",
        "source": None,
        "max_rows": 1_000,
        "now": T0,
    }
    return store_reference(db, frame, **{**options, **overrides})
