"""Profiler traces: decompress, hash, pack and summarize in one pass, store in one transaction.

`pack_trace` reads a plain or gzipped chrome-trace stream once: the decompressed bytes are
hashed (SHA-256, the trace's identity), counted against the size limit, compressed into gzip
members of `RAW_CHUNK_BYTES` in a temporary file, and parsed by `collectors.profiler`. Only
then, with the summary known good, `store_trace` writes the raw chunks, the operators, the
steps and the timeline in one transaction: a file that fails anywhere stores nothing.

Reads for the diagnosis: `find_latest_profile` (storage) picks the trace of a model version
near a time, and `diff_model_versions` ranks the operators that added time between two
versions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from analyzers.profiles import diff_operators
from collectors.profiler import (
    TIMELINE_DTYPE,
    TraceFormatError,
    TraceSummary,
    open_trace,
    summarize_trace,
)
from observe.schemas.profiles import (
    DiffSide,
    OperatorDelta,
    ProfileDiffOut,
    ProfileMeta,
    ProfileOut,
    TimelineEvent,
    TimelineOut,
)
from observe.storage import profiles as profile_store
from observe.storage.profiles import NewProfile, TimelineChunk

#: Decompressed bytes per stored gzip member.
RAW_CHUNK_BYTES = 4 << 20
#: zlib level of the stored raw file: traces compress about 10x even at level 1, and level 6
#: takes three times as long on a 1 GB trace.
RAW_GZIP_LEVEL = 1
TIMELINE_CHUNK_EVENTS = 16_384
DEFAULT_TIMELINE_LIMIT = 2_000

__all__ = [
    "PackedTrace",
    "StoredProfile",
    "TraceFormatError",
    "TraceTooLarge",
    "diff_model_versions",
    "diff_profiles",
    "import_profile_file",
    "load_timeline",
    "pack_trace",
    "store_trace",
]


class TraceTooLarge(Exception):
    """The decompressed trace is larger than the configured limit."""


@dataclass
class PackedTrace:
    """A summarized trace and its raw bytes as gzip members in a temporary file."""

    summary: TraceSummary
    sha256: str
    num_bytes: int
    spool: IO[bytes]
    member_sizes: list[int] = field(default_factory=list)

    def raw_chunks(self) -> Iterator[bytes]:
        self.spool.seek(0)
        for size in self.member_sizes:
            yield self.spool.read(size)

    def close(self) -> None:
        self.spool.close()


@dataclass(frozen=True)
class StoredProfile:
    profile: ProfileOut
    duplicate: bool


class _PackingReader:
    """Reads decompressed trace bytes for the parser while hashing, counting and gzipping."""

    def __init__(self, source: IO[bytes], spool: IO[bytes], max_bytes: int | None) -> None:
        self._source = source
        self._spool = spool
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self._compressor: Any = None
        self._member_bytes = 0  # decompressed bytes in the open member
        self._member_size = 0  # compressed bytes of the open member written so far
        self.member_sizes: list[int] = []
        self.num_bytes = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        chunk = self._source.read(size if size > 0 else 1 << 16)
        if chunk:
            self._take(chunk)
        return chunk

    def _take(self, chunk: bytes) -> None:
        self.num_bytes += len(chunk)
        if self._max_bytes is not None and self.num_bytes > self._max_bytes:
            raise TraceTooLarge(
                f"the trace is larger than the limit of {self._max_bytes} bytes (decompressed)"
            )
        self._hash.update(chunk)
        while chunk:
            if self._compressor is None:
                self._compressor = zlib.compressobj(RAW_GZIP_LEVEL, zlib.DEFLATED, 31)
            room = RAW_CHUNK_BYTES - self._member_bytes
            part, chunk = chunk[:room], chunk[room:]
            self._write(self._compressor.compress(part))
            self._member_bytes += len(part)
            if self._member_bytes >= RAW_CHUNK_BYTES:
                self._close_member()

    def _write(self, data: bytes) -> None:
        if data:
            self._spool.write(data)
            self._member_size += len(data)

    def _close_member(self) -> None:
        self._write(self._compressor.flush())
        self.member_sizes.append(self._member_size)
        self._member_size = 0
        self._compressor = None
        self._member_bytes = 0

    def finish(self) -> str:
        """Read what the parser left, close the last member; returns the SHA-256."""
        while self.read(1 << 20):
            pass
        if self._compressor is not None:
            self._close_member()
        return self._hash.hexdigest()


def pack_trace(stream: IO[bytes], *, max_bytes: int | None = None) -> PackedTrace:
    """Summarize a plain or gzipped trace stream and keep its bytes as gzip members.

    Raises:
        TraceFormatError: the bytes are not a trace observe can summarize.
        TraceTooLarge: more than `max_bytes` once decompressed.
    """
    # Owned by the returned PackedTrace, closed by its close() (or here on failure).
    spool = tempfile.TemporaryFile(prefix="observe-profile-")  # noqa: SIM115
    try:
        reader = _PackingReader(open_trace(stream), spool, max_bytes)
        try:
            summary = summarize_trace(reader)  # type: ignore[arg-type]
            sha256 = reader.finish()
        except (EOFError, OSError, zlib.error) as error:
            raise TraceFormatError(f"the gzip stream is damaged or truncated: {error}") from None
    except BaseException:
        spool.close()
        raise
    return PackedTrace(summary, sha256, reader.num_bytes, spool, reader.member_sizes)


def store_trace(
    write_sessions: sessionmaker[Session],
    packed: PackedTrace,
    meta: ProfileMeta,
    *,
    now: dt.datetime,
    default_captured_at: dt.datetime | None = None,
) -> StoredProfile:
    """Store a packed trace in one transaction, unless the same file is stored already.

    Args:
        meta: model, version, host, and optionally capture time and file name.
        default_captured_at: used when neither `meta` nor the trace says when it was captured
            (the file's mtime for an import); `now` when None.
    """
    captured_at = meta.captured_at or packed.summary.captured_at or default_captured_at or now
    if captured_at.tzinfo is None:
        captured_at = captured_at.replace(tzinfo=dt.UTC)
    profile = _new_profile(packed, meta, captured_at=captured_at, now=now)
    try:
        with write_sessions.begin() as session:
            existing = profile_store.find_profile_id(session, packed.sha256)
            if existing is None:
                profile_id = profile_store.insert_profile(
                    session,
                    profile,
                    raw_chunks=packed.raw_chunks(),
                    timeline_chunks=_timeline_chunks(packed.summary),
                )
    except IntegrityError:  # stored by a concurrent upload of the same file
        existing = _stored_id(write_sessions, packed.sha256)
    return _answer(write_sessions, existing if existing is not None else profile_id, existing)


def _stored_id(write_sessions: sessionmaker[Session], sha256: str) -> int:
    with write_sessions() as session:
        existing = profile_store.find_profile_id(session, sha256)
    if existing is None:
        raise RuntimeError("the trace could not be stored and is not stored either")
    return existing


def _answer(
    sessions: sessionmaker[Session], profile_id: int, existing: int | None
) -> StoredProfile:
    with sessions() as session:
        stored = profile_store.get_profile(session, profile_id)
    assert stored is not None
    return StoredProfile(profile=stored, duplicate=existing is not None)


def find_duplicate(sessions: sessionmaker[Session], sha256: str) -> StoredProfile | None:
    """The stored trace with this SHA-256, as an upload's duplicate answer."""
    with sessions() as session:
        profile_id = profile_store.find_profile_id(session, sha256)
        stored = profile_store.get_profile(session, profile_id) if profile_id else None
    return None if stored is None else StoredProfile(profile=stored, duplicate=True)


def _new_profile(
    packed: PackedTrace, meta: ProfileMeta, *, captured_at: dt.datetime, now: dt.datetime
) -> NewProfile:
    summary = packed.summary
    return NewProfile(
        model=meta.model,
        model_version=meta.model_version,
        host=meta.host,
        captured_at=captured_at,
        received_at=now,
        file_name=meta.file_name,
        sha256=packed.sha256,
        num_bytes=packed.num_bytes,
        num_events=summary.num_events,
        summary={
            "num_complete_events": summary.num_complete_events,
            "num_operators": len(summary.operators),
            "num_steps": len(summary.steps),
            "start_us": summary.start_us,
            "end_us": summary.end_us,
            "duration_us": summary.duration_us,
            "metadata": summary.metadata,
            "threads": [thread.__dict__ for thread in summary.threads],
        },
        operators=[
            {
                "op_index": op.index,
                "name": op.name,
                "category": op.category,
                "count": op.count,
                "total_us": op.total_us,
                "self_us": op.self_us,
                "input_shapes": op.input_shapes or None,
            }
            for op in summary.operators
        ],
        steps=[step.__dict__ for step in summary.steps],
    )


def _timeline_chunks(summary: TraceSummary) -> Iterator[TimelineChunk]:
    for thread, rows in enumerate(summary.timeline):
        for start in range(0, len(rows), TIMELINE_CHUNK_EVENTS):
            part = rows[start : start + TIMELINE_CHUNK_EVENTS]
            yield TimelineChunk(
                thread=thread,
                start_us=float(part["ts"][0]),
                end_us=float((part["ts"] + part["dur"]).max()),
                num_events=len(part),
                data=zlib.compress(part.tobytes(), 1),
            )


def import_profile_file(
    write_sessions: sessionmaker[Session],
    path: Path,
    meta: ProfileMeta,
    *,
    now: dt.datetime,
    max_bytes: int | None = None,
) -> StoredProfile:
    """Summarize and store a trace file (``observe import profile``); the capture time
    defaults to the trace's own, else the file's modification time."""
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    with path.open("rb") as handle:
        packed = pack_trace(handle, max_bytes=max_bytes)
    try:
        return store_trace(write_sessions, packed, meta, now=now, default_captured_at=mtime)
    finally:
        packed.close()


# --- reads -----------------------------------------------------------------------------------


def load_timeline(
    session: Session,
    profile: ProfileOut,
    *,
    step: int | None = None,
    start_us: float | None = None,
    end_us: float | None = None,
    limit: int = DEFAULT_TIMELINE_LIMIT,
) -> TimelineOut | None:
    """Events of one step, or of [start_us, end_us) relative to the trace's first event; at
    most `limit`, the longest ones when more overlap the range. None: no such step."""
    threads, origin = profile_store.load_threads(session, profile.id)
    if step is not None:
        window = profile_store.find_step(session, profile.id, step)
        if window is None:
            return None
        low, high = window
    else:
        low = origin + (start_us or 0.0)
        high = origin + (end_us if end_us is not None else profile.duration_us + 1.0)
    rows, num_in_range = _select_rows(session, profile.id, low, high, limit)
    names = profile_store.load_operator_names(session, profile.id)
    return TimelineOut(
        profile_id=profile.id,
        start_us=low - origin,
        end_us=high - origin,
        step=step,
        num_events_in_range=num_in_range,
        truncated=num_in_range > len(rows),
        threads=threads,
        events=[
            TimelineEvent(
                thread=int(row["thread"]),
                name=names[int(row["op"])][0],
                category=names[int(row["op"])][1],
                start_us=float(row["ts"]) - origin,
                duration_us=float(row["dur"]),
                depth=int(row["depth"]),
            )
            for row in rows
        ],
    )


def _select_rows(
    session: Session, profile_id: int, low: float, high: float, limit: int
) -> tuple[np.ndarray, int]:
    """The longest `limit` rows overlapping [low, high), in start order, and how many overlap.
    Candidates are cut back to the longest `limit` as chunks are read, so memory stays small."""
    kept = np.empty(0, dtype=TIMELINE_DTYPE)
    num_in_range = 0
    for chunk in profile_store.load_timeline_chunks(session, profile_id, start_us=low, end_us=high):
        rows = np.frombuffer(zlib.decompress(chunk.data), dtype=TIMELINE_DTYPE)
        rows = rows[(rows["ts"] < high) & (rows["ts"] + rows["dur"] > low)]
        num_in_range += len(rows)
        kept = _longest(np.concatenate([kept, rows]), limit)
    return np.sort(kept, order=["ts", "thread", "depth"]), num_in_range


def _longest(rows: np.ndarray, limit: int) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    return rows[np.argsort(-rows["dur"], kind="stable")[:limit]]


def diff_profiles(
    session: Session, base: ProfileOut, target: ProfileOut, *, limit: int | None = None
) -> ProfileDiffOut:
    """Operators of two stored traces ranked by the self time they added (target - base),
    per profiler step when the two have different step counts."""
    result = diff_operators(
        profile_store.load_operator_frame(session, base.id),
        profile_store.load_operator_frame(session, target.id),
        base_steps=base.num_steps,
        target_steps=target.num_steps,
    )
    frame = result.operators if limit is None else result.operators.head(limit)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return ProfileDiffOut(
        base=_side(base),
        target=_side(target),
        per_step=result.per_step,
        note=_diff_note(base, target, per_step=result.per_step),
        base_self_us=result.base_self_us,
        target_self_us=result.target_self_us,
        delta_self_us=result.target_self_us - result.base_self_us,
        new_operators=result.new_operators,
        vanished_operators=result.vanished_operators,
        operators=[OperatorDelta(**record) for record in records],
    )


def diff_model_versions(
    session: Session,
    model: str,
    base_version: str,
    target_version: str,
    *,
    near: dt.datetime | None = None,
    limit: int | None = None,
) -> ProfileDiffOut | None:
    """The operator diff of the profiles of two versions of a model (each the latest one, or
    the one nearest `near`); None when either version has no profile."""
    base = profile_store.find_latest_profile(session, model, base_version, near=near)
    target = profile_store.find_latest_profile(session, model, target_version, near=near)
    if base is None or target is None:
        return None
    return diff_profiles(session, base, target, limit=limit)


def _side(profile: ProfileOut) -> DiffSide:
    return DiffSide(
        id=profile.id,
        model=profile.model,
        model_version=profile.model_version,
        host=profile.host,
        captured_at=profile.captured_at,
        num_steps=profile.num_steps,
    )


def _diff_note(base: ProfileOut, target: ProfileOut, *, per_step: bool) -> str:
    if per_step:
        return (
            f"counts and times are per profiler step: the base trace has {base.num_steps} "
            f"steps and the target {target.num_steps}"
        )
    if base.num_steps and base.num_steps == target.num_steps:
        return f"counts and times are totals over each trace (both have {base.num_steps} steps)"
    return (
        "counts and times are totals over each trace (at least one trace recorded no profiler "
        "steps, so they cannot be compared per step: compare traces of equal length)"
    )
