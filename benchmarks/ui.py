"""UI page loads at 1M and 10M records, against the 2-second goal, in one run.

For each database size the script loads records through observe's own write path (the same
ingest, COPY and rollups as live traffic; three models with two versions each and four hosts,
over 7 days, with three features; one request in 100 of the first model traced with three
spans) plus a week of per-minute GPU metrics from 4 hosts with 2 GPUs each; folds the records
into feature profiles as the profiling job does; stores a latency regression at the v2 deploy,
a 20,000-row training reference and a profiler trace of each version; starts a real
`observe serve` on it, logs in, and measures every page:

- server: the time of the page's data callback, POSTed as the browser's Dash renderer does
  (median of several calls after one warm-up);
- browser: headless Chromium from navigation to every chart of the page drawn and no callback
  running (median of several loads, after one that fills the browser cache);
- peer: the same numbers computed from raw rows, in process: what a dashboard without
  rollups, profiles and summaries would pay before drawing anything. Latency pages:
  `load_raw_latencies` and the pipeline's own percentile code; infra: `load_metric_samples`;
  triage: p50/p95/p99 of both periods per version and per host from raw latencies; drift: the
  window's raw features against the reference's rows; traces: the raw spans (SQL, then
  pandas); profiler: both stored raw traces summarized again and diffed. The skew page reads
  raw rows by design (the window's newest 50,000), so it has no peer.

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
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzers.drift import detect_drift  # noqa: E402
from analyzers.profiles import diff_operators  # noqa: E402
from benchmarks._common import (  # noqa: E402
    Postgres,
    median_seconds,
    print_table,
    upgraded_database,
)
from collectors.profiler import open_trace, summarize_trace  # noqa: E402
from observe.auth import Scope  # noqa: E402
from observe.db.engine import Database  # noqa: E402
from observe.pipeline import latency as latency_pipeline  # noqa: E402
from observe.pipeline.drift import features_frame  # noqa: E402
from observe.pipeline.keys import create_key  # noqa: E402
from observe.pipeline.profiles import import_profile_file  # noqa: E402
from observe.pipeline.profiling import refresh_profiles  # noqa: E402
from observe.pipeline.references import store_reference  # noqa: E402
from observe.pipeline.writer import BatchKind, ImmediateWriter  # noqa: E402
from observe.schemas.findings import FindingIn  # noqa: E402
from observe.schemas.profiles import ProfileMeta  # noqa: E402
from observe.schemas.records import InferenceRecordIn, MetricSampleIn  # noqa: E402
from observe.schemas.spans import SpanIn  # noqa: E402
from observe.storage import feature_profiles as feature_store  # noqa: E402
from observe.storage import findings as finding_store  # noqa: E402
from observe.storage import profiles as profile_store  # noqa: E402
from observe.storage import references as reference_store  # noqa: E402
from observe.storage import rollups as rollup_store  # noqa: E402
from observe.storage import signals as signal_store  # noqa: E402
from tests.integration.dashboards import browser  # noqa: E402
from tests.integration.dashboards.helpers import callback_body, find_callback  # noqa: E402

GOAL_SECONDS = 2.0
DAYS = 7
MODELS = ("checkout-fraud", "feed-ranker", "churn-model")
VERSIONS = ("v1", "v2")
HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
COUNTRIES = ("DE", "FR", "NL", "PL", "ES", "IT", "SE", "US")
GPUS_PER_HOST = 2
GPU_METRICS = (
    "gpu_utilization_pct",
    "gpu_memory_used_mb",
    "gpu_temperature_c",
    "gpu_power_w",
    "gpu_sm_clock_mhz",
)
LOAD_BATCH = 20_000
#: One request in this many of the first model is traced (root, feature store call, forward).
TRACE_EVERY = 100
REFERENCE_ROWS = 20_000
LOOKUP_MS = 3.0
RAW_REPEATS = 2  # reading raw rows is slow; two runs give a stable enough median
WINDOW = ("-7d", "")
PROFILES = {"v1": "profile_v1.json.gz", "v2": "profile_v2.json.gz"}
DATA_DIR = ROOT / "tests" / "data"


@dataclass(frozen=True)
class Scenario:
    """The loaded data's times: v2 replaces v1 at `switch_at`; the triage window is the hour
    after it."""

    end: dt.datetime
    switch_at: dt.datetime

    @property
    def triage_window(self) -> tuple[str, str]:
        start, end = self.switch_at, self.switch_at + dt.timedelta(hours=1)
        return (f"{start:%Y-%m-%dT%H:%M:%SZ}", f"{end:%Y-%m-%dT%H:%M:%SZ}")


@dataclass(frozen=True)
class Page:
    """A page, its URL, its data callback (the output it names and the input values) and the
    raw-row computation that stands for it (`peer`: a key of PEERS, or "" for none)."""

    name: str
    path: str
    output: str
    values: list[Any]
    peer: str


def pages(scenario: Scenario) -> list[Page]:
    model = MODELS[0]
    start, end = scenario.triage_window
    return [
        Page("overview, 7 d", "/ui/?start=-7d", "overview-status", [*WINDOW], "overview"),
        Page(
            "latency by version, 7 d",
            f"/ui/latency?model={model}&start=-7d",
            "latency-status",
            [model, *WINDOW, "model_version", "95"],
            "latency",
        ),
        Page(
            "latency by host, p99, 7 d",
            f"/ui/latency?model={model}&start=-7d&by=host&percentile=99",
            "latency-status",
            [model, *WINDOW, "host", "99"],
            "latency_by_host",
        ),
        Page("infra, 7 d", "/ui/infra?start=-7d", "infra-status", [*WINDOW, []], "metrics"),
        Page(
            "triage, 1 h against 1 h",
            f"/ui/triage?model={model}&start={start}&end={end}",
            "triage-status",
            [model, start, end, "", ""],
            "diagnosis",
        ),
        Page(
            "drift, 24 h against reference",
            f"/ui/drift?model={model}&start=-24h",
            "drift-status",
            [model, "", "-24h", "", "", "", "", ""],
            "drift",
        ),
        Page(
            "skew, 24 h, join on request_id",
            f"/ui/skew?model={model}&start=-24h&join_key=request_id",
            "skew-status",
            [model, "", "-24h", "", "", "request_id"],
            "",
        ),
        Page(
            "traces, 7 d",
            f"/ui/traces?model={model}&start=-7d",
            "traces-status",
            [model, *WINDOW, "", "p95"],
            "traces",
        ),
        Page(
            "profiler, diff v1 → v2",
            f"/ui/profiler?model={model}",
            "profiler-status",
            [model, "", [], "", "", ""],
            "profiler",
        ),
    ]


@dataclass
class Row:
    records: str
    page: str
    server_ms: float
    browser_ms: float
    raw_ms: float | None

    @property
    def verdict(self) -> str:
        worst = max(self.server_ms, self.browser_ms) / 1000
        return "meets" if worst < GOAL_SECONDS else "MISSES"


# --- data --------------------------------------------------------------------------------------


def load_records(db: Database, size: int, *, end: float, seed: int) -> float:
    """`size` records over the 7 days before `end` through the write path, with three
    features (amount moves up with v2), every TRACE_EVERY-th record of the first model
    traced; returns records/s."""
    rng = np.random.default_rng(seed)
    epoch = np.sort(end - DAYS * 86400 + rng.uniform(0, DAYS * 86400, size))
    model = rng.integers(0, len(MODELS), size)
    version = (epoch > end - DAYS * 86400 / 3).astype(np.int64)
    host = rng.integers(0, len(HOSTS), size)
    latency = np.round(rng.gamma(6.0, 4.5, size) * np.where(version == 1, 1.4, 1.0) + 3.0, 3)
    is_error = rng.uniform(size=size) < 0.003
    amount = np.round(rng.gamma(2.0, 40.0, size) * np.where(version == 1, 1.3, 1.0), 2)
    country = rng.integers(0, len(COUNTRIES), size)
    num_items = rng.integers(1, 6, size)
    writer = ImmediateWriter(db.write_sessions, rollup_tags=("host",))
    started = time.perf_counter()
    for offset in range(0, size, LOAD_BATCH):
        records, spans = [], []
        for i in range(offset, min(offset + LOAD_BATCH, size)):
            traced = model[i] == 0 and i % TRACE_EVERY == 0
            at = dt.datetime.fromtimestamp(epoch[i], dt.UTC)
            trace_id = f"{i + 1:032x}" if traced else None
            if traced:
                spans += trace_spans(i, at, float(latency[i]), VERSIONS[version[i]])
            records.append(
                InferenceRecordIn.model_construct(
                    model=MODELS[model[i]],
                    model_version=VERSIONS[version[i]],
                    timestamp=at,
                    request_id=f"r{i}",
                    latency_ms=float(latency[i]),
                    status="error" if is_error[i] else "ok",
                    error=None,
                    features={
                        "amount": float(amount[i]),
                        "country": COUNTRIES[country[i]],
                        "num_items": int(num_items[i]),
                    },
                    prediction=None,
                    label=None,
                    tags={"host": HOSTS[host[i]]},
                    input_size=None,
                    trace_id=trace_id,
                )
            )
        writer.submit(BatchKind.RECORDS, records).result()
        writer.submit(BatchKind.SPANS, spans).result()
    return size / (time.perf_counter() - started)


def trace_spans(number: int, at: dt.datetime, latency_ms: float, version: str) -> list[SpanIn]:
    """A traced request: predict (root, names the model), a feature store call, forward."""
    trace_id, root = f"{number + 1:032x}", f"{number + 1:08x}00000000"
    start = int(at.timestamp() * 1e9)
    forward_ms = max(latency_ms - LOOKUP_MS - 1.0, 0.1)
    parts = [
        (root, None, "predict", "server", 0.0, latency_ms, {"model.name": MODELS[0]}),
        (f"{number + 1:08x}00000001", root, "feature_store.lookup", "client", 0.5, LOOKUP_MS, None),
        (
            f"{number + 1:08x}00000002",
            root,
            "forward",
            "internal",
            0.5 + LOOKUP_MS,
            forward_ms,
            {"model.version": version},
        ),
    ]
    return [
        SpanIn.model_construct(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            service_name=MODELS[0],
            kind=kind,
            start_time_unix_nano=start + int(offset_ms * 1e6),
            end_time_unix_nano=start + int((offset_ms + ms) * 1e6),
            status_code="ok",
            status_message=None,
            attributes=attributes,
            resource_attributes={"service.name": MODELS[0]},
            model=MODELS[0] if parent is None else None,
        )
        for span_id, parent, name, kind, offset_ms, ms, attributes in parts
    ]


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


def load_the_rest(db: Database, scenario: Scenario) -> None:
    """What the triage, skew and profiler pages read besides records: the regression the
    latency analysis would have stored, a training reference (the first REFERENCE_ROWS
    requests of v1 as served) and a profiler trace of each version."""
    model = MODELS[0]
    with db.write_sessions.begin() as session:
        finding_store.upsert_findings(
            session,
            [
                FindingIn(
                    kind="latency_regression",
                    model=model,
                    model_version="v2",
                    window_start=scenario.switch_at - dt.timedelta(hours=1),
                    window_end=scenario.end,
                    status="open",
                    severity=0.6,
                    summary=f"p95 of {model} rose by 40% when v2 was deployed",
                    details={"onset_at": scenario.switch_at.isoformat()},
                    dedupe_key=f"latency_regression:{model}:v2",
                )
            ],
            now=scenario.end,
        )
    with db.sessions() as session:
        rows = feature_store.load_window_features(
            session,
            model=model,
            start=scenario.end - dt.timedelta(days=DAYS),
            end=scenario.switch_at,
            model_version="v1",
            limit=REFERENCE_ROWS,
        )
    reference = pd.DataFrame(list(rows["features"])).assign(
        request_id=rows["request_id"].to_numpy()
    )
    store_reference(
        db,
        reference,
        model=model,
        model_version="v1",
        name="training",
        source="benchmark",
        max_rows=REFERENCE_ROWS,
        now=scenario.end,
    )
    for version, name in PROFILES.items():
        meta = ProfileMeta(model=model, model_version=version, host=HOSTS[0])
        import_profile_file(db.write_sessions, DATA_DIR / name, meta, now=scenario.switch_at)


# --- measurements ------------------------------------------------------------------------------


def server_seconds(client: httpx.Client, page: Page, repeats: int) -> float:
    """The page's data callback, POSTed as the Dash renderer does."""
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
    """The data callback has answered (the page's status line is set), no callback is
    running, and every chart of the page is drawn."""
    status = f"#{page.output}"
    return bool(
        browser.text_of(driver, status).strip()
        and browser.is_idle(driver)
        and driver.execute_script(
            "const graphs = [...document.querySelectorAll('.page .dash-graph')];"
            "return graphs.length > 0 && graphs.every(g => g.querySelector('.main-svg'));"
        )
    )


