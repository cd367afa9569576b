"""The observe Python SDK.

    from observe.client import Client

    with Client("http://127.0.0.1:8080", api_key="obs_...") as client:
        client.log_prediction(model="fraud-scorer", model_version="v7", latency_ms=41.7,
                              features={"amount": 12.5}, prediction=0.03, tags={"host": "gpu-3"})

`log_*` calls only append to a buffer and return at once. A background thread sends batches
when `batch_size` items are waiting or every `flush_interval_seconds`. Failed sends (connection
errors, 408, 429, 5xx) are retried with exponential backoff and jitter, honouring Retry-After,
until they succeed or the client is closed; every record carries a request_id, so a retry that
the server had in fact already stored is recognised as a duplicate, never stored twice.

The buffer is bounded (`max_buffer` items, in flight included): when the server is away long
enough to fill it, new items are dropped and counted in `stats.num_dropped`, reported to
`on_drop`, and logged, rather than growing memory without bound. Items the server refuses as
invalid (422), and items that cannot be encoded as JSON, are dropped one by one with the reason
(`stats.num_rejected`), and the rest of their batch is sent again.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import ipaddress
import logging
import random
import threading
import time
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

log = logging.getLogger("observe.client")

ENDPOINTS = {
    "records": "/api/v1/records",
    "labels": "/api/v1/labels",
    "events": "/api/v1/events",
    "metrics": "/api/v1/metrics",
}
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC
COMPRESS_ABOVE_BYTES = 1024
PROFILES_ENDPOINT = "/api/v1/profiles"
GZIP_MAGIC = b"\x1f\x8b"
UPLOAD_READ_BYTES = 1 << 20
DROP_LOG_INTERVAL_SECONDS = 10.0


@dataclass
class ClientStats:
    """What happened to the items given to the client so far."""

    num_sent: int = 0
    num_duplicates: int = 0
    num_dropped: int = 0
    num_rejected: int = 0
    num_retries: int = 0
    num_buffered: int = 0
    last_error: str | None = None


class UploadError(Exception):
    """The server refused an upload for good (4xx other than 408/425/429), or retries ran out."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class Drop:
    """Items that will never reach the server, and why."""

    kind: str
    count: int
    reason: str


