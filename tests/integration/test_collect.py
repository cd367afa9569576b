"""`observe collect gpu|prometheus`: readings reach the server, also across a server that is
down when collection starts and comes up later, and a stop (SIGTERM) flushes what is held."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from collectors.host import HostCollector
from collectors.nvml import NvmlCollector
from observe.auth import Scope
from observe.cli import app
from observe.client import Client
from observe.db.engine import Database
from observe.db.models import MetricSample
from observe.pipeline.keys import create_key
from observe.pipeline.polling import client_sink, poll_until_stopped
from tests.conftest import database_url
from tests.doubles import FakeGpu, FakeNvml, FakePsutil
from tests.integration.test_reliability import REPO_ROOT, ServerProcess, free_loopback_port

EXPORTS = Path(__file__).parents[1] / "data" / "prometheus"
SAMPLES_PER_DCGM_SCRAPE = 48
WAIT_SECONDS = 30.0


class Exporter:
    """The recorded exporter scrapes, served over HTTP on loopback."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.num_scrapes = 0


@contextmanager
def exporter() -> Iterator[Exporter]:
    served = Exporter("")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.num_scrapes += 1
            super().do_GET()

        def log_message(self, *_args: Any) -> None:
            return None

    handler = functools.partial(Handler, directory=str(EXPORTS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def server_process(db: Database, tmp_path: Path) -> ServerProcess:
    """`observe serve` on `db` at a free loopback port, not started yet."""
    env = {
        **os.environ,
        "OBSERVE_DATABASE_URL": database_url(db),
        "OBSERVE_WORKERS": "1",
        "OBSERVE_HOST": "127.0.0.1",
        "OBSERVE_DATA_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    return ServerProcess(free_loopback_port(), env, tmp_path)


def stored_samples(db: Database, **filters: Any) -> int:
    with db.sessions() as session:
        query = select(func.count()).select_from(MetricSample).filter_by(**filters)
        return session.scalar(query) or 0


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- the commands ---------------------------------------------------------------------------


def test_prometheus_once_dry_run_prints_the_mapped_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    with exporter() as served:
        result = CliRunner().invoke(
            app,
            [
                "collect",
                "prometheus",
                "--url",
                f"{served.url}/dcgm-exporter.txt",
                "--once",
                "--dry-run",
            ],
        )

    assert result.exit_code == 0, result.output
    samples = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(samples) == SAMPLES_PER_DCGM_SCRAPE
    utilization = {s["resource"]: s["value"] for s in samples if s["name"] == "gpu_utilization_pct"}
    assert utilization == {"gpu0": 87.0, "gpu1": 0.0}
    assert {s["host"] for s in samples} == {"gpu-node-3"}


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--url", "ftp://exporter/metrics"], 2, "is not an http:// or https:// URL"),
        (["--url", "http://127.0.0.1:9/metrics", "--interval", "0s"], 2, "--interval: '0s'"),
        (["--url", "http://127.0.0.1:9/metrics", "--timeout", "soon"], 2, "--timeout: 'soon'"),
        (["--url", "http://127.0.0.1:9/metrics", "--once"], 1, "cannot scrape"),
        (
            ["--url", "http://127.0.0.1:9/metrics", "--server-url", "observe:8080"],
            2,
            "--server-url: 'observe:8080' is not an http:// or https:// URL",
        ),
    ],
)
def test_prometheus_refuses_bad_options_and_reports_an_exporter_that_does_not_answer(
    arguments: list[str], code: int, message: str
) -> None:
    result = CliRunner().invoke(app, ["collect", "prometheus", *arguments])

    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_gpu_reads_nvml_or_says_why_not() -> None:
    result = CliRunner().invoke(app, ["collect", "gpu", "--once", "--dry-run"])

    if result.exit_code == 0:  # a machine with NVIDIA's driver
        names = {orjson.loads(line)["name"] for line in result.stdout.splitlines()}
        assert {"gpu_utilization_pct", "memory_used_mb"} <= names
    else:
        assert result.exit_code == 1
        assert "NVML cannot be initialised" in result.output
        assert "Traceback" not in result.output


def test_prometheus_once_delivers_to_a_server(db: Database, tmp_path: Path) -> None:
    key, _ = create_key(db.write_sessions, name="collector", scopes=[Scope.INGEST])
    server = server_process(db, tmp_path)
    try:
        server.start()
        with exporter() as served:
            result = CliRunner().invoke(
                app,
                ["collect", "prometheus", "--url", f"{served.url}/node-exporter-2.txt", "--once"],
                env={"OBSERVE_URL": server.url, "OBSERVE_API_KEY": key},
            )
    finally:
        server.close()

    assert result.exit_code == 0, result.output + server.output()
    assert "0 dropped" in result.output
    assert stored_samples(db, name="memory_used_mb", resource="memory", value=25600.0) == 1


# --- a server that is down, then up ---------------------------------------------------------


@pytest.mark.slow
def test_gpu_readings_taken_while_the_server_is_down_arrive_once_it_is_up(
    db: Database, tmp_path: Path
) -> None:
    key, _ = create_key(db.write_sessions, name="collector", scopes=[Scope.INGEST])
    server = server_process(db, tmp_path)
    nvml = FakeNvml([FakeGpu(), FakeGpu(uuid="GPU-2", bus_id=b"00000000:2A:00.0")])
    gpus = NvmlCollector(host="gpu-node-3", fetch=lambda: nvml)
    host = HostCollector(host="gpu-node-3", fetch=FakePsutil)
    gpus.open()
    host.open()
    client = Client(
        server.url, api_key=key, flush_interval_seconds=0.05, max_retry_delay_seconds=0.3
    )
    stop = threading.Event()
    results: dict[str, Any] = {}

    def collect() -> None:
        results["stats"] = poll_until_stopped(
            [gpus, host], client_sink(client), interval_seconds=0.05, stop=stop
        )

    loop = threading.Thread(target=collect)
    loop.start()
    try:
        wait_until(lambda: nvml.num_reads >= 10, "readings while the server is down")
        assert client.stats.num_retries > 0
        assert client.stats.num_sent == 0
        server.start()
        wait_until(lambda: client.stats.num_sent > 0, "delivery after the server came up")
        stop.set()
        loop.join(10)
        delivered = client.close(timeout=WAIT_SECONDS)
    finally:
        stop.set()
        server.close()

    stats = results["stats"]
    assert delivered, client.stats
    assert (client.stats.num_dropped, client.stats.num_rejected) == (0, 0)
    assert stored_samples(db) == stats.num_samples == client.stats.num_sent
    # 12 GPU samples per GPU per poll plus the host's memory (and CPU after the first poll)
    assert stored_samples(db, name="gpu_utilization_pct") == 2 * stats.num_polls
    assert stored_samples(db, name="memory_used_mb", host="gpu-node-3") == stats.num_polls


@pytest.mark.slow
def test_the_command_survives_the_server_being_down_and_flushes_on_sigterm(
    db: Database, tmp_path: Path
) -> None:
    key, _ = create_key(db.write_sessions, name="collector", scopes=[Scope.INGEST])
    server = server_process(db, tmp_path)
    log = tmp_path / "collector.log"
    with exporter() as served, log.open("wb") as output:
        command = [sys.executable, "-c", "from observe.cli import main; main()", "collect"]
        options = ["prometheus", "--url", f"{served.url}/dcgm-exporter.txt", "--interval", "200ms"]
        collector = subprocess.Popen(
            [*command, *options, "--server-url", server.url, "--api-key", key],
            env={**server.env, "OBSERVE_URL": "http://unused:1"},
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            # several scrapes while nothing listens at the server's port
            wait_until(lambda: served.num_scrapes >= 4 or collector.poll() is not None, "scrapes")
            assert collector.poll() is None, log.read_text()
            started_at = dt.datetime.now(dt.UTC)
            server.start()
            wait_until(lambda: stored_samples(db) > 0, "samples after the server came up")
            time.sleep(0.5)
            collector.send_signal(signal.SIGTERM)
            code = collector.wait(WAIT_SECONDS)
        finally:
            if collector.poll() is None:
                collector.kill()
            server.close()

    text = log.read_text()
    assert code == 0, text
    summary = re.search(
        r"(\d+) polls \(0 failed\), (\d+) samples: (\d+) delivered, 0 dropped", text
    )
    assert summary, text
    num_polls, num_samples, num_delivered = map(int, summary.groups())
    assert num_samples == num_delivered == num_polls * SAMPLES_PER_DCGM_SCRAPE
    assert stored_samples(db) == num_samples
    with db.sessions() as session:
        first = session.scalar(select(func.min(MetricSample.timestamp)))
    assert first is not None
    assert first < started_at, "no reading from while the server was down"


def test_a_full_buffer_drops_and_says_so(tmp_path: Path) -> None:
    with exporter() as served:
        result = CliRunner().invoke(
            app,
            [
                "collect",
                "prometheus",
                "--url",
                f"{served.url}/dcgm-exporter.txt",
                "--once",
                "--max-buffer",
                "10",
                "--flush-timeout",
                "500ms",
                "--server-url",
                f"http://127.0.0.1:{free_loopback_port()}",
            ],
        )

    assert result.exit_code == 1, result.output
    assert "48 samples: 0 delivered, 48 dropped" in result.output