# --- the same numbers from raw rows --------------------------------------------------------------


def peer_latency(
    db: Database, scenario: Scenario, *, models: tuple[str, ...], by_host: bool
) -> None:
    """Percentile series (or, for the overview, one figure per model) from raw records."""
    start = scenario.end - dt.timedelta(days=DAYS)
    with db.sessions() as session:
        for model in models:
            raw = rollup_store.load_raw_latencies(
                session,
                model=model,
                start=start,
                end=scenario.end,
                tag_key="host" if by_host else None,
            )
            series = raw["dim_value"] if by_host else raw["model_version"]
            bucket = 86400 * DAYS if len(models) > 1 else 1800
            latency_pipeline.summarize_raw(
                raw, series.astype(str), start, bucket, 86400 * DAYS // bucket + 1, [0.5, 0.95]
            )


def peer_metrics(db: Database, scenario: Scenario) -> None:
    with db.sessions() as session:
        signal_store.load_metric_samples(
            session, start=scenario.end - dt.timedelta(days=DAYS), end=scenario.end
        )


def peer_diagnosis(db: Database, scenario: Scenario) -> None:
    """What the checks compare, from raw records: p95 of the baseline and the window per
    version and per host."""
    start = scenario.switch_at - dt.timedelta(hours=1)
    with db.sessions() as session:
        raw = rollup_store.load_raw_latencies(
            session,
            model=MODELS[0],
            start=start,
            end=scenario.switch_at + dt.timedelta(hours=1),
            tag_key="host",
        )
    period = np.where(pd.to_datetime(raw["timestamp"], utc=True) < scenario.switch_at, 0, 1)
    for key in ("model_version", "dim_value"):
        raw.groupby([period, raw[key]])["latency_ms"].quantile([0.5, 0.95, 0.99])


