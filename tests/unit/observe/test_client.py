"""The SDK against a scripted in-process server (httpx.MockTransport), and once against the real
app served by uvicorn on a loopback port."""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from sqlalchemy import func, select

from observe.client import Client, Drop
from observe.db.engine import Database
from observe.db.models import Event, InferenceRecord, Label, MetricSample

URL = "http://127.0.0.1:8080"
REMOTE_URL = "https://observe.example.com"
API_KEY = "obs_test-key"
T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)

Answer = Callable[[list[dict[str, Any]]], httpx.Response]


@dataclass(frozen=True)
class Request:
    """One request as the server saw it, body decoded."""

    path: str
    headers: httpx.Headers
    items: list[dict[str, Any]]
    status_code: int | None  # None: the connection failed
    at: float


def ok(items: list[dict[str, Any]], *, duplicates: int = 0) -> httpx.Response:
    counts = {"accepted": len(items), "new": len(items) - duplicates, "duplicates": duplicates}
    return httpx.Response(200, json=counts)


def status(code: int, *, headers: dict[str, str] | None = None, **body: Any) -> Answer:
    return lambda _items: httpx.Response(code, headers=headers, json=body or {"detail": "nope"})


def connection_refused(_items: list[dict[str, Any]]) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


class ScriptedServer:
    """An httpx handler that records every request and answers from a script, then with `rule`
    (200 with counts, by default)."""

    def __init__(self, *script: Answer, rule: Answer = ok) -> None:
        self.script: deque[Answer] = deque(script)
        self.rule = rule
        self.requests: list[Request] = []
        self.num_arrived = 0
        self.gate = threading.Event()  # cleared: requests wait, as on a stalled server
        self.gate.set()
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.num_arrived += 1
        self.gate.wait(10)
        body = request.content
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        items = orjson.loads(body)
        with self._lock:
            answer = self.script.popleft() if self.script else self.rule
        try:
            response = answer(items)
        except httpx.TransportError:
            self._record(request, items, None)
            raise
        self._record(request, items, response.status_code)
        return response

    def _record(self, request: httpx.Request, items: list[Any], code: int | None) -> None:
        with self._lock:
            self.requests.append(
                Request(request.url.path, request.headers, items, code, time.monotonic())
            )

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests arrived, expected {count}")
            time.sleep(0.005)
        return list(self.requests)

    def wait_for_arrivals(self, count: int, timeout: float = 5.0) -> None:
        """Wait until `count` requests reached the server (answered or held at the gate)."""
        deadline = time.monotonic() + timeout
        while self.num_arrived < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.num_arrived} requests arrived, expected {count}")
            time.sleep(0.005)

    def delivered(self, path: str = "/api/v1/records") -> list[dict[str, Any]]:
        """Items of the requests to `path` that were answered with a 2xx."""
        return [
            item
            for request in self.requests
            if request.path == path and request.status_code is not None
            if 200 <= request.status_code < 300
            for item in request.items
        ]


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """Clients on a ScriptedServer: no time-based flush, short retry delays, one sender (so
    request order is deterministic) unless a test asks otherwise. Closed after the test."""
    clients: list[Client] = []

    def make(server: ScriptedServer, url: str = URL, **options: Any) -> Client:
        settings = {
            "api_key": API_KEY,
            "flush_interval_seconds": 60.0,
            "max_retry_delay_seconds": 0.05,
            "num_senders": 1,
            **options,
        }
        client = Client(url, transport=httpx.MockTransport(server), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1.0)


def log_records(client: Client, count: int, *, start: int = 0, **fields: Any) -> list[str]:
    request_ids = [f"req-{i}" for i in range(start, start + count)]
    for request_id in request_ids:
        values = {"model": "fraud-scorer", "model_version": "v1", "latency_ms": 12.5, **fields}
        assert client.log_prediction(request_id=request_id, **values)
    return request_ids


def request_ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["request_id"] for item in items]


# --- what is sent --------------------------------------------------------------------------------


