"""UI page loads at 1M and 10M records, against the 2-second goal, in one run.

For each database size the script loads records through observe's own write path (the same
ingest, COPY and rollups as live traffic; three models with two versions each and four hosts,
over 7 days) plus a week of per-minute GPU metrics from 4 hosts with 2 GPUs each, starts a
real `observe serve` on it, logs in, and measures every page over a 7-day window:

- server: the time of the page's data callback, POSTed as the browser's Dash renderer does
  (median of several calls after one warm-up);
- browser: headless Chromium from navigation to the page's chart drawn and no callback
  running (median of several loads, after one that fills the browser cache);
- peer: the same numbers computed without the rollups and bucketed aggregates, from the raw
  rows (`load_raw_latencies` + the pipeline's own percentile code for the latency pages,
  `load_metric_samples` for the infra page), in process: what a dashboard that reads raw
  records would pay before drawing anything.

Usage:
    .venv/bin/python benchmarks/ui.py                       # 1M and 10M on Postgres
    .venv/bin/python benchmarks/ui.py --sizes 100000 --repeats 3

Postgres comes from --admin-url (default postgresql://postgres@127.0.0.1:5432/postgres); the
script creates and drops its own databases named observe_bench_ui_*. Chromium and
chromedriver are Debian's (/usr/bin/chromium, /usr/bin/chromedriver).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from observe.auth import Scope  # noqa: E402
from observe.db import migrate  # noqa: E402
from observe.db.engine import Database, create_database  # noqa: E402
from observe.pipeline import latency as latency_pipeline  # noqa: E402
from observe.pipeline.keys import create_key  # noqa: E402
from observe.pipeline.writer import BatchKind, ImmediateWriter  # noqa: E402
from observe.schemas.records import InferenceRecordIn, MetricSampleIn  # noqa: E402
from observe.storage import rollups as rollup_store  # noqa: E402
from observe.storage import signals as signal_store  # noqa: E402
from tests.integration.dashboards import browser  # noqa: E402
from tests.integration.dashboards.helpers import callback_body, find_callback  # noqa: E402

GOAL_SECONDS = 2.0
DAYS = 7
MODELS = ("checkout-fraud", "feed-ranker", "churn-model")
VERSIONS = ("v1", "v2")
HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
GPUS_PER_HOST = 2
GPU_METRICS = (
    "gpu_utilization_pct",
    "gpu_memory_used_mb",
    "gpu_temperature_c",
    "gpu_power_w",
    "gpu_sm_clock_mhz",
)
LOAD_BATCH = 20_000
RAW_REPEATS = 2  # reading raw rows is slow; two runs give a stable enough median
WINDOW = ("-7d", "")


@dataclass(frozen=True)
class Page:
    """A page, its URL and its data callback (the output it names and the input values)."""

    name: str
    path: str
    output: str
    values: list[Any]
    status_css: str
    chart_css: str


PAGES = (
    Page(
        "overview",
        "/ui/?start=-7d",
        "overview-status",
        [*WINDOW],
        "#overview-status",
        "#overview-slo-chart .main-svg",
    ),
    Page(
        "latency by version",
        f"/ui/latency?model={MODELS[0]}&start=-7d",
        "latency-status",
        [MODELS[0], *WINDOW, "model_version", "95"],
        "#latency-status",
        "#latency-chart .main-svg",
    ),
    Page(
        "latency by host",
        f"/ui/latency?model={MODELS[0]}&start=-7d&by=host&percentile=99",
        "latency-status",
        [MODELS[0], *WINDOW, "host", "99"],
        "#latency-status",
        "#latency-chart .main-svg",
    ),
    Page(
        "infra",
        "/ui/infra?start=-7d",
        "infra-status",
        [*WINDOW, []],
        "#infra-status",
        "#infra-charts .main-svg",
    ),
)


@dataclass
class Row:
    records: str
    page: str
    server_ms: float
    browser_ms: float
    raw_ms: float

    @property
    def verdict(self) -> str:
        worst = max(self.server_ms, self.browser_ms) / 1000
        return "meets" if worst < GOAL_SECONDS else "MISSES"


# --- data --------------------------------------------------------------------------------------


def load_records(db: Database, size: int, *, end: float, seed: int) -> float:
    """`size` records over the 7 days before `end` through the write path; returns records/s."""
    rng = np.random.default_rng(seed)
    epoch = np.sort(end - DAYS * 86400 + rng.uniform(0, DAYS * 86400, size))
    model = rng.integers(0, len(MODELS), size)
    version = (epoch > end - DAYS * 86400 / 3).astype(np.int64)
    host = rng.integers(0, len(HOSTS), size)
    latency = np.round(rng.gamma(6.0, 4.5, size) * np.where(version == 1, 1.4, 1.0) + 3.0, 3)
    is_error = rng.uniform(size=size) < 0.003
    writer = ImmediateWriter(db.write_sessions, rollup_tags=("host",))
    started = time.perf_counter()
    for offset in range(0, size, LOAD_BATCH):
        batch = [
            InferenceRecordIn.model_construct(
                model=MODELS[model[i]],
                model_version=VERSIONS[version[i]],
                timestamp=dt.datetime.fromtimestamp(epoch[i], dt.UTC),
                request_id=f"r{i}",
                latency_ms=float(latency[i]),
                status="error" if is_error[i] else "ok",
                error=None,
                features=None,
                prediction=None,
                label=None,
                tags={"host": HOSTS[host[i]]},
                input_size=None,
                trace_id=None,
            )
            for i in range(offset, min(offset + LOAD_BATCH, size))
        ]
        writer.submit(BatchKind.RECORDS, batch).result()
    return size / (time.perf_counter() - started)


def load_metrics(db: Database, *, end: float, seed: int) -> int:
    """A sample per minute for every GPU metric of every GPU over the 7 days."""
    rng = np.random.default_rng(seed)
    minutes = end - DAYS * 86400 + 60 * np.arange(DAYS * 1440)
    writer = ImmediateWriter(db.write_sessions, rollup_tags=())
    total = 0
    for host in HOSTS:
        for gpu in range(GPUS_PER_HOST):
            for name in GPU_METRICS:
                values = rng.uniform(10, 90, minutes.size)
                samples = [
                    MetricSampleIn.model_construct(
                        timestamp=dt.datetime.fromtimestamp(t, dt.UTC),
                        host=host,
                        resource=f"gpu{gpu}",
                        name=name,
                        value=float(v),
                        tags=None,
                    )
                    for t, v in zip(minutes, values, strict=True)
                ]
                for offset in range(0, len(samples), LOAD_BATCH):
                    writer.submit(BatchKind.METRICS, samples[offset : offset + LOAD_BATCH]).result()
                total += len(samples)
    return total


class Postgres:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.created: list[str] = []

    def fresh(self, name: str) -> str:
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self._dsn(name)

    def drop_all(self) -> None:
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _dsn(self, database: str) -> str:
        url = self.admin_url.set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)


# --- measurements ------------------------------------------------------------------------------


def median_seconds(run: Callable[[], object], repeats: int, *, warm: bool = True) -> float:
    if warm:
        run()  # warm caches, as a dashboard that is looked at again would be
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def server_seconds(client: httpx.Client, page: Page, repeats: int) -> float:
    dependencies = client.get("/ui/_dash-dependencies").json()
    body = callback_body(find_callback(dependencies, page.output), page.values)

    def run() -> None:
        response = client.post("/ui/_dash-update-component", json=body)
        response.raise_for_status()

    return median_seconds(run, repeats)


def browser_seconds(driver: Any, url: str, page: Page, repeats: int) -> float:
    def run() -> None:
        driver.get(url + page.path)
        browser.wait_for(driver, lambda d: _drawn(d, page), timeout_seconds=120)

    return median_seconds(run, repeats)


def _drawn(driver: Any, page: Page) -> bool:
    """The data callback has answered (the status line is set) and the chart is drawn."""
    return bool(
        browser.text_of(driver, page.status_css).strip()
        and driver.find_elements("css selector", page.chart_css)
        and browser.is_idle(driver)
    )


def raw_seconds(db: Database, page: Page, repeats: int) -> float:
    """The page's numbers from raw rows instead of rollups and bucketed aggregates."""
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=DAYS)
    models = MODELS if page.name == "overview" else MODELS[:1]
    by_host = page.name == "latency by host"

    def latency_from_records() -> None:
        with db.sessions() as session:
            for model in models:
                raw = rollup_store.load_raw_latencies(
                    session, model=model, start=start, end=end, tag_key="host" if by_host else None
                )
                series = raw["dim_value"] if by_host else raw["model_version"]
                bucket = 86400 * DAYS if page.name == "overview" else 1800
                latency_pipeline.summarize_raw(
                    raw, series.astype(str), start, bucket, 86400 * DAYS // bucket + 1, [0.5, 0.95]
                )

    def metrics_from_samples() -> None:
        with db.sessions() as session:
            signal_store.load_metric_samples(session, start=start, end=end)

    run = metrics_from_samples if page.name == "infra" else latency_from_records
    return median_seconds(run, min(repeats, RAW_REPEATS), warm=False)