def peer_drift(db: Database, scenario: Scenario) -> None:
    """The 24 hours' raw features against the reference's rows."""
    with db.sessions() as session:
        rows = feature_store.load_window_features(
            session,
            model=MODELS[0],
            start=scenario.end - dt.timedelta(hours=24),
            end=scenario.end,
        )
        reference = reference_store.find_reference_dataset(session, model=MODELS[0])
        assert reference is not None
        training = reference_store.load_reference_rows(session, reference.id)
    current = features_frame(rows)
    detect_drift(training[list(current.columns)], current)


def peer_traces(db: Database, scenario: Scenario) -> None:
    """The slowest traces and per-name p95 per 30 minutes from the raw spans (SQL on the
    spans table, then pandas)."""
    start = scenario.end - dt.timedelta(days=DAYS)
    url = db.engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(url) as connection:
        spans = pd.DataFrame(
            connection.execute(
                "SELECT trace_id, parent_span_id, name, start_at, duration_ms FROM spans "
                "WHERE model = %s AND start_at >= %s AND start_at < %s",
                (MODELS[0], start, scenario.end),
            ).fetchall(),
            columns=["trace_id", "parent_span_id", "name", "start_at", "duration_ms"],
        )
    roots = spans[spans["parent_span_id"].isna()]
    roots.nlargest(50, "duration_ms")
    bucket = pd.to_datetime(spans["start_at"], utc=True).dt.floor("30min")
    spans.groupby([spans["name"], bucket])["duration_ms"].quantile(0.95)


