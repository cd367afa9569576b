"""Demo traces: the OpenTelemetry spans of one traced fraud-scorer request.

A request is a server span `POST /v1/score` with four children run one after another: the
feature-store lookup (a client span to a Redis-backed store), preprocess, the model's forward
pass and postprocess. Their durations add up to the record's latency.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from observe.schemas.records import InferenceRecordIn
from observe.schemas.spans import SpanIn

SERVICE = "fraud-scorer-api"
SpanKind = Literal["internal", "client"]


def request_spans(
    record: InferenceRecordIn, *, lookup_ms: float, rng: np.random.Generator
) -> list[SpanIn]:
    """The spans of a traced request (the record must carry its trace id)."""
    assert record.trace_id is not None
    start_ns = int(record.timestamp.timestamp() * 1e9)
    total_ns = int(record.latency_ms * 1e6)
    lookup_ns = int(lookup_ms * 1e6)
    pre_ns = int(rng.uniform(0.4, 1.2) * 1e6)
    post_ns = int(rng.uniform(0.2, 0.6) * 1e6)
    forward_ns = max(total_ns - lookup_ns - pre_ns - post_ns - 200_000, 100_000)
    root_id = rng.bytes(8).hex()
    resource = {"service.name": SERVICE, "deployment.environment": "prod"}
    trace_id = record.trace_id
    spans = [
        SpanIn(
            trace_id=trace_id,
            service_name=SERVICE,
            resource_attributes=resource,
            span_id=root_id,
            name="POST /v1/score",
            kind="server",
            start_time_unix_nano=start_ns,
            end_time_unix_nano=start_ns + total_ns,
            status_code="error" if record.status == "error" else "ok",
            attributes={
                "model.name": record.model,
                "model.version": record.model_version,
                "http.request.method": "POST",
                "http.route": "/v1/score",
            },
            model=record.model,
        )
    ]
    offset = start_ns + 100_000
    children: tuple[tuple[str, SpanKind, int, dict[str, Any] | None], ...] = (
        (
            "feature_store.lookup",
            "client",
            lookup_ns,
            {"db.system": "redis", "peer.service": "feature-store"},
        ),
        ("preprocess", "internal", pre_ns, None),
        ("model.forward", "internal", forward_ns, {"model.version": record.model_version}),
        ("postprocess", "internal", post_ns, None),
    )
    for name, kind, duration_ns, attributes in children:
        spans.append(
            SpanIn(
                trace_id=trace_id,
                service_name=SERVICE,
                resource_attributes=resource,
                span_id=rng.bytes(8).hex(),
                parent_span_id=root_id,
                name=name,
                kind=kind,
                start_time_unix_nano=offset,
                end_time_unix_nano=offset + duration_ns,
                attributes=attributes,
            )
        )
        offset += duration_ns
    return spans
