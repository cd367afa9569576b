"""Ingest throughput and latency-series read time, observe against its peers, in one run.

What it measures, each next to the peer named in the foundation issue:

1. ingest through the HTTP API with the Python SDK (a real `observe serve` on Postgres),
2. `observe import records` of a Parquet file of the same rows,
3. a plain psycopg COPY of the same rows into an equivalent bare table: the machine's limit,
4. a 7-day series of 1-minute p50/p95/p99 at 1M and 10M records, read through the API (rollups),
   next to Postgres percentile_cont over the raw rows and pandas over an in-memory frame,
   and the same read on SQLite.

Records carry 20 numeric features each for the ingest runs. The series datasets are loaded
through observe's own write path (the COPY, rollups and version registry of every ingested
batch) with features left out, since the read never touches them.

Usage:
    .venv/bin/python benchmarks/ingest.py                  # the full run (about 20 minutes)
    .venv/bin/python benchmarks/ingest.py --records 50000 --query-sizes 1000000 --no-sqlite
    .venv/bin/python benchmarks/ingest.py --query-sizes 0  # the ingest part only

The raw COPY and the import are measured in turns (--repeats, default 3) and their medians
reported, so that a burst of other work on a shared machine lands on both alike. The load
average is printed before and after the run.

Postgres comes from --admin-url (default postgresql://postgres@127.0.0.1:5432/postgres); the
script creates and drops its own databases named observe_bench_*.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    Postgres,
    bare_copy_rate,
    median_seconds,
    observe_server,
    print_table,
    upgraded_database,
)
from observe.auth import Scope  # noqa: E402
from observe.client import Client  # noqa: E402
from observe.db.engine import Database  # noqa: E402
from observe.pipeline.writer import BatchKind, ImmediateWriter  # noqa: E402
from observe.schemas.records import InferenceRecordIn  # noqa: E402

NUM_FEATURES = 20
FEATURE_POOL = 10_000
HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
VERSIONS = ("v6", "v7")
SERIES_DAYS = 7
LOAD_BATCH = 20_000
QUERY_REPEATS = 5
RAW_PEER = "percentile_cont on raw rows"
PANDAS_PEER = "pandas groupby quantile (in memory)"
COPY_COLUMNS = (
    "model, model_version, request_id, timestamp, latency_ms, status, error, features, "
    "prediction, tags, input_size, trace_id, received_at"
)


@dataclass
class Row:
    what: str
    observe: str
    peer: str
    peer_value: str
    ratio: str


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """Columns of `size` records; features come from a pool of distinct dicts."""

    epoch_seconds: np.ndarray
    latency_ms: np.ndarray
    version: np.ndarray
    host: np.ndarray
    features: list[dict[str, float]]

    @property
    def size(self) -> int:
        return int(self.epoch_seconds.size)

    def feature(self, i: int) -> dict[str, float]:
        return self.features[i % len(self.features)]


def make_dataset(size: int, *, days: float, seed: int, with_features: bool) -> Dataset:
    rng = np.random.default_rng(seed)
    end = time.time() // 60 * 60
    epoch = np.sort(end - days * 86400 + rng.uniform(0, days * 86400, size))
    version = (epoch > end - days * 86400 / 3).astype(np.int64)  # v7 for the last third
    latency = rng.gamma(6.0, 4.5, size) * np.where(version == 1, 1.4, 1.0) + 3.0
    features = []
    if with_features:
        pool = rng.normal(0, 1, (FEATURE_POOL, NUM_FEATURES))
        features = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in pool]
    return Dataset(
        epoch_seconds=epoch,
        latency_ms=np.round(latency, 3),
        version=version,
        host=rng.integers(0, len(HOSTS), size),
        features=features,
    )


def record_dict(data: Dataset, i: int, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "model_version": VERSIONS[data.version[i]],
        "timestamp": float(data.epoch_seconds[i]),
        "request_id": f"r{i}",
        "latency_ms": float(data.latency_ms[i]),
        "features": data.feature(i),
        "tags": {"host": HOSTS[data.host[i]]},
    }


# --- ingest measurements --------------------------------------------------------------------


def count_records(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT count(*) FROM inference_records").fetchone()
        return int(row[0]) if row else 0


def measure_copy(pg: Postgres, data: Dataset) -> float:
    """Rows/s of a plain psycopg COPY into a table with the same columns and no indexes."""
    url = pg.fresh_upgraded("observe_bench_copy")
    received = dt.datetime.now(dt.UTC)
    rows = (
        (
            "bench",
            VERSIONS[data.version[i]],
            f"r{i}",
            dt.datetime.fromtimestamp(data.epoch_seconds[i], dt.UTC),
            float(data.latency_ms[i]),
            "ok",
            None,
            orjson.dumps(data.feature(i)).decode(),
            None,
            orjson.dumps({"host": HOSTS[data.host[i]]}).decode(),
            None,
            None,
            received,
        )
        for i in range(data.size)
    )
    return bare_copy_rate(url, "inference_records", COPY_COLUMNS, rows)


def measure_api(pg: Postgres, data: Dataset, work: Path) -> tuple[float, dict[str, Any]]:
    """Records/s from the first log_prediction call until the SDK's flush returns."""
    url = pg.fresh_upgraded("observe_bench_api")
    with observe_server(url, work, [Scope.ADMIN]) as (base_url, key):
        client = Client(base_url, key, batch_size=5_000, max_buffer=max(data.size, 10_000))
        started = time.perf_counter()
        for i in range(data.size):
            client.log_prediction(**record_dict(data, i, "bench"))
        client.flush()
        seconds = time.perf_counter() - started
        client.close()
    stored = count_records(url)
    if stored != data.size:
        raise RuntimeError(f"API run stored {stored} of {data.size} records")
    return data.size / seconds, {"dropped": client.stats.num_dropped}


