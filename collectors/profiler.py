"""Summarize PyTorch profiler (Kineto) chrome-trace JSON, plain or gzipped, in one streaming pass.

Method: ijson (yajl2 C backend) yields one event at a time from the ``traceEvents`` array (or
from a top-level array, the other chrome-trace layout), so memory never holds the document.
Complete ("X") events are kept as compact per-thread columns (start, duration, interned
operator id: 20 bytes an event); everything else about an event is dropped once counted. After
the pass, per thread, events are ordered by start (longer first on ties) and a stack gives each
event its direct parent on the same (pid, tid): self time is the duration minus the time of
directly nested children (a child that overhangs its parent counts only up to the parent's end),
and nesting depth comes from the same walk. Per-operator count, total and self time are then
bin-counts over the operator ids. ``ProfilerStep#N`` annotations (what ``prof.step()`` records)
split the trace into steps: every event belongs to the last step that started at or before it,
so GPU work launched in a step but finishing after its CPU annotation still counts there.

Operators are keyed by (name, category) as Kineto writes them (``cpu_op``, ``kernel``,
``gpu_memcpy``, ``cuda_runtime``, ``python_function``, ``user_annotation``, ...); the step
annotations themselves are one operator, ``ProfilerStep*``, as ``prof.key_averages()`` names
them. Input shapes come from ``args["Input Dims"]`` (present with ``record_shapes=True``).

Top-level metadata (``baseTimeNanoseconds``, ``schemaVersion``, ``host_name``, ...) is read
from the first and last bytes of the file, where Kineto writes it, without a second pass.
Event timestamps are microseconds since ``baseTimeNanoseconds``, which gives the capture time.

Assumptions: timestamps and durations are microseconds (chrome trace's unit); a file that is
not JSON, ends early, or has events of the wrong shape raises `TraceFormatError` naming the
problem, and nothing is summarized from it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import zlib
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

import ijson
import numpy as np
import orjson

MAX_NAME_LENGTH = 1000
MAX_CATEGORY_LENGTH = 64
MAX_SHAPES_PER_OPERATOR = 5
MAX_DISTINCT_SHAPES = 200_000
METADATA_WINDOW_BYTES = 1 << 20
MAX_TAIL_ATTEMPTS = 50
READ_SIZE = 1 << 16
NESTING_BLOCK = 1 << 16
STEP_OPERATOR = "ProfilerStep*"
_STEP_NAME = re.compile(r"^ProfilerStep#(\d+)$")
_GZIP_MAGIC = b"\x1f\x8b"
#: A timeline row: thread index, start and duration (µs), operator index, nesting depth.
TIMELINE_DTYPE = np.dtype(
    [("thread", "<i4"), ("ts", "<f8"), ("dur", "<f8"), ("op", "<i4"), ("depth", "<i2")]
)


class TraceFormatError(ValueError):
    """The bytes are not a chrome-trace JSON file observe can summarize."""


@dataclass(frozen=True)
class OperatorSummary:
    """One operator: a (name, category) pair and its aggregate over the whole trace.

    Attributes:
        index: position in `TraceSummary.operators`; timeline rows refer to it.
        input_shapes: the most frequent ``Input Dims`` values, each ``{"shapes", "count"}``,
            most frequent first; empty when the trace recorded no shapes.
    """

    index: int
    name: str
    category: str
    count: int
    total_us: float
    self_us: float
    input_shapes: list[dict[str, Any]]


@dataclass(frozen=True)
class StepSummary:
    """One profiler step (``ProfilerStep#N``).

    Attributes:
        start_us: the annotation's start, in trace microseconds.
        duration_us: the annotation's duration (the CPU side of the step).
        num_events: complete events that started within the step.
        self_us_by_category: self time of those events per category (additive, unlike totals).
    """

    step: int
    start_us: float
    duration_us: float
    num_events: int
    self_us_by_category: dict[str, float]


@dataclass(frozen=True)
class ThreadInfo:
    pid: str
    tid: str
    name: str | None


@dataclass
class TraceSummary:
    """What `summarize_trace` found.

    Attributes:
        timeline: every complete event, one `TIMELINE_DTYPE` array per thread (in `threads`
            order), each sorted by start.
    """

    num_events: int
    num_complete_events: int
    start_us: float
    end_us: float
    captured_at: dt.datetime | None
    metadata: dict[str, Any]
    operators: list[OperatorSummary]
    steps: list[StepSummary]
    threads: list[ThreadInfo]
    timeline: list[np.ndarray] = field(repr=False)

    @property
    def duration_us(self) -> float:
        return self.end_us - self.start_us


def open_trace(stream: IO[bytes]) -> IO[bytes]:
    """The decompressed bytes of a trace stream: gzip is recognised by its magic bytes.

    Args:
        stream: a binary stream positioned at the start of a plain or gzipped trace.
    """
    head = _peek(stream, 2)
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


def summarize_trace(stream: IO[bytes]) -> TraceSummary:
    """Summarize a chrome-trace JSON stream (plain bytes; see `open_trace` for gzip).

    Args:
        stream: binary stream of the JSON document.

    Returns:
        The per-operator and per-step summary, thread names, metadata and the timeline.

    Raises:
        TraceFormatError: empty, not JSON, truncated, of the wrong shape, or without any
            complete ("X") event.
    """
    reader = _WindowReader(stream)
    collector = _Collector()
    try:
        first = _first_byte(reader)
        prefix = "item" if first == ord("[") else "traceEvents.item"
        for event in ijson.items(reader, prefix, use_float=True):
            collector.add(event)
    except ijson.JSONError as error:
        raise _json_error(error, reader.num_bytes) from None
    except (EOFError, OSError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise TraceFormatError(f"the gzip stream is damaged or truncated: {error}") from None
    return collector.finish(_metadata(reader.head, reader.tail, first))


def _first_byte(reader: _WindowReader) -> int:
    first = reader.first_byte()
    if first is None:
        raise TraceFormatError("the file is empty")
    if first not in b"{[":
        raise TraceFormatError(
            "the file is not JSON: a chrome trace starts with '{' or '[' "
            f"(found {bytes([first])!r})"
        )
    return first


# --- reading ---------------------------------------------------------------------------------


def _peek(stream: IO[bytes], size: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return bytes(peek(size)[:size])
    position = stream.tell()
    head = stream.read(size)
    stream.seek(position)
    return head


class _WindowReader:
    """Passes reads through, keeping the first and the last `METADATA_WINDOW_BYTES`."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._pending = b""
        self.head = bytearray()
        self._tail: list[bytes] = []
        self._tail_size = 0
        self.num_bytes = 0

    def first_byte(self) -> int | None:
        while True:
            chunk = self._stream.read(READ_SIZE)
            if not chunk:
                return None
            stripped = chunk.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
            if stripped:
                self._pending = stripped
                return stripped[0]

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson reads nothing first, to learn whether the stream gives bytes
            return b""
        if self._pending:
            chunk, self._pending = self._pending, b""
        else:
            chunk = self._stream.read(size if size and size > 0 else READ_SIZE)
        self.num_bytes += len(chunk)
        if len(self.head) < METADATA_WINDOW_BYTES:
            self.head += chunk[: METADATA_WINDOW_BYTES - len(self.head)]
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        while self._tail_size - len(self._tail[0]) >= METADATA_WINDOW_BYTES:
            self._tail_size -= len(self._tail.pop(0))
        return chunk

    @property
    def tail(self) -> bytes:
        return b"".join(self._tail)


def _json_error(error: Exception, num_bytes: int) -> TraceFormatError:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "premature EOF" in message or "Incomplete JSON content" in message:
        return TraceFormatError(
            f"the trace ends early after {num_bytes} bytes: the file is truncated ({message})"
        )
    return TraceFormatError(f"the trace is not valid JSON near byte {num_bytes}: {message}")


# --- collecting events -----------------------------------------------------------------------


class _Thread:
    __slots__ = ("dur", "op", "ts")

    def __init__(self) -> None:
        self.ts = array("d")
        self.dur = array("d")
        self.op = array("i")


class _Collector:
    """Interns operators and threads and keeps each complete event's start, duration and op."""

    def __init__(self) -> None:
        self.num_events = 0
        self.operators: dict[tuple[str, str], int] = {}  # as written in the trace -> index
        self._stored: dict[tuple[str, str], int] = {}  # as stored (cleaned) -> index
        self.names: list[tuple[str, str]] = []  # (name, category) as stored, by index
        self.threads: dict[tuple[Any, Any], _Thread] = {}
        self.thread_names: dict[tuple[Any, Any], str] = {}
        self.shapes: Counter[tuple[int, bytes]] = Counter()
        self.steps: dict[int, tuple[float, float]] = {}

    def add(self, event: Any) -> None:
        self.num_events += 1
        if type(event) is not dict:
            raise TraceFormatError(
                f"event {self.num_events - 1} is a {type(event).__name__}, not a JSON object"
            )
        phase = event.get("ph")
        try:
            if phase == "X":
                self._add_complete(event)
            elif phase == "M" and event.get("name") == "thread_name":
                self._add_thread_name(event)
        except TypeError as error:  # an unhashable pid, tid or name
            raise TraceFormatError(
                f"event {self.num_events - 1} ({phase!r}) is malformed: {error}"
            ) from None

    def _add_complete(self, event: dict[str, Any]) -> None:
        name = event.get("name")
        category = event.get("cat") or "other"
        key = (name, category)
        op = self.operators.get(key)  # type: ignore[arg-type]
        if op is None:
            op = self._intern(name, category)
        ts, dur = event.get("ts"), event.get("dur")
        thread_key = (event.get("pid"), event.get("tid"))
        thread = self.threads.get(thread_key)
        if thread is None:
            thread = self.threads[thread_key] = _Thread()
        try:
            thread.ts.append(ts)  # type: ignore[arg-type]
            thread.dur.append(dur)  # type: ignore[arg-type]
        except TypeError:
            raise self._bad_number(event, "ts" if not _is_number(ts) else "dur") from None
        thread.op.append(op)
        args = event.get("args")
        if args:
            dims = args.get("Input Dims") if type(args) is dict else None
            if dims and len(self.shapes) < MAX_DISTINCT_SHAPES:
                self.shapes[(op, orjson.dumps(dims))] += 1
        if category == "user_annotation" and name.startswith("ProfilerStep#"):  # type: ignore[union-attr]
            self._add_step(name, ts, dur)  # type: ignore[arg-type]

    def _intern(self, name: Any, category: Any) -> int:
        if type(name) is not str:
            raise TraceFormatError(
                f"event {self.num_events - 1}: a complete ('X') event needs a string 'name', "
                f"got {type(name).__name__}"
            )
        if type(category) is not str:
            raise TraceFormatError(f"event {self.num_events - 1}: 'cat' must be a string")
        stored = (
            STEP_OPERATOR
            if category == "user_annotation" and _STEP_NAME.match(name)
            else _clean_text(name, MAX_NAME_LENGTH)
        )
        key = (stored, _clean_text(category, MAX_CATEGORY_LENGTH))
        op = self._stored.get(key)
        if op is None:
            op = self._stored[key] = len(self.names)
            self.names.append(key)
        self.operators[(name, category)] = op
        return op

    def _add_step(self, name: str, ts: float, dur: float) -> None:
        match = _STEP_NAME.match(name)
        if match is not None:
            self.steps.setdefault(int(match.group(1)), (float(ts), float(dur)))

    def _add_thread_name(self, event: dict[str, Any]) -> None:
        args = event.get("args")
        if type(args) is dict and isinstance(args.get("name"), str):
            key = (event.get("pid"), event.get("tid"))
            self.thread_names[key] = _clean_text(args["name"], MAX_NAME_LENGTH)

    def _bad_number(self, event: dict[str, Any], key: str) -> TraceFormatError:
        return TraceFormatError(
            f"event {self.num_events - 1} ({event.get('name')!r}): {key!r} is "
            f"{'missing' if key not in event else 'not a number'}"
        )

    def finish(self, metadata: dict[str, Any]) -> TraceSummary:
        if self.num_events == 0:
            raise TraceFormatError(
                "the trace has no events: expected a traceEvents array of chrome-trace events"
            )
        if not self.threads:
            raise TraceFormatError(
                f"the trace has {self.num_events} events but no complete ('X') event to summarize"
            )
        return _summarize(self, metadata)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _clean_text(value: str, max_length: int) -> str:
    """Text both databases can store: no NUL characters, at most `max_length` characters."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value if len(value) <= max_length else value[: max_length - 1] + "…"


# --- after the pass --------------------------------------------------------------------------


class _Totals:
    """Per-operator and per-(step, category) sums, added to one thread at a time."""

    def __init__(self, names: list[tuple[str, str]], annotations: dict[int, tuple[float, float]]):
        self.names = names
        self.counts = np.zeros(len(names), dtype=np.int64)
        self.total_us = np.zeros(len(names))
        self.self_us = np.zeros(len(names))
        self.step_numbers = sorted(annotations, key=lambda number: annotations[number][0])
        self.step_starts = np.array([annotations[n][0] for n in self.step_numbers], dtype=float)
        self.categories = sorted({category for _, category in names})
        self.category_of_op = np.array([self.categories.index(c) for _, c in names], dtype=int)
        self.step_self_us = np.zeros((len(self.step_numbers), len(self.categories)))
        self.step_counts = np.zeros(len(self.step_numbers), dtype=np.int64)

    def add(self, rows: np.ndarray, self_us: np.ndarray) -> None:
        size = len(self.names)
        self.counts += np.bincount(rows["op"], minlength=size)
        self.total_us += np.bincount(rows["op"], weights=rows["dur"], minlength=size)
        self.self_us += np.bincount(rows["op"], weights=self_us, minlength=size)
        if not self.step_numbers:
            return
        step_of = np.searchsorted(self.step_starts, rows["ts"], side="right") - 1
        inside = step_of >= 0
        width = len(self.categories)
        cell = step_of[inside] * width + self.category_of_op[rows["op"][inside]]
        self.step_self_us += np.bincount(
            cell, weights=self_us[inside], minlength=self.step_self_us.size
        ).reshape(self.step_self_us.shape)
        self.step_counts += np.bincount(step_of[inside], minlength=len(self.step_numbers))


def _summarize(collector: _Collector, metadata: dict[str, Any]) -> TraceSummary:
    totals = _Totals(collector.names, collector.steps)
    timeline: list[np.ndarray] = []
    threads = []
    for number, key in enumerate(list(collector.threads)):
        thread = collector.threads.pop(key)  # its raw columns go once its rows are built
        rows, self_us = _thread_timeline(number, thread)
        del thread
        totals.add(rows, self_us)
        timeline.append(rows)
        threads.append(
            ThreadInfo(pid=str(key[0]), tid=str(key[1]), name=collector.thread_names.get(key))
        )
    start_us = min(float(rows["ts"][0]) for rows in timeline)
    end_us = max(float((rows["ts"] + rows["dur"]).max()) for rows in timeline)
    return TraceSummary(
        num_events=collector.num_events,
        num_complete_events=sum(len(rows) for rows in timeline),
        start_us=start_us,
        end_us=end_us,
        captured_at=_captured_at(metadata, start_us),
        metadata=metadata,
        operators=_operators(totals, collector.shapes),
        steps=_steps(totals, collector.steps),
        threads=threads,
        timeline=timeline,
    )


def _thread_timeline(number: int, thread: _Thread) -> tuple[np.ndarray, np.ndarray]:
    """One thread's rows in start order (longer first on ties), and the self time of each."""
    ts = np.frombuffer(thread.ts, dtype=np.float64)
    dur = np.frombuffer(thread.dur, dtype=np.float64)
    _check_numbers(ts, dur)
    order = np.lexsort((-dur, ts))
    rows = np.empty(len(ts), dtype=TIMELINE_DTYPE)
    rows["thread"] = number
    rows["ts"] = ts[order]
    rows["dur"] = dur[order]
    rows["op"] = np.frombuffer(thread.op, dtype=np.int32)[order]
    child_us, depth = _nesting(rows["ts"], rows["dur"])
    rows["depth"] = np.minimum(depth, np.iinfo(np.int16).max)
    return rows, np.maximum(rows["dur"] - child_us, 0.0)


def _check_numbers(ts: np.ndarray, dur: np.ndarray) -> None:
    if not (np.isfinite(ts).all() and np.isfinite(dur).all()):
        raise TraceFormatError("an event's 'ts' or 'dur' is not a finite number")
    negative = int((dur < 0).sum())
    if negative:
        raise TraceFormatError(f"{negative} complete events have a negative 'dur'")


def _nesting(ts: np.ndarray, dur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time covered by direct children, and depth, of events sorted by (start, -duration).

    Walks blocks of `NESTING_BLOCK` events so that the Python lists the walk needs for speed
    stay small; the stack of open events carries over from block to block.
    """
    child_us = np.zeros(len(ts))
    depth = np.zeros(len(ts), dtype=np.int64)
    stack: list[tuple[int, float]] = []  # (index, end) of the open events, innermost last
    for block in range(0, len(ts), NESTING_BLOCK):
        starts = ts[block : block + NESTING_BLOCK].tolist()
        ends = (ts[block : block + NESTING_BLOCK] + dur[block : block + NESTING_BLOCK]).tolist()
        child = [0.0] * len(starts)
        levels = [0] * len(starts)
        outside: dict[int, float] = {}  # parents that opened in an earlier block
        for offset, start in enumerate(starts):
            while stack and stack[-1][1] <= start:
                stack.pop()
            if stack:
                parent, parent_end = stack[-1]
                end = ends[offset]
                covered = (end if end < parent_end else parent_end) - start
                if parent >= block:
                    child[parent - block] += covered
                else:
                    outside[parent] = outside.get(parent, 0.0) + covered
                levels[offset] = len(stack)
            stack.append((block + offset, ends[offset]))
        child_us[block : block + len(child)] = child
        depth[block : block + len(levels)] = levels
        for parent, covered in outside.items():
            child_us[parent] += covered
    return child_us, depth


def _operators(totals: _Totals, shapes: Counter[tuple[int, bytes]]) -> list[OperatorSummary]:
    top_shapes = _top_shapes(shapes)
    return [
        OperatorSummary(
            index=index,
            name=name,
            category=category,
            count=int(totals.counts[index]),
            total_us=float(totals.total_us[index]),
            self_us=float(totals.self_us[index]),
            input_shapes=top_shapes.get(index, []),
        )
        for index, (name, category) in enumerate(totals.names)
    ]


def _top_shapes(shapes: Counter[tuple[int, bytes]]) -> dict[int, list[dict[str, Any]]]:
    by_operator: dict[int, list[tuple[int, bytes]]] = {}
    for (op, dims), count in shapes.items():
        by_operator.setdefault(op, []).append((count, dims))
    return {
        op: [
            {"shapes": orjson.loads(dims), "count": count}
            for count, dims in sorted(found, key=lambda item: (-item[0], item[1]))[
                :MAX_SHAPES_PER_OPERATOR
            ]
        ]
        for op, found in by_operator.items()
    }


def _steps(totals: _Totals, annotations: dict[int, tuple[float, float]]) -> list[StepSummary]:
    return [
        StepSummary(
            step=number,
            start_us=annotations[number][0],
            duration_us=annotations[number][1],
            num_events=int(totals.step_counts[position]),
            self_us_by_category={
                category: float(totals.step_self_us[position, column])
                for column, category in enumerate(totals.categories)
                if totals.step_self_us[position, column] > 0
            },
        )
        for position, number in enumerate(totals.step_numbers)
    ]


# --- metadata --------------------------------------------------------------------------------


def _metadata(head: bytes | bytearray, tail: bytes, first: int) -> dict[str, Any]:
    """Top-level scalar entries of a trace object, from the bytes before and after its events."""
    if first != ord("{"):
        return {}
    found: dict[str, Any] = {}
    found.update(_entries_before_events(bytes(head)))
    found.update(_entries_after_events(tail))
    return {key: value for key, value in found.items() if _is_plain(key, value)}


def _entries_before_events(head: bytes) -> dict[str, Any]:
    position = head.find(b'"traceEvents"')
    if position < 0:
        return {}
    text = head[:position].rstrip().rstrip(b",")
    text = text.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
    return _loads_object(text + b"}")


def _entries_after_events(tail: bytes) -> dict[str, Any]:
    end = tail.rstrip()
    if not end.endswith(b"}"):
        return {}
    candidates = list(re.finditer(rb'\]\s*,\s*"', tail))[-MAX_TAIL_ATTEMPTS:]
    for match in reversed(candidates):
        found = _loads_object(b'{"' + tail[match.end() :])
        if found:
            return found
    return {}


def _loads_object(text: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _is_plain(key: str, value: Any) -> bool:
    if key == "traceEvents" or "\x00" in key or len(key) > 200:
        return False
    if isinstance(value, str):
        return "\x00" not in value and len(value) <= MAX_NAME_LENGTH
    return value is None or isinstance(value, bool | int | float)


def _captured_at(metadata: dict[str, Any], start_us: float) -> dt.datetime | None:
    """Kineto's timestamps count microseconds from ``baseTimeNanoseconds`` (Unix epoch)."""
    base_ns = metadata.get("baseTimeNanoseconds")
    if not isinstance(base_ns, int | float) or isinstance(base_ns, bool) or base_ns <= 0:
        return None
    seconds = base_ns / 1e9 + start_us / 1e6
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