def test_log_prediction_sends_the_record_in_the_contract_shape(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server)

    client.log_prediction(
        model="fraud-scorer",
        model_version="v7",
        latency_ms=41.7,
        features={"amount": 12.5, "country": "DE", "card_present": True, "note": None},
        prediction=0.03,
        tags={"host": "gpu-3"},
        request_id="req-1",
        timestamp=T0,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        input_size=512,
    )
    assert client.flush(timeout=5)

    [request] = server.requests
    assert request.path == "/api/v1/records"
    assert request.items == [
        {
            "model": "fraud-scorer",
            "model_version": "v7",
            "timestamp": "2026-11-16T12:00:00+00:00",
            "request_id": "req-1",
            "latency_ms": 41.7,
            "status": "ok",
            "features": {"amount": 12.5, "country": "DE", "card_present": True, "note": None},
            "prediction": 0.03,
            "tags": {"host": "gpu-3"},
            "input_size": 512,
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
        }
    ]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"


def test_log_prediction_fills_in_request_id_and_timestamp(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server)
    before = time.time()

    for _ in range(50):
        client.log_prediction(model="m", model_version="v1", latency_ms=1.0)
    client.log_prediction(
        model="m", model_version="v1", latency_ms=1.0, status="error", error="timeout"
    )
    assert client.flush(timeout=5)

    items = server.delivered()
    ids = request_ids(items)
    # The request id is the idempotency key, so each must be unique and generated client-side.
    assert len(set(ids)) == 51
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert all(before <= item["timestamp"] <= time.time() for item in items)
    assert items[-1]["status"] == "error"
    assert items[-1]["error"] == "timeout"
    assert "features" not in items[0]
    assert "label" not in items[0]


def test_naive_datetimes_are_sent_as_utc(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server)

    client.log_prediction(
        model="m", model_version="v1", latency_ms=1.0, timestamp=dt.datetime(2026, 11, 16, 12, 0)
    )
    client.log_prediction(model="m", model_version="v1", latency_ms=1.0, timestamp=1_794_830_400.5)
    assert client.flush(timeout=5)

    stamps = [item["timestamp"] for item in server.delivered()]
    assert stamps == ["2026-11-16T12:00:00+00:00", 1_794_830_400.5]


def test_labels_events_and_metrics_go_to_their_endpoints(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server)

    client.log_label(model="fraud-scorer", request_id="req-1", label=1, timestamp=T0)
    client.log_event(
        model="fraud-scorer",
        kind="deploy",
        model_version="v7",
        traffic_pct=100,
        description="full rollout",
        timestamp=T0,
    )
    client.log_event(model="fraud-scorer", kind="incident", timestamp=T0)
    client.log_metrics(
        host="gpu-3",
        resource="gpu0",
        values={"gpu_utilization_pct": 97.0, "gpu_temperature_c": 81.0},
        tags={"gpu_model": "H100"},
        timestamp=T0,
    )
    assert client.flush(timeout=5)

    stamp = "2026-11-16T12:00:00+00:00"
    assert server.delivered("/api/v1/labels") == [
        {"model": "fraud-scorer", "request_id": "req-1", "label": 1, "timestamp": stamp}
    ]
    assert server.delivered("/api/v1/events") == [
        {
            "model": "fraud-scorer",
            "kind": "deploy",
            "timestamp": stamp,
            "model_version": "v7",
            "traffic_pct": 100,
            "description": "full rollout",
        },
        {"model": "fraud-scorer", "kind": "incident", "timestamp": stamp},
    ]
    sample = {
        "timestamp": stamp,
        "host": "gpu-3",
        "resource": "gpu0",
        "tags": {"gpu_model": "H100"},
    }
    assert server.delivered("/api/v1/metrics") == [
        {**sample, "name": "gpu_utilization_pct", "value": 97.0},
        {**sample, "name": "gpu_temperature_c", "value": 81.0},
    ]
    assert client.stats.num_sent == 5


def test_without_an_api_key_no_authorization_header_is_sent(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, api_key=None)

    log_records(client, 1)
    assert client.flush(timeout=5)

    assert "authorization" not in server.requests[0].headers


