"""Analysis findings: what an analyzer run concluded about a model in a window.

A finding is identified by its `dedupe_key` (the analysis, the model, its scope and the incident
it describes): analysing the same window again updates the finding instead of adding another, and
an incident that lasts many hours stays one finding while its `status` goes from `open` to
`resolved`. Findings that record a check that found nothing wrong have status `ok`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

FindingStatus = Literal["open", "resolved", "ok"]
FINDING_STATUSES: tuple[FindingStatus, ...] = ("open", "resolved", "ok")

#: Analyses that write findings; the same key names the analysis in the API, CLI and UI.
FINDING_KINDS = (
    "drift",
    "skew",
    "latency_regression",
    "slo_breach",
    "diagnosis",
)


class FindingIn(BaseModel):
    """A finding as an analysis produces it."""

    kind: str = Field(max_length=32, description="the analysis, e.g. drift or latency_regression")
    model: str = Field(max_length=200)
    model_version: str | None = Field(default=None, max_length=200)
    window_start: dt.datetime
    window_end: dt.datetime
    status: FindingStatus
    severity: float | None = Field(default=None, ge=0, le=1, description="0 (minor) .. 1")
    summary: str = Field(description="one sentence a person reads first")
    details: dict[str, Any] | None = Field(default=None, description="the analysis's own result")
    dedupe_key: str = Field(max_length=128, description="same incident, same key")


class FindingOut(FindingIn):
    """A stored finding."""

    id: int
    created_at: dt.datetime
    updated_at: dt.datetime