def peer_profiler(db: Database, scenario: Scenario) -> None:
    """Re-read both stored raw traces and summarize them again, then diff the operators."""
    frames = []
    with db.sessions() as session:
        for profile in profile_store.list_profiles(session, model=MODELS[0]):
            raw = b"".join(profile_store.iter_raw_chunks(session, profile.id))
            summary = summarize_trace(open_trace(io.BytesIO(raw)))
            frames.append(
                pd.DataFrame(
                    [
                        (op.name, op.category, op.count, op.total_us, op.self_us)
                        for op in summary.operators
                    ],
                    columns=["name", "category", "count", "total_us", "self_us"],
                )
            )
    diff_operators(frames[1], frames[0])


PEERS: dict[str, Callable[[Database, Scenario], None]] = {
    "overview": lambda db, s: peer_latency(db, s, models=MODELS, by_host=False),
    "latency": lambda db, s: peer_latency(db, s, models=MODELS[:1], by_host=False),
    "latency_by_host": lambda db, s: peer_latency(db, s, models=MODELS[:1], by_host=True),
    "metrics": peer_metrics,
    "diagnosis": peer_diagnosis,
    "drift": peer_drift,
    "traces": peer_traces,
    "profiler": peer_profiler,
}


def raw_seconds(db: Database, scenario: Scenario, page: Page, repeats: int) -> float | None:
    """The page's numbers from raw rows instead of rollups, profiles and summaries."""
    if not page.peer:
        return None
    peer = PEERS[page.peer]
    return median_seconds(lambda: peer(db, scenario), min(repeats, RAW_REPEATS), warm=False)


