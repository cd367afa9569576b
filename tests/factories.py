"""Test data: plain functions with keyword overrides and a seed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

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
