"""The ingested types of DESIGN 3.1: inference records, labels, events and metric samples."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from observe.db.models import EVENT_KINDS
from observe.schemas.common import Features, JsonValue, Name, Tags, Text, Timestamp

MAX_LATENCY_MS = 1e12


def _normalise_trace_id(value: str) -> str:
    value = value.lower()
    if value == "0" * 32:
        raise ValueError("trace_id of all zeros is not a valid trace id")
    return value


TraceId = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$"), AfterValidator(_normalise_trace_id)]
# Strict: lax mode would read JSON true as 1.0 and "12" as 12.0; integers still count as numbers.
Number = Annotated[float, Field(strict=True)]


class _Ingested(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class InferenceRecordIn(_Ingested):
    """One prediction. `request_id` is the idempotency key within a model."""

    model: Name
    model_version: Name
    timestamp: Timestamp
    request_id: Name
    latency_ms: Number = Field(ge=0, le=MAX_LATENCY_MS)
    status: Literal["ok", "error"] = "ok"
    error: Text | None = None
    features: Features | None = None
    prediction: JsonValue = None
    label: JsonValue = None
    tags: Tags | None = None
    input_size: Number | None = Field(default=None, ge=0)
    trace_id: TraceId | None = None


class LabelIn(_Ingested):
    """Ground truth for a prediction, matched by model and request_id; a newer label replaces
    an older one."""

    model: Name
    request_id: Name
    label: JsonValue = Field(description="the ground truth; null is not a label")
    timestamp: Timestamp | None = Field(
        default=None, description="when the label became known; default: when it arrived"
    )

    @field_validator("label")
    @classmethod
    def _require_label(cls, value: object) -> object:
        if value is None:
            raise ValueError("label must not be null")
        return value


class EventIn(_Ingested):
    """A deploy, rollback, canary, config change, scale-out, incident or other change."""

    timestamp: Timestamp
    model: Name
    kind: Literal[EVENT_KINDS]  # type: ignore[valid-type]
    model_version: Name | None = None
    traffic_pct: Number | None = Field(default=None, ge=0, le=100)
    description: Text | None = None
    tags: Tags | None = None

    def dedupe_key(self) -> str:
        """Identical events (a retried request) share this key and are stored once."""
        return hashlib.sha256(
            orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()


class MetricSampleIn(_Ingested):
    """One measurement of a host or device; (host, resource, name, timestamp) identifies it."""

    timestamp: Timestamp
    host: Name
    resource: Name
    name: Name
    value: Number
    tags: Tags | None = None


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