def write_parquet(data: Dataset, path: Path) -> None:
    columns: dict[str, Any] = {
        "model": ["bench"] * data.size,
        "model_version": [VERSIONS[v] for v in data.version],
        "timestamp": pd.to_datetime(data.epoch_seconds, unit="s", utc=True),
        "request_id": [f"r{i}" for i in range(data.size)],
        "latency_ms": data.latency_ms,
        "tags.host": [HOSTS[h] for h in data.host],
    }
    pool = np.array([[f[f"f{j}"] for j in range(NUM_FEATURES)] for f in data.features])
    rows = pool[np.arange(data.size) % len(pool)]
    for j in range(NUM_FEATURES):
        columns[f"features.f{j}"] = rows[:, j]
    pq.write_table(pa.table(columns), path)


def measure_import(pg: Postgres, data: Dataset, work: Path) -> float:
    """Rows/s of `observe import records FILE.parquet`, from the command's own summary."""
    path = work / "records.parquet"
    if not path.exists():
        write_parquet(data, path)
    url = pg.fresh_upgraded("observe_bench_import")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from observe.cli import main; main()",
            "import",
            "records",
            str(path),
            "--json",
            "--batch-size",
            "20000",
        ],
        env={**os.environ, "OBSERVE_DATABASE_URL": url, "OBSERVE_DATA_DIR": str(work)},
        capture_output=True,
        check=True,
    )
    summary = orjson.loads(result.stdout)
    if summary["num_imported"] != data.size:
        raise RuntimeError(f"import stored {summary['num_imported']} of {data.size}: {summary}")
    return data.size / summary["seconds"]


def measure_copy_and_import(
    pg: Postgres, data: Dataset, work: Path, repeats: int
) -> tuple[float, float]:
    """Median rows/s of the raw COPY and of the import, measured in turns: on a shared machine
    a burst of other work then lands on both alike, not on one of them."""
    copy_rates, import_rates = [], []
    for _ in range(repeats):
        copy_rates.append(measure_copy(pg, data))
        import_rates.append(measure_import(pg, data, work))
        print(
            f"  raw COPY {copy_rates[-1]:,.0f} rows/s, import {import_rates[-1]:,.0f} records/s",
            flush=True,
        )
    return statistics.median(copy_rates), statistics.median(import_rates)


# --- series read measurements ---------------------------------------------------------------


def load_series_dataset(db: Database, data: Dataset, model: str) -> float:
    """Store the records through observe's write path; returns records/s."""
    writer = ImmediateWriter(db.write_sessions, rollup_tags=("host",))
    started = time.perf_counter()
    for offset in range(0, data.size, LOAD_BATCH):
        batch = [
            InferenceRecordIn.model_construct(
                model=model,
                model_version=VERSIONS[data.version[i]],
                timestamp=dt.datetime.fromtimestamp(data.epoch_seconds[i], dt.UTC),
                request_id=f"r{i}",
                latency_ms=float(data.latency_ms[i]),
                status="ok",
                error=None,
                features=None,
                prediction=None,
                label=None,
                tags={"host": HOSTS[data.host[i]]},
                input_size=None,
                trace_id=None,
            )
            for i in range(offset, min(offset + LOAD_BATCH, data.size))
        ]
        writer.submit(BatchKind.RECORDS, batch).result()
    return data.size / (time.perf_counter() - started)


def series_request(base_url: str, key: str, data: Dataset) -> Callable[[], object]:
    end = dt.datetime.fromtimestamp(data.epoch_seconds.max() + 60, dt.UTC)
    params = {
        "start": (end - dt.timedelta(days=SERIES_DAYS)).isoformat(),
        "end": end.isoformat(),
        "bucket": "1m",
    }
    headers = {"Authorization": f"Bearer {key}"}

    def run() -> object:
        response = httpx.get(
            f"{base_url}/api/v1/models/bench/latency", params=params, headers=headers, timeout=120
        )
        response.raise_for_status()
        points = sum(len(s["points"]) for s in response.json()["series"])
        if points < SERIES_DAYS * 1440 * 0.9:
            raise RuntimeError(f"the series has only {points} points")
        return points

    return run


