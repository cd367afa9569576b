"""A process kill mid-stream loses and duplicates nothing (DESIGN 7).

The real server (`observe serve`, one uvicorn process) runs as a subprocess on a loopback port.
The SDK streams records to it; the server is SIGKILLed while batches are in flight and records
are still being logged, then restarted on the same port and database. The SDK's HTTP traffic is
observed from the outside by a transport that notes, for every request, the request_ids in its
body and the status the SDK got back. Afterwards every acknowledged record must be stored
exactly once, every logged record must have arrived, and the latency rollups must count exactly
the stored records (a kill between writing records and their rollups would show here).
"""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from observe.auth import Scope
from observe.client import Client, ClientStats
from observe.db.engine import Database
from observe.pipeline.keys import create_key
from tests.conftest import database_url

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "reliability-scorer"
HOSTS = ("gpu-1", "gpu-2", "gpu-3")
BATCH_SIZE = 100
ACKS_BEFORE_KILL = 8
NUM_LOGGED_WHILE_DOWN = 1_000
NUM_LOGGED_AFTER_RESTART = 500
CHUNK_SIZE = 25
CHUNK_PAUSE_SECONDS = 0.004
START_TIMEOUT_SECONDS = 30.0
STREAM_TIMEOUT_SECONDS = 30.0
FLUSH_TIMEOUT_SECONDS = 30.0
ALLOWED_REFUSALS = {429, 503}