def test_numpy_values_are_serialised(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server)

    client.log_prediction(
        model="m",
        model_version="v1",
        latency_ms=np.float32(2.5),
        features={"x": np.float64(1.5), "n": np.int64(3)},
        prediction=np.array([0.25, 0.75]),
    )
    assert client.flush(timeout=5)

    [item] = server.delivered()
    assert (item["latency_ms"], item["features"], item["prediction"]) == (
        2.5,
        {"x": 1.5, "n": 3},
        [0.25, 0.75],
    )


# --- batching ------------------------------------------------------------------------------------


def test_a_full_batch_is_sent_without_waiting_for_the_interval(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, batch_size=10)

    log_records(client, 25)

    requests = server.wait_for_requests(2)
    assert [len(r.items) for r in requests] == [10, 10]
    time.sleep(0.1)
    assert len(server.requests) == 2, "a partial batch waits for the interval or a flush"
    assert client.stats.num_buffered == 5

    assert client.flush(timeout=5)
    assert [len(r.items) for r in server.requests] == [10, 10, 5]
    assert request_ids(server.delivered()) == [f"req-{i}" for i in range(25)]
    assert client.stats.num_buffered == 0


def test_a_partial_batch_is_sent_after_the_flush_interval(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, batch_size=1000, flush_interval_seconds=0.05)

    started = time.monotonic()
    log_records(client, 3)

    [request] = server.wait_for_requests(1, timeout=2.0)
    assert request_ids(request.items) == ["req-0", "req-1", "req-2"]
    assert request.at - started < 1.0


def test_kinds_are_batched_separately(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, batch_size=2)

    log_records(client, 1)
    client.log_label(model="fraud-scorer", request_id="req-0", label=0)
    assert client.flush(timeout=5)

    assert sorted(r.path for r in server.requests) == ["/api/v1/labels", "/api/v1/records"]


def test_the_context_manager_delivers_everything_on_exit(make_client: Any) -> None:
    server = ScriptedServer()

    with make_client(server, batch_size=100) as client:
        log_records(client, 42)
        assert server.requests == []

    assert request_ids(server.delivered()) == [f"req-{i}" for i in range(42)]
    assert client.stats.num_sent == 42
    assert client.stats.num_dropped == 0


