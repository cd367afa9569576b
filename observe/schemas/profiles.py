"""Profiler traces as the API, the CLI and the diagnosis read them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

OperatorSort = Literal["self_us", "total_us", "count", "name"]
OPERATOR_SORTS: tuple[OperatorSort, ...] = ("self_us", "total_us", "count", "name")


class ProfileMeta(BaseModel):
    """What the uploader says about a trace."""

    model: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    model_version: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    host: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    captured_at: dt.datetime | None = Field(
        default=None, description="when the trace was recorded; default from the trace itself"
    )
    file_name: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


class ProfileOut(BaseModel):
    """A stored profiler trace."""

    id: int
    model: str
    model_version: str
    host: str
    captured_at: dt.datetime
    received_at: dt.datetime
    file_name: str | None
    sha256: str = Field(description="SHA-256 of the decompressed trace: its identity")
    num_bytes: int = Field(description="size of the decompressed trace")
    num_events: int
    num_complete_events: int
    num_operators: int
    num_steps: int
    duration_us: float = Field(description="first event start to last event end")
    metadata: dict[str, Any] = Field(description="top-level entries of the trace (Kineto's)")


class ProfileUploadOut(BaseModel):
    """The answer to an upload: the stored trace, and whether it was stored before."""

    duplicate: bool = Field(description="the same file (by SHA-256) was stored already")
    profile: ProfileOut


class InputShapes(BaseModel):
    shapes: list[Any]
    count: int


class OperatorOut(BaseModel):
    """One operator of a trace: a (name, category) pair and its aggregate."""

    name: str
    category: str = Field(description="as Kineto writes it: cpu_op, kernel, gpu_memcpy, ...")
    count: int
    total_us: float
    self_us: float = Field(description="total minus directly nested events on the same thread")
    mean_us: float
    input_shapes: list[InputShapes] = Field(description="most frequent input shapes first")


class StepOut(BaseModel):
    """One profiler step; times relative to the trace's first event."""

    step: int
    start_us: float
    duration_us: float
    num_events: int
    self_us_by_category: dict[str, float]


class ThreadOut(BaseModel):
    index: int
    pid: str
    tid: str
    name: str | None


class TimelineEvent(BaseModel):
    thread: int = Field(description="index into `threads`")
    name: str
    category: str
    start_us: float = Field(description="relative to the trace's first event")
    duration_us: float
    depth: int = Field(description="nesting level on its thread, 0 at the top")


class TimelineOut(BaseModel):
    """Complete events overlapping [start_us, end_us), at most `limit` of them (the longest
    when there are more), in start order."""

    profile_id: int
    start_us: float
    end_us: float
    step: int | None
    num_events_in_range: int
    truncated: bool
    threads: list[ThreadOut]
    events: list[TimelineEvent]


class DiffSide(BaseModel):
    id: int
    model: str
    model_version: str
    host: str
    captured_at: dt.datetime
    num_steps: int


class OperatorDelta(BaseModel):
    """One operator in base and target; times per step when the diff is normalised."""

    name: str
    category: str
    status: Literal["new", "vanished", "changed", "unchanged"]
    base_count: float
    target_count: float
    base_total_us: float
    target_total_us: float
    base_self_us: float
    target_self_us: float
    delta_self_us: float
    delta_total_us: float
    delta_self_pct: float | None = Field(description="null for new operators")


class ProfileDiffOut(BaseModel):
    """Operators ranked by added self time, target minus base."""

    base: DiffSide
    target: DiffSide
    per_step: bool = Field(
        description="times and counts are per profiler step, because the two traces have "
        "different step counts"
    )
    note: str
    base_self_us: float
    target_self_us: float
    delta_self_us: float
    new_operators: list[str]
    vanished_operators: list[str]
    operators: list[OperatorDelta]
