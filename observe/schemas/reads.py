"""Read-side types shared by the API and the CLI's --json output."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field, model_validator


class Slo(BaseModel):
    """Service-level objectives: `latency_percentile` of latency under `latency_ms`, and the
    error rate under `error_rate_pct`. Either part may be left out (null)."""

    latency_percentile: float | None = Field(
        default=None, gt=0, lt=100, allow_inf_nan=False, examples=[95]
    )
    latency_ms: float | None = Field(default=None, gt=0, allow_inf_nan=False, examples=[250])
    error_rate_pct: float | None = Field(
        default=None, ge=0, le=100, allow_inf_nan=False, examples=[1.0]
    )

    @model_validator(mode="after")
    def _latency_parts_together(self) -> Slo:
        if (self.latency_percentile is None) != (self.latency_ms is None):
            raise ValueError("latency_percentile and latency_ms are set together")
        return self


class SloOut(Slo):
    updated_at: dt.datetime | None = None


class SloStatus(BaseModel):
    """The window measured against the SLO; `*_ok` is null where no objective or no traffic."""

    latency_ms: float | None
    latency_ok: bool | None
    error_rate_pct: float | None
    error_rate_ok: bool | None


class VersionStats(BaseModel):
    model_version: str
    first_seen_at: dt.datetime | None = None
    last_seen_at: dt.datetime | None = None
    num_requests: int
    num_errors: int
    error_rate: float | None
    mean_ms: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class ModelOut(BaseModel):
    name: str
    created_at: dt.datetime
    start: dt.datetime
    end: dt.datetime
    num_requests: int
    num_errors: int
    error_rate: float | None
    mean_ms: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    slo: SloOut
    slo_status: SloStatus
    versions: list[VersionStats]


class ModelList(BaseModel):
    start: dt.datetime
    end: dt.datetime
    models: list[ModelOut]