def measure_size(pg: Postgres, size: int, work: Path, repeats: int, rows: list[Row]) -> None:
    label = f"{size / 1e6:g}M"
    url = pg.fresh(f"observe_bench_ui_{size}")
    db = create_database(url)
    migrate.upgrade(db.engine)
    end = time.time() // 60 * 60
    rate = load_records(db, size, end=end, seed=size)
    num_samples = load_metrics(db, end=end, seed=1)
    key, _ = create_key(db.write_sessions, name="benchmark", scopes=[Scope.READ])
    with psycopg.connect(url, autocommit=True) as connection:
        # What autovacuum does within a minute of a bulk load, done now so that plans are the
        # steady state's.
        connection.execute("VACUUM ANALYZE")
    print(
        f"  loaded {size:,} records at {rate:,.0f}/s and {num_samples:,} metric samples", flush=True
    )
    data_dir = work / label
    data_dir.mkdir()
    with (
        browser.observe_server(url, data_dir) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
        browser.chromium() as driver,
    ):
        if client.post("/ui/login", data={"api_key": key}).status_code != 303:
            raise RuntimeError("the benchmark key was refused at /ui/login")
        driver.get(f"{server.url}/ui/login")
        driver.find_element("id", "login-key").send_keys(key)
        driver.find_element("id", "login-submit").click()
        browser.wait_for(driver, lambda d: d.get_cookie("observe_session"))
        for page in PAGES:
            row = Row(
                label,
                page.name,
                server_seconds(client, page, repeats) * 1000,
                browser_seconds(driver, server.url, page, repeats) * 1000,
                raw_seconds(db, page, repeats) * 1000,
            )
            print(
                f"  {page.name}: server {row.server_ms:,.0f} ms, browser {row.browser_ms:,.0f} ms",
                flush=True,
            )
            rows.append(row)
    db.engine.dispose()


def print_table(rows: list[Row]) -> None:
    headers = (
        "records",
        "page (7-day window)",
        "server callback",
        "browser to chart",
        "same numbers from raw rows",
        f"goal < {GOAL_SECONDS:g} s",
    )
    table = [headers] + [
        (
            r.records,
            r.page,
            f"{r.server_ms:,.0f} ms",
            f"{r.browser_ms:,.0f} ms",
            f"{r.raw_ms:,.0f} ms ({r.raw_ms / r.server_ms:,.0f}x)",
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for n, line in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated record counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    args = parser.parse_args()
    reason = browser.missing_browser()
    if reason:
        sys.exit(reason)

    pg = Postgres(args.admin_url)
    work = Path(tempfile.mkdtemp(prefix="observe-bench-ui-"))
    rows: list[Row] = []
    print(f"machine: {os.cpu_count()} CPUs; Postgres at {pg.admin_url.host}:{pg.admin_url.port}")
    try:
        for size in (int(s) for s in args.sizes.split(",") if s):
            print(f"{size:,} records", flush=True)
            measure_size(pg, size, work, args.repeats, rows)
    finally:
        pg.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
