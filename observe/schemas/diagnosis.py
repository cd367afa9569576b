"""The diagnosis result (DESIGN 3.2), as the API and `observe diagnose --json` return it."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field


class Period(BaseModel):
    start: dt.datetime
    end: dt.datetime


class SymptomOut(BaseModel):
    metric: str = Field(description="p95_latency_ms, p99_latency_ms or error_rate")
    baseline: float | None
    current: float | None
    change: float | None = Field(description="relative: 0.5 is +50 %")
    is_regression: bool


class StepOut(BaseModel):
    step: Literal["isolate", "data", "infra", "model"]
    check: str
    status: Literal["pass", "fail", "inconclusive", "skipped"]
    summary: str
    evidence: dict[str, Any]


class CauseOut(BaseModel):
    kind: str = Field(
        description="deploy, traffic_surge, input_size, data_drift, dependency_latency, "
        "gpu_saturation, host_degradation, model_operator or error_spike"
    )
    score: float = Field(ge=0, le=1)
    scope: dict[str, str] = Field(examples=[{"model_version": "v7"}, {"host": "gpu-3"}])
    summary: str
    action: str
    evidence: dict[str, Any]


class DiagnosisOut(BaseModel):
    model: str
    window: Period
    baseline: Period
    symptom: SymptomOut
    steps: list[StepOut]
    causes: list[CauseOut] = Field(description="ranked; empty when nothing stands out")
