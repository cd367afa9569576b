"""Weekly reports and alerts: the report's JSON (what the HTML shows, number for number) and the
API's list items.

A model report covers one model for one ISO week (Monday 00:00 UTC to the next Monday) and
compares it with the week before; the summary covers every model. Rates are fractions
(0.0123 is 1.23 %), latencies milliseconds, changes relative (0.25 is +25 %). Time series are
tables (`columns`, `rows`) so that a week of hourly points stays small.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from observe.schemas.diagnosis import Period
from observe.schemas.reads import ModelOut

#: Bumped when a field changes meaning or goes away; new fields keep it.
REPORT_SCHEMA_VERSION = 1

Severity = Literal["critical", "warning"]
DeliveryStatus = Literal["pending", "sent", "failed"]
AlertState = Literal["opened", "resolved"]


class Change(BaseModel):
    """A number this week and the week before."""

    current: float | None
    previous: float | None
    change: float | None = Field(description="relative: 0.25 is +25 %; None without a base")


class AttentionItem(BaseModel):
    """Something a reader should look at, most severe first."""

    severity: Severity
    kind: str = Field(
        description="slo_breach, latency_regression, error_rate, latency_change, traffic_drop, "
        "drift, skew, gpu_memory, gpu_saturation or rollback"
    )
    model: str | None
    summary: str
    link: str | None = None


class Traffic(BaseModel):
    """The week against the week before, every version together (as GET /api/v1/models
    reports each window)."""

    num_requests: Change
    num_errors: Change
    error_rate: Change
    mean_ms: Change
    p50: Change
    p95: Change
    p99: Change


class SloReport(BaseModel):
    """The objectives, whether the week as a whole met them, and in how many of its hours."""

    latency_percentile: float | None
    latency_ms: float | None
    error_rate_pct: float | None
    observed_latency_ms: float | None = Field(description="the week's latency at the percentile")
    latency_ok: bool | None
    observed_error_rate_pct: float | None
    error_rate_ok: bool | None
    hours_with_traffic: int
    hours_latency_breached: int | None
    hours_error_rate_breached: int | None


class VersionWeek(BaseModel):
    model_version: str
    num_requests: int
    share_of_requests: float | None
    error_rate: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class CauseBrief(BaseModel):
    kind: str
    score: float
    scope: dict[str, str]
    summary: str
    action: str


class DiagnosisBrief(BaseModel):
    """A diagnosis of the regression's first hour against the hour before its onset."""

    window: Period
    baseline: Period
    metric: str
    baseline_value: float | None
    current_value: float | None
    causes: list[CauseBrief] = Field(description="ranked, at most 3; empty: nothing stands out")


class RegressionReport(BaseModel):
    finding_id: int
    status: str = Field(description="open or resolved (at the time the report was written)")
    model_version: str | None
    onset_at: dt.datetime
    cleared_at: dt.datetime | None
    percentile: float | None
    before_ms: float | None
    after_ms: float | None
    ratio: float | None
    summary: str
    event: dict[str, Any] | None = Field(description="the change event before the onset")
    diagnosis: DiagnosisBrief | None
    triage_url: str


class SloBreachReport(BaseModel):
    finding_id: int
    objective: str = Field(description="latency or error_rate")
    status: str
    since: dt.datetime
    until: dt.datetime
    bound: float | None
    observed: float | None
    summary: str


class DriftFeatureReport(BaseModel):
    feature: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    strength: float | None = Field(
        description="how far past its threshold: distance / threshold, or threshold / p-value; "
        "1 or more is drift"
    )


class DriftWeek(BaseModel):
    """One version's serving data of the week against its reference (or the week before)."""

    model_version: str | None
    baseline: str = Field(description="what the week was compared with")
    num_rows_current: int
    num_rows_baseline: int
    dataset_drifted: bool | None
    num_features: int
    num_drifted: int
    share_drifted: float | None
    top_features: list[DriftFeatureReport]
    days_drifted: int = Field(description="days of the week the hourly analysis saw drift")
    error: str | None = Field(default=None, description="why it could not be computed")


