"""Diagnosis time over a window of a model with 1M and 10M records on Postgres.

The data set is a week of one model on four GPU hosts: v6 all week, a slower canary v7 in the
last hour, six features per record (four numeric, two categorical), one request in a hundred
traced (a root span and four children), and GPU metrics per host and minute. It is loaded
through observe's own write path (rollups, span rollups, version registry).

For each size the script runs `observe.pipeline.diagnosis.run_diagnosis` for the last hour
against the hour before, and for the last day against the day before, and reports the median
time, split into loading the inputs and running the checks. Next to it, the peer: the isolate
step computed from raw rows (latency, version and host of every record of both periods read
from Postgres, percentiles per version and host with pandas), which is what the diagnosis would
cost without rollups; the other checks have no raw-row equivalent worth timing.

Usage:
    .venv/bin/python benchmarks/diagnosis.py                     # 1M and 10M (about 25 minutes)
    .venv/bin/python benchmarks/diagnosis.py --sizes 1000000

Postgres comes from --admin-url; the script creates and drops databases named
observe_bench_diagnosis_*.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    Postgres,
    median_seconds,
    print_table,
    upgraded_database,
)
from observe.db.engine import Database  # noqa: E402
from observe.pipeline.diagnosis import Windows, load_inputs, run_diagnosis  # noqa: E402
from observe.pipeline.writer import BatchKind, ImmediateWriter  # noqa: E402
from observe.schemas.records import InferenceRecordIn, MetricSampleIn  # noqa: E402
from observe.schemas.spans import SpanIn  # noqa: E402

MODEL = "fraud-scorer"
HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
DAYS = 7
BATCH = 20_000
TRACED_EVERY = 100
REPEATS = 3
FEATURE_POOL = 10_000
TAGS = ("host",)


def feature_pool(rng: np.random.Generator) -> list[dict[str, Any]]:
    numeric = rng.lognormal(3, 1, (FEATURE_POOL, 4))
    merchants = rng.choice(["grocery", "travel", "fuel", "online"], FEATURE_POOL)
    countries = rng.choice(["DE", "FR", "US", "GB"], FEATURE_POOL)
    return [
        {
            "amount": float(row[0]),
            "account_age_days": float(row[1]),
            "num_tx_24h": float(row[2]),
            "basket_eur": float(row[3]),
            "merchant": str(merchants[i]),
            "country": str(countries[i]),
        }
        for i, row in enumerate(np.round(numeric, 2))
    ]


def load(db: Database, size: int, end: float, rng: np.random.Generator) -> float:
    """Store `size` records (and their spans) over the week before `end`; returns records/s."""
    writer = ImmediateWriter(db.write_sessions, rollup_tags=TAGS)
    pool = feature_pool(rng)
    started = time.perf_counter()
    for offset in range(0, size, BATCH):
        count = min(BATCH, size - offset)
        epoch = end - DAYS * 86400 + (offset + np.arange(count)) * (DAYS * 86400 / size)
        canary = (epoch >= end - 3600) & (rng.uniform(size=count) < 0.3)
        latency = rng.gamma(6.0, 4.5, count) * np.where(canary, 1.8, 1.0) + 3.0
        hosts = rng.integers(0, len(HOSTS), count)
        records, spans = [], []
        for i in range(count):
            number = offset + i
            trace_id = f"{number + 1:032x}" if number % TRACED_EVERY == 0 else None
            record = InferenceRecordIn.model_construct(
                model=MODEL,
                model_version="v7" if canary[i] else "v6",
                timestamp=dt.datetime.fromtimestamp(float(epoch[i]), dt.UTC),
                request_id=f"r{number}",
                latency_ms=float(round(latency[i], 3)),
                status="ok",
                error=None,
                features=pool[number % FEATURE_POOL],
                prediction=None,
                label=None,
                tags={"host": HOSTS[hosts[i]]},
                input_size=None,
                trace_id=trace_id,
            )
            records.append(record)
            if trace_id is not None:
                spans += trace(record, float(epoch[i]))
        writer.submit(BatchKind.RECORDS, records).result()
        if spans:
            writer.submit(BatchKind.SPANS, spans).result()
    writer.submit(BatchKind.METRICS, metrics(end)).result()
    return size / (time.perf_counter() - started)


def trace(record: InferenceRecordIn, epoch: float) -> list[SpanIn]:
    start = int(epoch * 1e9)
    total = int(record.latency_ms * 1e6)
    parts = (
        ("feature_store.lookup", "client", 0.1),
        ("preprocess", "internal", 0.05),
        ("model.forward", "internal", 0.8),
        ("postprocess", "internal", 0.05),
    )
    root = SpanIn.model_construct(
        trace_id=record.trace_id,
        span_id=f"{int(epoch * 1000) % 2**60 + 1:016x}",
        parent_span_id=None,
        name="POST /v1/score",
        service_name="api",
        kind="server",
        start_time_unix_nano=start,
        end_time_unix_nano=start + total,
        status_code="ok",
        status_message=None,
        attributes=None,
        resource_attributes=None,
        model=MODEL,
    )
    spans, offset = [root], start
    for n, (name, kind, share) in enumerate(parts, start=1):
        spans.append(
            SpanIn.model_construct(
                trace_id=record.trace_id,
                span_id=f"{n:08x}{int(epoch) % 2**32:08x}",
                parent_span_id=root.span_id,
                name=name,
                service_name="api",
                kind=kind,
                start_time_unix_nano=offset,
                end_time_unix_nano=offset + int(total * share),
                status_code="unset",
                status_message=None,
                attributes=None,
                resource_attributes=None,
                model=None,
            )
        )
        offset += int(total * share)
    return spans


def metrics(end: float) -> list[MetricSampleIn]:
    minutes = end - DAYS * 86400 + 60 * np.arange(DAYS * 1440)
    return [
        MetricSampleIn.model_construct(
            timestamp=dt.datetime.fromtimestamp(float(t), dt.UTC),
            host=host,
            resource="gpu0",
            name=name,
            value=value,
            tags=None,
        )
        for t in minutes
        for host in HOSTS
        for name, value in (("gpu_utilization_pct", 60.0), ("gpu_temperature_c", 65.0))
    ]


def raw_isolate(url: str, windows: Windows) -> Callable[[], object]:
    """The isolate step from raw rows: every record's latency, version and host of both
    periods, percentiles per period, version and host with pandas."""
    query = (
        "SELECT timestamp >= %(start)s AS in_window, model_version, tags->>'host', latency_ms "
        "FROM inference_records WHERE model = %(model)s "
        "AND timestamp >= %(baseline_start)s AND timestamp < %(end)s"
    )
    params = {
        "model": MODEL,
        "start": windows.start,
        "end": windows.end,
        "baseline_start": windows.baseline_start,
    }

    def run() -> object:
        with psycopg.connect(url) as connection:
            rows = connection.execute(query, params).fetchall()
        frame = pd.DataFrame(rows, columns=["in_window", "version", "host", "latency_ms"])
        quantiles = [0.5, 0.95, 0.99]
        frame.groupby("in_window")["latency_ms"].quantile(quantiles)
        frame.groupby(["in_window", "version"])["latency_ms"].quantile(quantiles)
        return frame.groupby(["in_window", "host"])["latency_ms"].quantile(quantiles)

    return run


def measure(pg: Postgres, size: int) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(size)
    end = time.time() // 3600 * 3600
    url = pg.fresh(f"observe_bench_diagnosis_{size}")
    db = upgraded_database(url)
    rate = load(db, size, end, rng)
    print(f"  loaded {size:,} records at {rate:,.0f} records/s", flush=True)
    rows = []
    end_at = dt.datetime.fromtimestamp(end, dt.UTC)
    for label, length in (("1 h", dt.timedelta(hours=1)), ("1 day", dt.timedelta(days=1))):
        windows = Windows.resolve(end_at - length, end_at)

        def diagnose(windows: Windows = windows) -> object:
            with db.sessions() as session:
                return run_diagnosis(session, model=MODEL, windows=windows, rollup_tags=TAGS)

        def inputs(windows: Windows = windows) -> object:
            with db.sessions() as session:
                return load_inputs(session, model=MODEL, windows=windows, rollup_tags=TAGS)

        total = median_seconds(diagnose, REPEATS)
        loading = median_seconds(inputs, REPEATS)
        peer = median_seconds(raw_isolate(url.replace("+psycopg", ""), windows), REPEATS)
        with db.sessions() as session:
            top = run_diagnosis(session, model=MODEL, windows=windows, rollup_tags=TAGS).causes
        cause = f"{top[0].kind} {top[0].scope}" if top else "none"
        rows.append(
            (
                f"{size / 1e6:g}M",
                label,
                f"{total:.2f} s",
                f"{loading:.2f} s",
                f"{peer:.2f} s",
                cause,
            )
        )
        print(f"  {label}: {total:.2f} s (inputs {loading:.2f} s), raw isolate {peer:.2f} s")
    db.engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated counts")
    args = parser.parse_args()
    pg = Postgres(args.admin_url)
    rows: list[tuple[str, ...]] = []
    try:
        for size in (int(s) for s in args.sizes.split(",") if s):
            print(f"{size:,} records", flush=True)
            rows += measure(pg, size)
    finally:
        pg.drop_all()
    headers = ("records", "window", "diagnosis", "of which inputs", "raw-row isolate", "top cause")
    print()
    print_table(headers, rows)


if __name__ == "__main__":
    main()