# --- observing the SDK's traffic ---------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One HTTP request the SDK made: the request_ids it carried and what came back."""

    request_ids: tuple[str, ...]
    status: int | None  # None: no response (connection refused, reset, timeout)
    error: str = ""
    num_new: int = 0
    num_duplicates: int = 0

    @property
    def is_acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class RecordingTransport(httpx.BaseTransport):
    """Forwards to a real `httpx.HTTPTransport` and notes every exchange.

    The response body is read here, so an exchange counts as acknowledged only when the SDK
    receives the whole 2xx response, exactly as it does itself.
    """

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._request_sent = threading.Condition(self._lock)
        self._exchanges: list[Exchange] = []
        self._num_in_flight = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request_ids = _request_ids(request)
        with self._request_sent:
            self._num_in_flight += 1
            self._request_sent.notify_all()
        try:
            response = self._inner.handle_request(request)
            body = response.read()
        except httpx.TransportError as error:
            self._note(Exchange(request_ids, None, f"{type(error).__name__}: {error}"))
            raise
        finally:
            with self._lock:
                self._num_in_flight -= 1
        counts = _counts(body) if response.is_success else {}
        self._note(
            Exchange(
                request_ids,
                response.status_code,
                "" if response.is_success else body[:300].decode(errors="replace"),
                int(counts.get("new", 0)),
                int(counts.get("duplicates", 0)),
            )
        )
        return response

    def close(self) -> None:
        self._inner.close()

    def _note(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def acknowledged_ids(self) -> set[str]:
        return {rid for e in self.exchanges() if e.is_acknowledged for rid in e.request_ids}

    def num_acknowledged(self) -> int:
        return sum(e.is_acknowledged for e in self.exchanges())

    def num_in_flight(self) -> int:
        """Requests sent whose answer has not arrived yet."""
        with self._lock:
            return self._num_in_flight

    def wait_for_request_in_flight(self, timeout_seconds: float) -> bool:
        with self._request_sent:
            return self._request_sent.wait_for(lambda: self._num_in_flight > 0, timeout_seconds)


def _request_ids(request: httpx.Request) -> tuple[str, ...]:
    body = request.content
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return tuple(str(item["request_id"]) for item in orjson.loads(body))


def _counts(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# --- the server subprocess ---------------------------------------------------------------------


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """`observe serve` as a subprocess, its output going to a log file per start."""

    port: int
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log_paths: list[Path] = field(default_factory=list)
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self._close_log()
        path = self.log_dir / f"server-{len(self.log_paths) + 1}.log"
        self.log_paths.append(path)
        self._log = path.open("wb")
        command = [sys.executable, "-c", "from observe.cli import main; main()"]
        self.process = subprocess.Popen(
            [*command, "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.log_dir,  # no stray .env file is read
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_until_healthy()

    def wait_until_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"the server exited with {code} while starting:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"not healthy within {START_TIMEOUT_SECONDS:g} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no draining of the write queue."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self) -> str:
        if self._log is not None:
            self._log.flush()
        parts = [
            f"--- {path.name} ---\n{path.read_text(errors='replace')}" for path in self.log_paths
        ]
        return "\n".join(parts)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.kill()
        self._close_log()


@contextmanager
def observe_server(db: Database, tmp_path: Path) -> Iterator[ServerProcess]:
    """A started server; always killed at the end, its output printed (shown on failure)."""
    env = {
        **os.environ,
        "OBSERVE_DATABASE_URL": database_url(db),
        "OBSERVE_WORKERS": "1",  # one process, so SIGKILL takes down the whole server
        "OBSERVE_HOST": "127.0.0.1",
        "OBSERVE_DATA_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    server = ServerProcess(free_loopback_port(), env, tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.close()
        print(server.output())


# --- the test ----------------------------------------------------------------------------------


class RecordLog:
    """Logs records with unique request_ids through the SDK and remembers them."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.request_ids: list[str] = []

    def log(self, count: int) -> None:
        for _ in range(count):
            number = len(self.request_ids)
            request_id = f"rel-{number:06d}"
            accepted = self._client.log_prediction(
                model=MODEL,
                model_version="v1",
                latency_ms=5.0 + number % 97,
                features={"amount": float(number % 50)},
                prediction=0.5,
                tags={"host": HOSTS[number % len(HOSTS)]},
                request_id=request_id,
            )
            assert accepted, f"the SDK dropped {request_id}"
            self.request_ids.append(request_id)

    def log_paced(self, count: int) -> None:
        """Log `count` records in small chunks, so sending overlaps logging."""
        for start in range(0, count, CHUNK_SIZE):
            self.log(min(CHUNK_SIZE, count - start))
            time.sleep(CHUNK_PAUSE_SECONDS)

    def log_until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STREAM_TIMEOUT_SECONDS
        while not done():
            assert time.monotonic() < deadline, (
                f"still waiting after {len(self.request_ids)} records"
            )
            self.log_paced(CHUNK_SIZE)


def stored_counts(db: Database) -> dict[str, int]:
    """How often each request_id of MODEL is stored."""
    query = text(
        "SELECT request_id, COUNT(*) FROM inference_records WHERE model = :model "
        "GROUP BY request_id"
    )
    with db.engine.connect() as connection:
        return {str(rid): int(n) for rid, n in connection.execute(query, {"model": MODEL})}


def record_totals(db: Database) -> tuple[int, int]:
    query = text(
        "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM inference_records WHERE model = :model"
    )
    with db.engine.connect() as connection:
        total, distinct = connection.execute(query, {"model": MODEL}).one()
    return int(total), int(distinct)


def rollup_requests(db: Database, dim_key: str) -> int:
    query = text(
        "SELECT COALESCE(SUM(num_requests), 0) FROM latency_rollups "
        "WHERE model = :model AND dim_key = :dim_key"
    )
    with db.engine.connect() as connection:
        return int(connection.execute(query, {"model": MODEL, "dim_key": dim_key}).scalar_one())


@dataclass(frozen=True)
class KillRun:
    """What the SDK was given and what it saw, around one server kill."""

    logged: list[str]
    acknowledged_by_killed_server: set[str]
    num_in_flight_at_kill: int
    delivered: bool
    closed_cleanly: bool
    stats: ClientStats
    exchanges: list[Exchange]

    def describe(self) -> str:
        failures = Counter(e.error.split(":")[0] for e in self.exchanges if e.status is None)
        return (
            f"logged {len(self.logged)}, {len(self.acknowledged_by_killed_server)} acknowledged "
            f"by the killed server, {self.num_in_flight_at_kill} requests in flight at the kill; "
            f"{len(self.exchanges)} requests, failed: {dict(failures)}; {self.stats}"
        )


def stream_through_kill(server: ServerProcess, api_key: str) -> KillRun:
    """Stream records, SIGKILL the server mid-stream, keep logging, restart, flush."""
    transport = RecordingTransport()
    client = Client(
        server.url,
        api_key=api_key,
        batch_size=BATCH_SIZE,
        flush_interval_seconds=0.05,
        timeout_seconds=5.0,
        compress=True,
        max_retry_delay_seconds=0.5,
        num_senders=2,
        transport=transport,
    )
    records = RecordLog(client)
    try:
        # Kill while a batch is on its way: sent, perhaps being written, not yet answered.
        records.log_until(lambda: transport.num_acknowledged() >= ACKS_BEFORE_KILL)
        records.log_until(lambda: transport.wait_for_request_in_flight(CHUNK_PAUSE_SECONDS))
        num_in_flight_at_kill = transport.num_in_flight()
        server.kill()
        records.log_paced(NUM_LOGGED_WHILE_DOWN)
        time.sleep(0.5)  # let the senders find the server gone and retry
        # Taken while no server runs, so every acknowledgement so far came from the killed one.
        acknowledged_by_killed_server = transport.acknowledged_ids()
        server.start()
        records.log_paced(NUM_LOGGED_AFTER_RESTART)
        delivered = client.flush(timeout=FLUSH_TIMEOUT_SECONDS)
    finally:
        closed_cleanly = client.close(timeout=5.0)
    return KillRun(
        logged=records.request_ids,
        acknowledged_by_killed_server=acknowledged_by_killed_server,
        num_in_flight_at_kill=num_in_flight_at_kill,
        delivered=delivered,
        closed_cleanly=closed_cleanly,
        stats=client.stats,
        exchanges=transport.exchanges(),
    )


def assert_stored_exactly_once(db: Database, run: KillRun) -> None:
    logged = set(run.logged)
    assert len(logged) == len(run.logged), "request_ids must be unique"
    stored = stored_counts(db)
    lost = sorted(run.acknowledged_by_killed_server - stored.keys())
    assert not lost, f"{len(lost)} records acknowledged before the kill are not stored: {lost[:10]}"
    acknowledged = {rid for e in run.exchanges if e.is_acknowledged for rid in e.request_ids}
    lost = sorted(acknowledged - stored.keys())
    assert not lost, f"{len(lost)} acknowledged records are not stored: {lost[:10]}"
    duplicated = {rid: n for rid, n in stored.items() if n != 1}
    assert not duplicated, f"stored more than once: {dict(list(duplicated.items())[:10])}"
    missing = sorted(logged - stored.keys())
    assert not missing, f"{len(missing)} logged records never arrived: {missing[:10]}"
    assert stored.keys() == logged
    assert record_totals(db) == (len(logged), len(logged))


def assert_delivered_by_retrying(run: KillRun) -> None:
    assert run.delivered, "the SDK did not deliver everything after the restart"
    assert run.closed_cleanly
    assert run.stats.num_retries > 0, "the kill went unnoticed: no request was retried"
    assert (run.stats.num_dropped, run.stats.num_rejected, run.stats.num_buffered) == (0, 0, 0)
    assert run.stats.num_sent == len(run.logged)
    # Each record was answered once as new, or as a duplicate when the server had committed its
    # batch but the kill swallowed the answer.
    num_new = sum(e.num_new for e in run.exchanges if e.is_acknowledged)
    assert num_new + run.stats.num_duplicates == len(run.logged)
    # Overload may be answered with 429/503 (and retried); nothing else is acceptable.
    unexpected = [
        (e.status, e.error)
        for e in run.exchanges
        if e.status is not None and not e.is_acknowledged and e.status not in ALLOWED_REFUSALS
    ]
    assert not unexpected, f"answers other than 2xx, 429 or 503: {unexpected[:5]}"


@pytest.mark.slow
def test_sigkill_mid_stream_loses_and_duplicates_nothing(db: Database, tmp_path: Path) -> None:
    api_key, _ = create_key(db.write_sessions, name="reliability test", scopes=[Scope.INGEST])
    with observe_server(db, tmp_path) as server:
        run = stream_through_kill(server, api_key)
        print(run.describe())

    assert 0 < len(run.acknowledged_by_killed_server) < len(run.logged)
    assert_stored_exactly_once(db, run)
    assert_delivered_by_retrying(run)
    # Rollups are written in the records' transaction: a kill never leaves them out of step.
    num_stored = len(run.logged)
    assert rollup_requests(db, "") == num_stored, "overall latency rollups out of step"
    assert rollup_requests(db, "host") == num_stored, "per-host latency rollups out of step"