class SkewWeek(BaseModel):
    """One version's serving data of the week against its training reference."""

    model_version: str | None
    reference: str | None
    num_rows_serving: int
    missing_features: list[str]
    extra_features: list[str]
    retyped_features: list[str]
    num_features: int
    num_drifted: int
    dataset_drifted: bool | None
    top_features: list[DriftFeatureReport]
    error: str | None = None


class GpuDevice(BaseModel):
    host: str
    resource: str
    mean_utilization_pct: float | None
    max_utilization_pct: float | None
    max_memory_used_mb: float | None
    memory_total_mb: float | None
    memory_headroom_pct: float | None = Field(
        description="share of the device's memory still free at the week's peak"
    )
    max_temperature_c: float | None


class GpuWeek(BaseModel):
    hosts: str = Field(description="model: the hosts serving the model; all: every host")
    devices: list[GpuDevice]


class EventReport(BaseModel):
    timestamp: dt.datetime
    kind: str
    model_version: str | None
    traffic_pct: float | None
    description: str | None


class SeriesTable(BaseModel):
    columns: list[str]
    rows: list[list[Any]]


class ModelSeries(BaseModel):
    """Hourly series for the charts. `hourly`: per version (series, bucket_start,
    num_requests, num_errors, error_rate, mean_ms and a column per percentile, such as p95);
    `hourly_all` and `previous_hourly_all`: every version together, this week and the week
    before; `gpu_hourly`: per device (bucket_start, host, resource, name, mean, max, min,
    num_samples) for GPU utilization and memory."""

    percentile_columns: list[str]
    hourly: SeriesTable
    hourly_all: SeriesTable
    previous_hourly_all: SeriesTable
    gpu_hourly: SeriesTable


class ModelReport(BaseModel):
    """One model's week."""

    schema_version: int = REPORT_SCHEMA_VERSION
    kind: Literal["model"] = "model"
    model: str
    week: str
    window: Period
    previous_window: Period
    generated_at: dt.datetime
    links: dict[str, str]
    needs_attention: list[AttentionItem]
    overview: ModelOut = Field(description="the week as GET /api/v1/models reports it")
    slo: SloReport
    traffic: Traffic
    versions: list[VersionWeek]
    regressions: list[RegressionReport]
    slo_breaches: list[SloBreachReport]
    drift: list[DriftWeek]
    skew: list[SkewWeek]
    gpu: GpuWeek
    events: list[EventReport]
    event_counts: dict[str, int]
    series: ModelSeries


class SummaryModel(BaseModel):
    """A model's line in the summary: the week as GET /api/v1/models reports it, and the
    week-over-week change."""

    overview: ModelOut
    traffic: Traffic
    num_needs_attention: int
    num_regressions: int
    num_slo_breaches: int
    num_drifted_versions: int
    num_deploys: int
    num_rollbacks: int


class SummaryReport(BaseModel):
    """Every model's week."""

    schema_version: int = REPORT_SCHEMA_VERSION
    kind: Literal["summary"] = "summary"
    week: str
    window: Period
    previous_window: Period
    generated_at: dt.datetime
    links: dict[str, str]
    needs_attention: list[AttentionItem]
    num_requests: Change
    num_errors: Change
    models: list[SummaryModel]
    gpu: GpuWeek
    event_counts: dict[str, int]


# --- API -------------------------------------------------------------------------------------


class DeliveryOut(BaseModel):
    channel: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None
    updated_at: dt.datetime


class ReportOut(BaseModel):
    """A stored report, without its content."""

    id: int
    week: str
    kind: Literal["model", "summary"]
    model: str | None
    window: Period
    created_at: dt.datetime
    created_by: str
    num_needs_attention: int
    deliveries: list[DeliveryOut] = Field(description="of the week's reports, per channel")


class AlertOut(BaseModel):
    id: int
    incident_key: str
    state: AlertState
    kind: str
    model: str
    model_version: str | None
    finding_id: int | None
    summary: str
    details: dict[str, Any]
    created_at: dt.datetime
    deliveries: list[DeliveryOut]