def test_many_threads_logging_at_once_lose_and_repeat_nothing(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, batch_size=37, num_senders=3, flush_interval_seconds=0.01)

    def log_many(thread: int) -> None:
        log_records(client, 250, start=thread * 1000)

    threads = [threading.Thread(target=log_many, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=10)

    ids = request_ids(server.delivered())
    assert len(ids) == len(set(ids)) == 1000
    assert all(len(r.items) <= 37 for r in server.requests)
    assert client.stats.num_sent == 1000


def test_duplicates_reported_by_the_server_are_counted(make_client: Any) -> None:
    server = ScriptedServer(lambda items: ok(items, duplicates=2))
    client = make_client(server)

    log_records(client, 5)
    assert client.flush(timeout=5)

    assert (client.stats.num_sent, client.stats.num_duplicates) == (5, 2)


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
def test_retryable_answers_are_retried_with_the_same_batch(make_client: Any, code: int) -> None:
    server = ScriptedServer(status(code), status(code))
    client = make_client(server)

    log_records(client, 3)
    assert client.flush(timeout=5)

    assert [r.status_code for r in server.requests] == [code, code, 200]
    # The very same items (request ids included) are resent, so the server can deduplicate.
    assert server.requests[0].items == server.requests[2].items
    assert client.stats.num_retries == 2
    assert client.stats.num_sent == 3
    assert client.stats.last_error is not None
    assert client.stats.last_error.startswith(f"HTTP {code}")


def test_connection_errors_are_retried(make_client: Any) -> None:
    server = ScriptedServer(connection_refused, connection_refused)
    client = make_client(server)

    log_records(client, 3)
    assert client.flush(timeout=5)

    assert [r.status_code for r in server.requests] == [None, None, 200]
    assert request_ids(server.delivered()) == ["req-0", "req-1", "req-2"]
    assert client.stats.num_retries == 2
    assert client.stats.last_error is not None
    assert "ConnectError" in client.stats.last_error


def test_backoff_is_capped_by_max_retry_delay(make_client: Any) -> None:
    server = ScriptedServer(*[status(503)] * 6)
    client = make_client(server, max_retry_delay_seconds=0.2)

    log_records(client, 1)
    started = time.monotonic()
    assert client.flush(timeout=10)
    elapsed = time.monotonic() - started

    assert len(server.requests) == 7
    # Six waits, each at most the cap: the cap bounds the total however many retries.
    assert elapsed < 6 * 0.2 + 1.0


def gap_before_second_request(server: ScriptedServer) -> float:
    first, second = server.wait_for_requests(2)[:2]
    return second.at - first.at


def test_retry_after_seconds_is_honoured_up_to_the_cap(make_client: Any) -> None:
    # Without the header the first backoff is at most 0.4 s; Retry-After: 5 (capped at 0.6 s)
    # must make the client wait longer than that.
    server = ScriptedServer(status(429, headers={"Retry-After": "5"}))
    client = make_client(server, max_retry_delay_seconds=0.6)

    log_records(client, 1)
    assert client.flush(timeout=5)

    assert 0.55 <= gap_before_second_request(server) < 2.0


def test_retry_after_http_date_is_honoured_up_to_the_cap(make_client: Any) -> None:
    in_an_hour = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), True)
    server = ScriptedServer(status(503, headers={"Retry-After": in_an_hour}))
    client = make_client(server, max_retry_delay_seconds=0.6)

    log_records(client, 1)
    assert client.flush(timeout=5)

    assert 0.55 <= gap_before_second_request(server) < 2.0


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",  # in the past: retry at once
        "Wed, 21 Oct 2015 07:28:00 -0000",  # RFC 5322's "UTC, local zone unknown"
        "soon",  # unparseable: plain backoff
        "-3",
    ],
)
def test_odd_retry_after_values_fall_back_to_backoff(make_client: Any, value: str) -> None:
    server = ScriptedServer(status(503, headers={"Retry-After": value}))
    client = make_client(server, max_retry_delay_seconds=0.6)

    log_records(client, 1)

    assert client.flush(timeout=5), "the sender must survive any Retry-After header"
    assert gap_before_second_request(server) < 0.5
    assert request_ids(server.delivered()) == ["req-0"]


def test_a_timed_out_flush_returns_false_and_delivery_goes_on(make_client: Any) -> None:
    server = ScriptedServer(status(503), status(503))
    client = make_client(server)
    server.gate.clear()  # the server stalls on the first request
    log_records(client, 2)

    assert client.flush(timeout=0.2) is False
    server.gate.set()

    assert client.flush(timeout=5)
    assert [r.status_code for r in server.requests] == [503, 503, 200]
    assert request_ids(server.delivered()) == ["req-0", "req-1"]


def test_after_a_timed_out_flush_the_client_batches_again(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, batch_size=10)
    server.gate.clear()
    log_records(client, 1)
    assert client.flush(timeout=0.2) is False
    server.gate.set()
    server.wait_for_requests(1)

    log_records(client, 1, start=1)
    time.sleep(0.2)

    # A single item is below the batch size and the interval is a minute: it must wait.
    assert len(server.requests) == 1
    assert client.stats.num_buffered == 1


def test_waiting_for_a_flush_does_not_burn_cpu(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, num_senders=2)
    server.gate.clear()
    log_records(client, 1)
    flusher = threading.Thread(target=client.flush, kwargs={"timeout": 5})
    flusher.start()
    server.wait_for_arrivals(1)

    cpu_before = time.process_time()
    time.sleep(0.5)
    cpu_seconds = time.process_time() - cpu_before
    server.gate.set()
    flusher.join()

    assert cpu_seconds < 0.2, "an idle sender must wait, not spin"


# --- refused items -------------------------------------------------------------------------------


