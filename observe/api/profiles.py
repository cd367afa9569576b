"""/api/v1/profiles: upload PyTorch profiler traces; read their operators, steps, timeline,
raw file, and the operator diff of two traces.

An upload streams to a temporary file (the size limit counted after decompression), is
summarized off the event loop, and is stored in one transaction: a 201 means it is committed,
a 200 that the same file (by SHA-256) was stored already, and any 4xx that nothing was stored.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from observe.api.bodies import _Inflater
from observe.api.deps import get_session, get_settings, get_write_sessions
from observe.api.errors import ApiError, documented
from observe.api.params import parse_open_window, parse_time
from observe.api.security import requires
from observe.auth import Scope
from observe.config import Settings
from observe.pipeline import profiles as profile_pipeline
from observe.pipeline.profiles import StoredProfile, TraceFormatError, TraceTooLarge
from observe.pipeline.writer import utc_now
from observe.schemas.common import describe_error
from observe.schemas.profiles import (
    OperatorOut,
    OperatorSort,
    ProfileDiffOut,
    ProfileMeta,
    ProfileOut,
    ProfileUploadOut,
    StepOut,
    TimelineOut,
)
from observe.storage import profiles as profile_store

router = APIRouter(prefix="/api/v1", tags=["profiles"])

#: Uploads summarized at once per server process; more get 429 (each may hold a large trace).
MAX_CONCURRENT_UPLOADS = 2
GZIP_MAGIC = b"\x1f\x8b"
TRACE_TYPES = {
    "",
    "application/json",
    "application/gzip",
    "application/x-gzip",
    "application/octet-stream",
}
_ENCODING_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 47}


class ProfileList(BaseModel):
    items: list[ProfileOut]


class OperatorList(BaseModel):
    profile_id: int
    items: list[OperatorOut]


class StepList(BaseModel):
    profile_id: int
    items: list[StepOut]


# --- upload ----------------------------------------------------------------------------------


@dataclass
class _Upload:
    file: IO[bytes]
    sha256: str
    num_bytes: int


class _TraceSink:
    """Decodes Content-Encoding, then a gzipped file, into a temporary file of plain JSON,
    hashing it and refusing more than `max_bytes` of it."""

    def __init__(self, encoding: str, max_bytes: int) -> None:
        wbits = _ENCODING_WBITS.get(encoding)
        self._transport = _Inflater(wbits, max_bytes) if wbits else None
        self._max_bytes = max_bytes
        self._file_inflater: _Inflater | None = None
        self._sniffed = b""
        self._decided = False
        # Closed by the route once stored (or by _receive_trace on failure).
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="observe-upload-")  # noqa: SIM115
        self.hash = hashlib.sha256()
        self.num_bytes = 0

    def feed(self, chunk: bytes) -> None:
        for part in self._transport.feed(chunk) if self._transport else [chunk]:
            self._feed_file(part)

    def _feed_file(self, data: bytes) -> None:
        if not self._decided:
            self._sniffed += data
            if len(self._sniffed) < len(GZIP_MAGIC):
                return
            data, self._sniffed, self._decided = self._sniffed, b"", True
            if data.startswith(GZIP_MAGIC):
                self._file_inflater = _Inflater(31, self._max_bytes)
        if self._file_inflater is None:
            self._write(data)
            return
        try:
            parts = self._file_inflater.feed(data)
        except ApiError as error:
            raise ApiError(422, f"the gzipped trace is damaged: {error.detail}") from None
        for part in parts:
            self._write(part)

    def _write(self, data: bytes) -> None:
        self.num_bytes += len(data)
        if self.num_bytes > self._max_bytes:
            raise ApiError(
                413, f"the trace exceeds the limit of {self._max_bytes} bytes after decompression"
            )
        self.hash.update(data)
        self.file.write(data)

    def close(self, encoding: str) -> _Upload:
        if not self._decided:
            self._decided = True
            self._write(self._sniffed)
        if self._transport is not None and not self._transport.finished:
            raise ApiError(400, f"the {encoding} body is truncated")
        if self._file_inflater is not None and not self._file_inflater.finished:
            raise ApiError(422, "the gzipped trace is truncated: its gzip stream ends early")
        self.file.seek(0)
        return _Upload(self.file, self.hash.hexdigest(), self.num_bytes)


async def _receive_trace(request: Request, max_bytes: int) -> _Upload:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in _ENCODING_WBITS and encoding not in ("", "identity"):
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in TRACE_TYPES:
        raise ApiError(
            415,
            f"unsupported Content-Type {media_type!r}: send the trace file itself as the body "
            "(application/json, or application/gzip for a .json.gz), e.g. curl --data-binary @FILE",
        )
    sink = _TraceSink(encoding, max_bytes)
    try:
        async for chunk in request.stream():
            sink.feed(chunk)
        upload = sink.close(encoding)
    except BaseException:
        sink.file.close()
        raise
    if upload.num_bytes == 0:
        upload.file.close()
        raise ApiError(422, "the trace is empty: send a chrome-trace JSON file as the body")
    return upload


def _store_upload(
    write_sessions: sessionmaker[Session], upload: _Upload, meta: ProfileMeta, max_bytes: int
) -> StoredProfile:
    duplicate = profile_pipeline.find_duplicate(write_sessions, upload.sha256)
    if duplicate is not None:
        return duplicate
    try:
        packed = profile_pipeline.pack_trace(upload.file, max_bytes=max_bytes)
    except TraceFormatError as error:
        raise ApiError(422, f"not a profiler trace observe can read: {error}") from None
    except TraceTooLarge as error:
        raise ApiError(413, str(error)) from None
    try:
        return profile_pipeline.store_trace(write_sessions, packed, meta, now=utc_now())
    finally:
        packed.close()


def _upload_slots(request: Request) -> threading.Semaphore:
    slots: threading.Semaphore = request.app.state.profile_upload_slots
    return slots


def _meta(**values: Any) -> ProfileMeta:
    try:
        return ProfileMeta(**values)
    except ValidationError as error:
        problems = [describe_error(detail) for detail in error.errors()]
        detail = "; ".join(f"{field}: {message}" for field, message in problems)
        raise ApiError(422, detail) from None


@router.post(
    "/profiles",
    status_code=201,
    response_model=ProfileUploadOut,
    responses={
        200: {"model": ProfileUploadOut, "description": "The same file was stored already"},
        **documented(400, 401, 403, 413, 415, 422, 429, 503),
    },
    dependencies=[requires(Scope.INGEST)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A chrome-trace JSON file as torch.profiler exports it, plain or "
            "gzipped (a .json.gz body, or Content-Encoding: gzip).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
    summary="Upload a PyTorch profiler trace",
)
async def create_profile(
    request: Request,
    response: Response,
    model: str = Query(..., description="model name"),
    model_version: str = Query(..., description="model version"),
    host: str = Query(..., description="host the trace was captured on"),
    captured_at: str | None = Query(
        None, description="capture time; default from the trace (Kineto's baseTimeNanoseconds)"
    ),
    file_name: str | None = Query(None, description="original file name, for display"),
    settings: Settings = Depends(get_settings),
    write_sessions: sessionmaker[Session] = Depends(get_write_sessions),
) -> ProfileUploadOut:
    """Store a trace with its per-operator and per-step summary and its timeline. The same
    file uploaded again is stored once: the answer is 200 with `duplicate: true` and the
    stored trace (whatever model or version the repeat named)."""
    meta = _meta(
        model=model,
        model_version=model_version,
        host=host,
        captured_at=parse_time(captured_at, "captured_at"),
        file_name=file_name,
    )
    slots = _upload_slots(request)
    if not slots.acquire(blocking=False):
        raise ApiError(
            429, "other traces are being summarized; retry shortly", headers={"Retry-After": "5"}
        )
    try:
        upload = await _receive_trace(request, settings.max_profile_bytes)
        try:
            stored = await run_in_threadpool(
                _store_upload, write_sessions, upload, meta, settings.max_profile_bytes
            )
        finally:
            upload.file.close()
    finally:
        slots.release()
    if stored.duplicate:
        response.status_code = 200
    return ProfileUploadOut(duplicate=stored.duplicate, profile=stored.profile)


# --- reads -----------------------------------------------------------------------------------


@router.get(
    "/profiles",
    response_model=ProfileList,
    responses=documented(401, 403, 422),
    dependencies=[requires(Scope.READ)],
    summary="List profiler traces, newest capture first",
)
def list_profiles(
    model: str | None = Query(None),
    model_version: str | None = Query(None),
    host: str | None = Query(None),
    start: str | None = Query(None, description="captured at or after this"),
    end: str | None = Query(None, description="captured before this"),
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session),
) -> ProfileList:
    start_at, end_at = parse_open_window(start, end)
    items = profile_store.list_profiles(
        session,
        model=model,
        model_version=model_version,
        host=host,
        start=start_at,
        end=end_at,
        limit=limit,
    )
    return ProfileList(items=items)


@router.get(
    "/profiles/diff",
    response_model=ProfileDiffOut,
    responses=documented(401, 403, 404, 422),
    dependencies=[requires(Scope.READ)],
    summary="Operator diff of two traces, ranked by added self time",
)
def diff_profiles(
    base: int = Query(..., description="id of the base trace (e.g. v1)"),
    target: int = Query(..., description="id of the target trace (e.g. v2)"),
    limit: int = Query(100, ge=1, le=10_000, description="most operators listed"),
    session: Session = Depends(get_session),
) -> ProfileDiffOut:
    """Operators of both traces matched by name and category, ranked by the self time the
    target added (new operators included, vanished ones last). When the two traces recorded
    different numbers of profiler steps, counts and times are per step (`per_step`)."""
    base_profile = _profile_or_404(session, base)
    target_profile = _profile_or_404(session, target)
    return profile_pipeline.diff_profiles(session, base_profile, target_profile, limit=limit)


@router.get(
    "/profiles/{profile_id}",
    response_model=ProfileOut,
    responses=documented(401, 403, 404),
    dependencies=[requires(Scope.READ)],
    summary="One profiler trace",
)
def get_profile(profile_id: int, session: Session = Depends(get_session)) -> ProfileOut:
    return _profile_or_404(session, profile_id)


@router.get(
    "/profiles/{profile_id}/operators",
    response_model=OperatorList,
    responses=documented(401, 403, 404, 422),
    dependencies=[requires(Scope.READ)],
    summary="Per-operator summary of a trace",
)
def list_operators(
    profile_id: int,
    category: list[str] | None = Query(None, description="cpu_op, kernel, ... (repeatable)"),
    sort: OperatorSort = Query("self_us", description="self_us, total_us, count or name"),
    limit: int = Query(100, ge=1, le=10_000),
    session: Session = Depends(get_session),
) -> OperatorList:
    """Operators with count, total and self time and their most frequent input shapes,
    largest first by `sort` (alphabetical for `name`)."""
    _profile_or_404(session, profile_id)
    items = profile_store.load_operators(
        session, profile_id, categories=category, sort=sort, limit=limit
    )
    return OperatorList(profile_id=profile_id, items=items)


@router.get(
    "/profiles/{profile_id}/steps",
    response_model=StepList,
    responses=documented(401, 403, 404),
    dependencies=[requires(Scope.READ)],
    summary="Per-step summary of a trace",
)
def list_steps(profile_id: int, session: Session = Depends(get_session)) -> StepList:
    """Profiler steps (``ProfilerStep#N``): start relative to the trace's first event,
    duration, events started in the step and their self time per category."""
    _profile_or_404(session, profile_id)
    _, origin = profile_store.load_threads(session, profile_id)
    return StepList(
        profile_id=profile_id, items=profile_store.load_steps(session, profile_id, origin_us=origin)
    )


@router.get(
    "/profiles/{profile_id}/timeline",
    response_model=TimelineOut,
    responses=documented(401, 403, 404, 422),
    dependencies=[requires(Scope.READ)],
    summary="Events of one step or time range, for a timeline view",
)
def get_timeline(
    profile_id: int,
    step: int | None = Query(None, description="a profiler step number"),
    start_us: float | None = Query(None, ge=0, description="from the trace's first event"),
    end_us: float | None = Query(None, gt=0),
    limit: int = Query(2_000, ge=1, le=20_000, description="most events returned"),
    session: Session = Depends(get_session),
) -> TimelineOut:
    """Complete events overlapping a step or [start_us, end_us) (microseconds from the trace's
    first event; default the whole trace). With more than `limit`, the longest are kept."""
    if step is not None and (start_us is not None or end_us is not None):
        raise ApiError(422, "give either step or start_us/end_us, not both")
    if start_us is not None and end_us is not None and start_us >= end_us:
        raise ApiError(422, "start_us must be before end_us")
    profile = _profile_or_404(session, profile_id)
    timeline = profile_pipeline.load_timeline(
        session, profile, step=step, start_us=start_us, end_us=end_us, limit=limit
    )
    if timeline is None:
        raise ApiError(404, f"trace {profile_id} has no profiler step {step}")
    return timeline


@router.get(
    "/profiles/{profile_id}/raw",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/gzip": {}}, "description": "the trace file, gzipped"},
        **documented(401, 403, 404),
    },
    dependencies=[requires(Scope.READ)],
    summary="Download the trace file (gzipped)",
)
def download_profile(
    request: Request, profile_id: int, session: Session = Depends(get_session)
) -> StreamingResponse:
    """The stored trace as a .json.gz file, byte-identical to the upload once decompressed."""
    profile = _profile_or_404(session, profile_id)
    name = _download_name(profile)
    return StreamingResponse(
        _raw_chunks(request.app.state.db.sessions, profile_id),
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _raw_chunks(sessions: sessionmaker[Session], profile_id: int) -> Iterator[bytes]:
    with sessions() as session:
        yield from profile_store.iter_raw_chunks(session, profile_id)


def _download_name(profile: ProfileOut) -> str:
    stem = (profile.file_name or f"profile-{profile.id}").rsplit("/", 1)[-1]
    stem = stem.removesuffix(".gz").removesuffix(".json")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:100]
    return f"{safe or 'profile'}.json.gz"


def _profile_or_404(session: Session, profile_id: int) -> ProfileOut:
    found = profile_store.get_profile(session, profile_id) if 0 < profile_id < 2**63 else None
    if found is None:
        raise ApiError(404, f"no profiler trace with id {profile_id}")
    return found