class Client:
    """Buffering, batching, retrying client for observe's ingest API.

    Args:
        url: server base URL, e.g. ``http://127.0.0.1:8080``.
        api_key: a key with the ingest scope (None when the server runs without auth).
        batch_size: items per request.
        flush_interval_seconds: longest time an item waits before being sent.
        max_buffer: most items held (waiting or in flight) before new ones are dropped.
        timeout_seconds: per-request timeout.
        compress: gzip request bodies larger than 1 KiB. None (the default) compresses unless
            the server is on this machine (loopback), where compressing only costs CPU.
        max_retry_delay_seconds: cap of the exponential backoff between retries.
        num_senders: requests in flight at once, so the server can parse one batch while it
            writes another.
        on_drop: called (from the sender thread) with a `Drop` whenever items are dropped.
        transport: an httpx transport, for tests.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        batch_size: int = 1000,
        flush_interval_seconds: float = 1.0,
        max_buffer: int = 100_000,
        timeout_seconds: float = 10.0,
        compress: bool | None = None,
        max_retry_delay_seconds: float = 30.0,
        num_senders: int = 2,
        on_drop: Callable[[Drop], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if batch_size < 1 or max_buffer < batch_size or num_senders < 1:
            raise ValueError("need batch_size >= 1, max_buffer >= batch_size and num_senders >= 1")
        headers = {"User-Agent": "observe-python-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout_seconds, transport=transport
        )
        self._batch_size = batch_size
        self._interval = flush_interval_seconds
        self._max_buffer = max_buffer
        self._compress = compress if compress is not None else not _is_loopback(url)
        self._max_delay = max_retry_delay_seconds
        self._on_drop = on_drop
        self._buffers: dict[str, deque[dict[str, Any]]] = {kind: deque() for kind in ENDPOINTS}
        self._held = 0  # buffered + in flight
        self._in_flight = 0
        self._condition = threading.Condition()
        self._num_flushing = 0  # flush() calls waiting: send what is buffered without delay
        self._closed = False
        self._last_drop_log = 0.0
        self.stats = ClientStats()
        # Random request ids without a system call per record; seeded from os.urandom.
        self._ids = random.Random()
        self._threads = [
            threading.Thread(target=self._run, name=f"observe-client-{n}", daemon=True)
            for n in range(num_senders)
        ]
        for thread in self._threads:
            thread.start()
        # Runs at interpreter exit (the sender threads keep the client alive until then), so a
        # short script that forgets close() still delivers what it logged.
        self._finalizer = weakref.finalize(self, _close_at_exit, weakref.ref(self))

    # --- logging API ---------------------------------------------------------------------------

    def log_prediction(
        self,
        *,
        model: str,
        model_version: str,
        latency_ms: float,
        features: Mapping[str, Any] | None = None,
        prediction: Any = None,
        label: Any = None,
        tags: Mapping[str, str] | None = None,
        request_id: str | None = None,
        timestamp: dt.datetime | float | None = None,
        status: str = "ok",
        error: str | None = None,
        input_size: float | None = None,
        trace_id: str | None = None,
    ) -> bool:
        """Queue one inference record; returns False if it had to be dropped."""
        record: dict[str, Any] = {
            "model": model,
            "model_version": model_version,
            "timestamp": _timestamp(timestamp),
            "request_id": request_id or f"{self._ids.getrandbits(128):032x}",
            "latency_ms": latency_ms,
            "status": status,
        }
        optional = {
            "features": features,
            "prediction": prediction,
            "label": label,
            "tags": tags,
            "error": error,
            "input_size": input_size,
            "trace_id": trace_id,
        }
        record.update((key, value) for key, value in optional.items() if value is not None)
        return self._enqueue("records", record)

    def log_label(
        self,
        *,
        model: str,
        request_id: str,
        label: Any,
        timestamp: dt.datetime | float | None = None,
    ) -> bool:
        """Queue ground truth for an earlier prediction."""
        item = {
            "model": model,
            "request_id": request_id,
            "label": label,
            "timestamp": _timestamp(timestamp),
        }
        return self._enqueue("labels", item)

    def log_event(
        self,
        *,
        model: str,
        kind: str,
        model_version: str | None = None,
        traffic_pct: float | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        timestamp: dt.datetime | float | None = None,
    ) -> bool:
        """Queue a deploy, rollback, canary, config, scale, incident or other event."""
        item: dict[str, Any] = {"model": model, "kind": kind, "timestamp": _timestamp(timestamp)}
        optional = {
            "model_version": model_version,
            "traffic_pct": traffic_pct,
            "description": description,
            "tags": tags,
        }
        item.update((key, value) for key, value in optional.items() if value is not None)
        return self._enqueue("events", item)

    def log_metrics(
        self,
        *,
        host: str,
        resource: str,
        values: Mapping[str, float],
        tags: Mapping[str, str] | None = None,
        timestamp: dt.datetime | float | None = None,
    ) -> bool:
        """Queue one sample per name in `values` (e.g. gpu_utilization_pct) of a resource."""
        moment = _timestamp(timestamp)
        accepted = True
        for name, value in values.items():
            item: dict[str, Any] = {
                "timestamp": moment,
                "host": host,
                "resource": resource,
                "name": name,
                "value": value,
            }
            if tags:
                item["tags"] = tags
            accepted = self._enqueue("metrics", item) and accepted
        return accepted

    def upload_profile(
        self,
        trace: str | Path | bytes,
        *,
        model: str,
        model_version: str,
        host: str,
        captured_at: dt.datetime | float | None = None,
        file_name: str | None = None,
        max_attempts: int = 8,
        timeout_seconds: float = 600.0,
    ) -> dict[str, Any]:
        """Upload a profiler trace (a chrome-trace file path, plain or .gz, or its bytes) and
        wait for the answer: ``{"duplicate": bool, "profile": {...}}``.

        Unlike the `log_*` calls this is synchronous. The body is gzipped while it streams,
        unless it is gzip already. Connection errors, 408, 429 and 5xx are retried with the
        same backoff as batches (honouring Retry-After), up to `max_attempts` sends; a retry
        of a trace the server did store is answered as a duplicate, never stored twice.

        Raises:
            UploadError: the server refused the trace (with its reason), or retries ran out.
        """
        params: dict[str, Any] = {"model": model, "model_version": model_version, "host": host}
        if captured_at is not None:
            params["captured_at"] = (
                captured_at.isoformat() if isinstance(captured_at, dt.datetime) else captured_at
            )
        if file_name or isinstance(trace, str | Path):
            params["file_name"] = file_name or Path(trace).name  # type: ignore[arg-type]
        headers = {"Content-Type": "application/gzip"}
        last = "no attempt made"
        for attempt in range(1, max_attempts + 1):
            try:
                response = self._http.post(
                    PROFILES_ENDPOINT,
                    params=params,
                    content=_gzipped(trace),
                    headers=headers,
                    timeout=timeout_seconds,
                )
            except httpx.TransportError as error:
                last, retry_after = f"{type(error).__name__}: {error}", None
            else:
                if response.is_success:
                    return _json(response)
                detail = str(_json(response).get("detail") or response.text[:500])
                last = f"HTTP {response.status_code}: {detail}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise UploadError(f"profile upload refused: {last}", response.status_code)
                retry_after = _retry_after(response)
            self.stats.num_retries += 1
            if attempt < max_attempts and not self._wait_before_retry(attempt, retry_after):
                break
        raise UploadError(f"profile upload failed after {max_attempts} attempts: {last}")

    # --- lifecycle ----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered; True once the server acknowledged all of it (or refused it
        for good), False if `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            self._num_flushing += 1
            self._condition.notify_all()
            try:
                while self._held:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._condition.wait(remaining)
            finally:
                self._num_flushing -= 1
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush (up to `timeout` seconds), then stop; items still held are dropped and counted.
        Returns whether everything was delivered."""
        delivered = self.flush(timeout)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=5.0)
        with self._condition:
            leftover = {kind: len(buffer) for kind, buffer in self._buffers.items() if buffer}
            for kind, count in leftover.items():
                self._buffers[kind].clear()
                self._held -= count
                self._report_drop(Drop(kind, count, "client closed before delivery"))
            self.stats.num_buffered = self._held
        self._http.close()
        self._finalizer.detach()
        return delivered and not leftover

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------

    def _enqueue(self, kind: str, item: dict[str, Any]) -> bool:
        with self._condition:
            if self._closed:
                self._report_drop(Drop(kind, 1, "client is closed"), rate_limited=True)
                return False
            if self._held >= self._max_buffer:
                reason = f"buffer full ({self._max_buffer} items held)"
                self._report_drop(Drop(kind, 1, reason), rate_limited=True)
                return False
            buffer = self._buffers[kind]
            buffer.append(item)
            self._held += 1
            self.stats.num_buffered = self._held
            if len(buffer) >= self._batch_size or self._num_flushing:
                self._condition.notify_all()
        return True

    def _report_drop(self, drop: Drop, *, rate_limited: bool = False) -> None:
        """Count and report dropped items (called with the condition held or from the sender).
        Drops one item at a time (a full buffer) are logged at most every 10 seconds; each
        warning carries the total, so none goes unreported."""
        self.stats.num_dropped += drop.count
        now = time.monotonic()
        if not rate_limited or now - self._last_drop_log > DROP_LOG_INTERVAL_SECONDS:
            self._last_drop_log = now
            log.warning(
                "observe client dropped %d %s (%d in all): %s",
                drop.count,
                drop.kind,
                self.stats.num_dropped,
                drop.reason,
            )
        if self._on_drop is not None:
            try:
                self._on_drop(drop)
            except Exception:
                log.exception("on_drop callback failed")

    def _run(self) -> None:
        while True:
            batches = self._next_batches()
            if batches is None:
                return
            for kind, items in batches:
                try:
                    self._deliver(kind, items)
                except Exception as error:  # never let a bug strand the items the sender holds
                    log.exception("observe client failed to send %d %s", len(items), kind)
                    self._report_drop(Drop(kind, len(items), f"unexpected error: {error!r}"))
                with self._condition:
                    self._in_flight -= len(items)
                    self._held -= len(items)
                    self.stats.num_buffered = self._held
                    self._condition.notify_all()

    def _next_batches(self) -> list[tuple[str, list[dict[str, Any]]]] | None:
        with self._condition:
            deadline = time.monotonic() + self._interval
            while not self._closed:
                full = any(len(b) >= self._batch_size for b in self._buffers.values())
                flushing = self._num_flushing > 0 and any(self._buffers.values())
                if full or flushing or time.monotonic() >= deadline:
                    break
                self._condition.wait(max(0.0, deadline - time.monotonic()))
            if self._closed:
                return None
            batches = []
            for kind, buffer in self._buffers.items():
                items = [buffer.popleft() for _ in range(min(len(buffer), self._batch_size))]
                if items:
                    batches.append((kind, items))
                    self._in_flight += len(items)
            return batches

    def _deliver(self, kind: str, items: list[dict[str, Any]]) -> None:
        """Send until acknowledged, refused for good, or the client closes."""
        pending = [items]
        attempt = 0
        while pending:
            batch = pending.pop()
            outcome = self._send(kind, batch)
            if outcome.kind == "ok":
                attempt = 0
                continue
            if outcome.kind == "split":
                half = len(batch) // 2
                pending += [batch[half:], batch[:half]]
                continue
            if outcome.kind == "reject":
                self._reject(kind, batch, outcome)
                continue
            attempt += 1
            self.stats.num_retries += 1
            self.stats.last_error = outcome.message
            if not self._wait_before_retry(attempt, outcome.retry_after):
                self._report_drop(
                    Drop(kind, len(batch) + sum(map(len, pending)), "client closed while retrying")
                )
                return
            pending.append(batch)

    def _reject(self, kind: str, batch: list[dict[str, Any]], outcome: _Outcome) -> None:
        bad = {i for i in outcome.bad_indices if 0 <= i < len(batch)}
        self.stats.last_error = outcome.message
        if not bad or len(bad) == len(batch):
            self.stats.num_rejected += len(batch)
            log.error("observe rejected %d %s: %s", len(batch), kind, outcome.message)
            return
        self.stats.num_rejected += len(bad)
        log.error("observe rejected %d of %d %s: %s", len(bad), len(batch), kind, outcome.message)
        rest = [item for i, item in enumerate(batch) if i not in bad]
        self._deliver(kind, rest)

    def _send(self, kind: str, batch: list[dict[str, Any]]) -> _Outcome:
        try:
            body = orjson.dumps(batch, option=JSON_OPTIONS)
        except orjson.JSONEncodeError as error:
            message = f"not JSON-serializable: {error}"
            return _Outcome("reject", message, bad_indices=_unencodable(batch))
        headers = {"Content-Type": "application/json"}
        if self._compress and len(body) > COMPRESS_ABOVE_BYTES:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._http.post(ENDPOINTS[kind], content=body, headers=headers)
        except httpx.TransportError as error:
            return _Outcome("retry", f"{type(error).__name__}: {error}")
        if response.is_success:
            counts = _json(response)
            self.stats.num_sent += int(counts.get("new", 0)) + int(counts.get("duplicates", 0))
            self.stats.num_duplicates += int(counts.get("duplicates", 0))
            return _Outcome("ok", "")
        detail = str(_json(response).get("detail") or response.text[:500])
        message = f"HTTP {response.status_code}: {detail}"
        if response.status_code in RETRYABLE_STATUS:
            return _Outcome("retry", message, retry_after=_retry_after(response))
        if response.status_code == 413 and len(batch) > 1:
            return _Outcome("split", message)
        indices = [
            e.get("index") for e in _json(response).get("errors") or [] if isinstance(e, dict)
        ]
        return _Outcome("reject", message, bad_indices=[i for i in indices if isinstance(i, int)])

    def _wait_before_retry(self, attempt: int, retry_after: float | None) -> bool:
        """Sleep with full-jitter exponential backoff (at least Retry-After); False if closed."""
        backoff = random.uniform(0, min(self._max_delay, 0.2 * 2**attempt))
        delay = max(backoff, min(retry_after or 0.0, self._max_delay))
        with self._condition:
            self._condition.wait_for(lambda: self._closed, timeout=delay)
            return not self._closed