def percentile_cont_seconds(database_url: str) -> float:
    query = (
        "SELECT model_version, date_trunc('minute', timestamp) AS minute, "
        "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) "
        "FROM inference_records WHERE model = 'bench' GROUP BY 1, 2"
    )
    with psycopg.connect(database_url) as connection:
        started = time.perf_counter()
        connection.execute(query).fetchall()
        return time.perf_counter() - started


def pandas_seconds(data: Dataset) -> float:
    frame = pd.DataFrame(
        {
            "minute": (data.epoch_seconds // 60).astype(np.int64),
            "version": data.version,
            "latency_ms": data.latency_ms,
        }
    )
    started = time.perf_counter()
    frame.groupby(["version", "minute"])["latency_ms"].quantile([0.5, 0.95, 0.99])
    return time.perf_counter() - started


def series_row(what: str, seconds: float, peer: str, peer_seconds: float, *, decimals: int) -> Row:
    """A series read of `seconds` next to its peer's, with how many times faster it was."""
    return Row(
        what,
        f"{seconds * 1000:,.0f} ms",
        peer,
        f"{peer_seconds * 1000:,.0f} ms",
        f"{peer_seconds / seconds:,.{decimals}f}x faster",
    )


def measure_series(pg: Postgres, size: int, work: Path, *, sqlite: bool, rows: list[Row]) -> None:
    data = make_dataset(size, days=SERIES_DAYS, seed=size, with_features=False)
    label = f"{size / 1e6:g}M records"
    url = pg.fresh(f"observe_bench_series_{size}")
    db = upgraded_database(url)
    load_rate = load_series_dataset(db, data, "bench")
    db.engine.dispose()
    print(f"  loaded {label} into Postgres at {load_rate:,.0f} records/s", flush=True)
    with observe_server(url, work, [Scope.ADMIN]) as (base_url, key):
        seconds = median_seconds(series_request(base_url, key, data), QUERY_REPEATS)
    what = f"7-day 1-min p50/p95/p99, {label}"
    raw = percentile_cont_seconds(url)
    rows.append(series_row(f"{what}, Postgres", seconds, RAW_PEER, raw, decimals=0))
    in_memory = pandas_seconds(data)
    rows.append(series_row(f"{what}, Postgres", seconds, PANDAS_PEER, in_memory, decimals=1))
    if sqlite:
        path = work / f"series-{size}.db"
        sqlite_url = f"sqlite:///{path}"
        db = upgraded_database(sqlite_url)
        sqlite_rate = load_series_dataset(db, data, "bench")
        db.engine.dispose()
        print(f"  loaded {label} into SQLite at {sqlite_rate:,.0f} records/s", flush=True)
        with observe_server(sqlite_url, work, [Scope.ADMIN]) as (base_url, key):
            sqlite_seconds = median_seconds(series_request(base_url, key, data), QUERY_REPEATS)
        rows.append(
            series_row(f"{what}, SQLite", sqlite_seconds, PANDAS_PEER, in_memory, decimals=1)
        )
        path.unlink()


# --- report -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--records", type=int, default=200_000, help="records per ingest run")
    parser.add_argument(
        "--query-sizes",
        default="1000000,10000000",
        help="comma-separated record counts of the series reads; 0 skips them",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite series read")
    parser.add_argument(
        "--repeats", type=int, default=3, help="turns of raw COPY and import (medians reported)"
    )
    args = parser.parse_args()

    pg = Postgres(args.admin_url)
    work = Path(tempfile.mkdtemp(prefix="observe-bench-"))
    rows: list[Row] = []
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_average()}; "
        f"Postgres at {pg.admin_url.host}:{pg.admin_url.port}"
    )
    try:
        data = make_dataset(args.records, days=1 / 24, seed=1, with_features=True)
        print(f"ingest: {data.size:,} records with {NUM_FEATURES} numeric features", flush=True)
        copy_rate, import_rate = measure_copy_and_import(pg, data, work, args.repeats)
        api_rate, _ = measure_api(pg, data, work)
        print(f"  API + SDK {api_rate:,.0f} records/s", flush=True)
        rows.append(
            Row(
                "ingest via HTTP API + SDK (Postgres)",
                f"{api_rate:,.0f} rec/s",
                "psycopg COPY into a bare table",
                f"{copy_rate:,.0f} rows/s",
                f"{api_rate / copy_rate:.0%} of COPY (goal >= 20,000 rec/s)",
            )
        )
        rows.append(
            Row(
                "observe import records FILE.parquet (Postgres)",
                f"{import_rate:,.0f} rec/s",
                "psycopg COPY into a bare table",
                f"{copy_rate:,.0f} rows/s",
                f"{import_rate / copy_rate:.0%} of COPY (goal >= 50%)",
            )
        )
        for size in (int(s) for s in args.query_sizes.split(",") if s and int(s) > 0):
            print(f"series read at {size:,} records", flush=True)
            measure_series(pg, size, work, sqlite=not args.no_sqlite, rows=rows)
    finally:
        pg.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at the end: {load_average()}\n")
    print_table(
        ("measurement", "observe", "peer", "peer value", "observe vs peer"),
        [(r.what, r.observe, r.peer, r.peer_value, r.ratio) for r in rows],
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was around the run."""
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