def test_a_422_naming_items_drops_only_those_and_resends_the_rest(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    errors = [
        {"index": 1, "field": "latency_ms", "message": "must be >= 0"},
        {"index": 3, "field": "model", "message": "field required"},
    ]
    server = ScriptedServer(status(422, detail="2 invalid items", errors=errors))
    client = make_client(server)

    log_records(client, 5)
    with caplog.at_level(logging.ERROR, logger="observe.client"):
        assert client.flush(timeout=5)

    first, second = server.requests
    assert request_ids(first.items) == ["req-0", "req-1", "req-2", "req-3", "req-4"]
    assert request_ids(second.items) == ["req-0", "req-2", "req-4"]
    assert (client.stats.num_sent, client.stats.num_rejected) == (3, 2)
    assert client.stats.num_dropped == 0
    assert "2 invalid items" in caplog.text


def test_a_422_without_item_indices_rejects_the_whole_batch(make_client: Any) -> None:
    server = ScriptedServer(status(422, detail="the batch is empty"))
    client = make_client(server)

    log_records(client, 4)
    assert client.flush(timeout=5)

    assert len(server.requests) == 1
    assert client.stats.num_rejected == 4
    assert client.stats.num_sent == 0
    assert client.stats.last_error == "HTTP 422: the batch is empty"


def test_out_of_range_indices_in_a_422_do_not_drop_good_items(make_client: Any) -> None:
    errors = [{"index": 1, "message": "bad"}, {"index": 99, "message": "?"}, {"index": "x"}]
    server = ScriptedServer(status(422, detail="invalid", errors=errors))
    client = make_client(server)

    log_records(client, 3)
    assert client.flush(timeout=5)

    assert request_ids(server.delivered()) == ["req-0", "req-2"]
    assert client.stats.num_rejected == 1


def test_a_413_splits_the_batch_until_it_fits(make_client: Any) -> None:
    def at_most_two(items: list[dict[str, Any]]) -> httpx.Response:
        return ok(items) if len(items) <= 2 else status(413)(items)

    server = ScriptedServer(rule=at_most_two)
    client = make_client(server, batch_size=8)

    log_records(client, 8)
    assert client.flush(timeout=5)

    accepted = [r for r in server.requests if r.status_code == 200]
    assert all(len(r.items) <= 2 for r in accepted)
    assert request_ids(server.delivered()) == [f"req-{i}" for i in range(8)]
    assert client.stats.num_sent == 8
    assert client.stats.num_rejected == 0


def test_a_single_item_that_is_too_large_is_rejected_not_retried(make_client: Any) -> None:
    server = ScriptedServer(rule=status(413, detail="body exceeds the limit"))
    client = make_client(server, batch_size=4)

    log_records(client, 4)
    assert client.flush(timeout=5)

    # 4 -> 2 + 2 -> 1 + 1 + 1 + 1: seven requests, then every item is refused for good.
    assert len(server.requests) == 7
    assert client.stats.num_rejected == 4


@pytest.mark.parametrize("code", [400, 401, 403, 415])
def test_other_client_errors_are_not_retried(make_client: Any, code: int) -> None:
    server = ScriptedServer(status(code, detail="refused"))
    client = make_client(server)

    log_records(client, 2)
    assert client.flush(timeout=5)

    assert len(server.requests) == 1
    assert client.stats.num_rejected == 2
    assert client.stats.num_retries == 0


def test_an_item_that_cannot_be_serialised_is_rejected_and_the_rest_sent(
    make_client: Any,
) -> None:
    server = ScriptedServer()
    client = make_client(server)

    log_records(client, 1)
    client.log_prediction(
        model="m", model_version="v1", latency_ms=1.0, features={"x": Decimal("1.5")}
    )
    log_records(client, 1, start=2)

    assert client.flush(timeout=5), "the sender must survive an unserialisable item"
    assert request_ids(server.delivered()) == ["req-0", "req-2"]
    assert client.stats.num_rejected == 1
    assert client.stats.last_error is not None
    assert "Decimal" in client.stats.last_error


# --- the bounded buffer --------------------------------------------------------------------------


def test_a_full_buffer_drops_new_items_and_reports_them(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = ScriptedServer()
    server.gate.clear()
    drops: list[Drop] = []
    client = make_client(server, batch_size=5, max_buffer=5, on_drop=drops.append)

    log_records(client, 5)  # in flight, held until the server answers
    with caplog.at_level(logging.WARNING, logger="observe.client"):
        accepted = [
            client.log_prediction(model="m", model_version="v1", latency_ms=1.0) for _ in range(3)
        ]
    server.gate.set()
    assert client.flush(timeout=5)

    assert accepted == [False, False, False]
    assert client.stats.num_dropped == 3
    assert sum(drop.count for drop in drops) == 3
    assert {drop.kind for drop in drops} == {"records"}
    assert all("buffer full" in drop.reason for drop in drops)
    # One warning, not one per item: a full buffer must not flood the application's log.
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "dropped 1 records" in warning.getMessage()
    assert "buffer full" in warning.getMessage()
    assert request_ids(server.delivered()) == [f"req-{i}" for i in range(5)]
    # Once there is room again, items are accepted.
    assert client.log_prediction(model="m", model_version="v1", latency_ms=1.0)


def test_log_metrics_reports_a_partial_drop(make_client: Any) -> None:
    server = ScriptedServer()
    server.gate.clear()
    client = make_client(server, batch_size=2, max_buffer=3)

    first = client.log_metrics(host="h", resource="gpu0", values={"a": 1.0, "b": 2.0})
    second = client.log_metrics(host="h", resource="gpu0", values={"c": 1.0, "d": 2.0})
    server.gate.set()

    assert (first, second) == (True, False)
    assert client.stats.num_dropped == 1


def test_a_failing_on_drop_callback_does_not_stop_the_client(make_client: Any) -> None:
    def broken(_drop: Drop) -> None:
        raise RuntimeError("callback bug")

    server = ScriptedServer()
    server.gate.clear()
    client = make_client(server, batch_size=1, max_buffer=1, on_drop=broken)

    log_records(client, 1)
    assert client.log_prediction(model="m", model_version="v1", latency_ms=1.0) is False
    server.gate.set()

    assert client.flush(timeout=5)
    assert client.stats.num_dropped == 1


def test_close_while_the_server_is_down_drops_and_reports_everything_held(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = ScriptedServer(rule=status(503))
    drops: list[Drop] = []
    client = make_client(server, batch_size=2, max_retry_delay_seconds=5.0, on_drop=drops.append)

    log_records(client, 6)
    server.wait_for_requests(1)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="observe.client"):
        delivered = client.close(timeout=0.2)

    assert delivered is False
    assert time.monotonic() - started < 3.0, "close must not wait out a retry delay"
    assert client.stats.num_dropped == 6
    assert sum(drop.count for drop in drops) == 6
    reasons = {drop.reason for drop in drops}
    assert reasons == {"client closed while retrying", "client closed before delivery"}
    assert client.stats.num_buffered == 0
    assert "client closed while retrying" in caplog.text
    assert "client closed before delivery" in caplog.text
    assert "(6 in all)" in caplog.text


def test_logging_after_close_is_a_reported_drop(make_client: Any) -> None:
    drops: list[Drop] = []
    client = make_client(ScriptedServer(), on_drop=drops.append)
    assert client.close(timeout=1) is True

    assert client.log_prediction(model="m", model_version="v1", latency_ms=1.0) is False
    assert client.stats.num_dropped == 1
    assert drops == [Drop("records", 1, "client is closed")]


@pytest.mark.parametrize(
    "options",
    [{"batch_size": 0}, {"batch_size": 10, "max_buffer": 5}, {"num_senders": 0}],
)
def test_impossible_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Client(URL, **options)


# --- compression ---------------------------------------------------------------------------------


def big_record_batch(client: Client) -> None:
    log_records(client, 20, features={f"feature_{i}": i * 1.5 for i in range(20)})


@pytest.mark.parametrize(
    ("url", "compress", "expected"),
    [
        (URL, None, None),
        ("http://localhost:8080", None, None),
        ("http://[::1]:8080", None, None),
        (REMOTE_URL, None, "gzip"),
        ("http://10.0.0.7:8080", None, "gzip"),
        (URL, True, "gzip"),
        (REMOTE_URL, False, None),
    ],
)
def test_large_bodies_are_gzipped_unless_the_server_is_on_loopback(
    make_client: Any, url: str, compress: bool | None, expected: str | None
) -> None:
    server = ScriptedServer()
    client = make_client(server, url=url, compress=compress, batch_size=100)

    big_record_batch(client)
    assert client.flush(timeout=5)

    [request] = server.requests
    assert request.headers.get("content-encoding") == expected
    assert len(request.items) == 20
    if expected == "gzip":
        assert int(request.headers["content-length"]) < len(orjson.dumps(request.items))


def test_small_bodies_are_not_compressed(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, url=REMOTE_URL)

    log_records(client, 1)
    assert client.flush(timeout=5)

    assert "content-encoding" not in server.requests[0].headers


def test_requests_go_to_the_path_under_the_base_url(make_client: Any) -> None:
    server = ScriptedServer()
    client = make_client(server, url="https://observe.example.com/")

    log_records(client, 1)
    assert client.flush(timeout=5)

    assert server.requests[0].path == "/api/v1/records"


# --- against the real app ------------------------------------------------------------------------


def count_rows(db: Database, model: type[Any]) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_everything_logged_reaches_the_real_app_exactly_once(
    live_url: str, api_keys: dict[str, str], db: Database
) -> None:
    drops: list[Drop] = []
    with Client(
        live_url,
        api_keys["ingest"],
        batch_size=40,
        flush_interval_seconds=0.02,
        compress=True,  # large batches gzipped, small ones not: the server must take both
        on_drop=drops.append,
    ) as client:
        for i in range(200):
            client.log_prediction(
                model="fraud-scorer",
                model_version="v1" if i < 100 else "v2",
                latency_ms=10.0 + i % 17,
                features={"amount": i * 1.25, "country": "DE", "card_present": i % 2 == 0},
                prediction=0.01 * (i % 100),
                tags={"host": f"gpu-{i % 3}"},
                request_id=f"req-{i}",
                timestamp=T0 + dt.timedelta(seconds=i),
            )
        # The application logging the same prediction again: stored once.
        for i in range(10):
            client.log_prediction(
                model="fraud-scorer", model_version="v1", latency_ms=1.0, request_id=f"req-{i}"
            )
        for i in range(0, 200, 4):
            client.log_label(model="fraud-scorer", request_id=f"req-{i}", label=i % 8 == 0)
        client.log_event(model="fraud-scorer", kind="deploy", model_version="v2", timestamp=T0)
        for minute in range(30):
            client.log_metrics(
                host="gpu-1",
                resource="gpu0",
                values={"gpu_utilization_pct": 50.0 + minute, "gpu_temperature_c": 60.0},
                timestamp=T0 + dt.timedelta(minutes=minute),
            )
        assert client.flush(timeout=30)
        stats = client.stats

    assert drops == []
    assert (stats.num_dropped, stats.num_rejected) == (0, 0)
    assert stats.num_sent == 200 + 10 + 50 + 1 + 60
    assert stats.num_duplicates == 10
    with db.sessions() as session:
        stored = session.execute(
            select(InferenceRecord.request_id, InferenceRecord.latency_ms, InferenceRecord.tags)
        ).all()
        labels = dict(session.execute(select(Label.request_id, Label.label)).all())
        first = session.scalars(
            select(InferenceRecord).where(InferenceRecord.request_id == "req-3")
        ).one()
    assert sorted(row.request_id for row in stored) == sorted(f"req-{i}" for i in range(200))
    # The repeats were duplicates: the first version of each record is the one kept.
    assert {row.latency_ms for row in stored if row.request_id == "req-5"} == {15.0}
    assert first.timestamp == T0 + dt.timedelta(seconds=3)
    assert first.features == {"amount": 3.75, "country": "DE", "card_present": False}
    assert first.tags == {"host": "gpu-0"}
    assert labels == {f"req-{i}": i % 8 == 0 for i in range(0, 200, 4)}
    assert count_rows(db, Event) == 1
    assert count_rows(db, MetricSample) == 60