@dataclass(frozen=True)
class _Outcome:
    kind: str  # ok, retry, split, reject
    message: str
    retry_after: float | None = None
    bad_indices: Sequence[int] = ()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, local zone unknown (RFC 5322)
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _gzipped(trace: str | Path | bytes) -> Iterator[bytes]:
    """The trace's bytes as gzip, read and compressed a piece at a time."""
    if isinstance(trace, bytes):
        yield trace if trace.startswith(GZIP_MAGIC) else gzip.compress(trace, compresslevel=1)
        return
    with Path(trace).open("rb") as handle:
        first = handle.read(UPLOAD_READ_BYTES)
        if first.startswith(GZIP_MAGIC):
            while first:
                yield first
                first = handle.read(UPLOAD_READ_BYTES)
            return
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        while first:
            yield compressor.compress(first)
            first = handle.read(UPLOAD_READ_BYTES)
        yield compressor.flush()


def _unencodable(batch: list[dict[str, Any]]) -> list[int]:
    """Indices of the items orjson cannot encode (a Decimal, a set, an arbitrary object)."""
    bad = []
    for index, item in enumerate(batch):
        try:
            orjson.dumps(item, option=JSON_OPTIONS)
        except orjson.JSONEncodeError:
            bad.append(index)
    return bad


def _is_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _timestamp(value: dt.datetime | float | None) -> Any:
    if value is None:
        return time.time()
    return value


def _close_at_exit(reference: weakref.ReferenceType[Client]) -> None:
    client = reference()
    if client is not None:
        client.close(timeout=5.0)