def measure_size(pg: Postgres, size: int, work: Path, repeats: int, rows: list[Row]) -> None:
    label = f"{size / 1e6:g}M"
    url = pg.fresh(f"observe_bench_ui_{size}")
    db = upgraded_database(url)
    end = time.time() // 60 * 60
    scenario = Scenario(
        end=dt.datetime.fromtimestamp(end, dt.UTC),
        switch_at=dt.datetime.fromtimestamp((end - DAYS * 86400 / 3) // 60 * 60, dt.UTC),
    )
    rate = load_records(db, size, end=end, seed=size)
    num_samples = load_metrics(db, end=end, seed=1)
    started = time.perf_counter()
    folded = refresh_profiles(db.write_sessions, now=dt.datetime.now(dt.UTC), lag_seconds=0)
    profiling_s = time.perf_counter() - started
    load_the_rest(db, scenario)
    key, _ = create_key(db.write_sessions, name="benchmark", scopes=[Scope.READ])
    with psycopg.connect(url, autocommit=True) as connection:
        # What autovacuum does within a minute of a bulk load, done now so that plans are the
        # steady state's.
        connection.execute("VACUUM ANALYZE")
    print(
        f"  loaded {size:,} records at {rate:,.0f}/s and {num_samples:,} metric samples; "
        f"profiled {folded.num_records:,} records in {profiling_s:,.0f} s",
        flush=True,
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
        for page in pages(scenario):
            raw = raw_seconds(db, scenario, page, repeats)
            row = Row(
                label,
                page.name,
                server_seconds(client, page, repeats) * 1000,
                browser_seconds(driver, server.url, page, repeats) * 1000,
                None if raw is None else raw * 1000,
            )
            print(
                f"  {page.name}: server {row.server_ms:,.0f} ms, browser {row.browser_ms:,.0f} ms",
                flush=True,
            )
            rows.append(row)
    db.engine.dispose()


def print_page_loads(rows: list[Row]) -> None:
    headers = (
        "records",
        "page and window",
        "server callback",
        "browser to chart",
        "same numbers from raw rows",
        f"goal < {GOAL_SECONDS:g} s",
    )
    cells = [
        (
            r.records,
            r.page,
            f"{r.server_ms:,.0f} ms",
            f"{r.browser_ms:,.0f} ms",
            "-" if r.raw_ms is None else f"{r.raw_ms:,.0f} ms ({_ratio(r.raw_ms / r.server_ms)})",
            r.verdict,
        )
        for r in rows
    ]
    print_table(headers, cells)


def _ratio(value: float) -> str:
    return f"{value:,.1f}x" if value < 10 else f"{value:,.0f}x"


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
    print_page_loads(rows)


if __name__ == "__main__":
    main()
