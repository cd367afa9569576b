"""Drift detection time and peak memory: observe against Evidently, whylogs and plain scipy.

The same data for everyone, in one run: 20 numeric and 5 categorical columns, with drift in a
quarter of them, at 10k, 100k and 1M rows per side. Each contender runs in its own process, which
builds the data with the same seed and then times only the drift computation:

- observe: ``analyzers.drift.detect_drift`` (Evidently's default tests, raw data);
- Evidently 0.7: ``Report([DataDriftPreset()]).run(current, reference)``;
- whylogs: ``why.log`` of both sides, then ``calculate_drift_scores`` on the two profiles
  (needs ``pip install 'whylogs[viz]'``, which brings IPython);
- scipy: ``ks_2samp`` per numeric column and ``chisquare`` per categorical column, nothing else.

Peak memory is the process's peak resident size above what it held once the data was built.
Then the 30-day question: drift of a month of hourly profiles (720 hours x 25 features, stored in
a SQLite database through observe's own tables, hourly and daily rows as the profiling job
writes them) against a reference, through ``observe.pipeline.drift.analyze_drift``, and the
profiling job's rate of folding records into profiles (the cost moved off the ingest path).

Usage:
    .venv/bin/python benchmarks/drift.py                       # all sizes (about 10 minutes)
    .venv/bin/python benchmarks/drift.py --sizes 10000 100000 --skip whylogs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NUM_NUMERIC = 20
NUM_CATEGORICAL = 5
CONTENDERS = ("observe", "evidently", "whylogs", "scipy")
CATEGORIES = [f"c{i}" for i in range(8)]


def make_side(rows: int, *, drift: bool, seed: int) -> pd.DataFrame:
    """One side; with `drift`, every fourth column moves."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(NUM_NUMERIC):
        shift = 0.5 if drift and i % 4 == 0 else 0.0
        columns[f"num_{i}"] = rng.normal(shift + i, 1.0 + i / 10, rows)
    base = np.linspace(1.0, 2.0, len(CATEGORIES))
    for i in range(NUM_CATEGORICAL):
        weights = base[::-1] if drift and i % 4 == 0 else base
        columns[f"cat_{i}"] = rng.choice(CATEGORIES, rows, p=weights / weights.sum())
    return pd.DataFrame(columns)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    """Start the kernel's peak resident size (VmHWM) afresh (Linux)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_observe(reference: pd.DataFrame, current: pd.DataFrame) -> int:
    from analyzers.drift import detect_drift

    return detect_drift(reference, current).num_drifted


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> int:
    import warnings

    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()]).run(current, reference).dict()
    return int(snapshot["metrics"][0]["value"]["count"])


def run_whylogs(reference: pd.DataFrame, current: pd.DataFrame) -> int:
    import warnings

    import whylogs as why
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = calculate_drift_scores(
            why.log(current).view(), why.log(reference).view(), with_thresholds=True
        )
    return sum(1 for s in scores.values() if s and s.get("drift_category") == "DRIFT")


def run_scipy(reference: pd.DataFrame, current: pd.DataFrame) -> int:
    from scipy import stats

    drifted = 0
    for name in reference.columns:
        if name.startswith("num_"):
            p_value = stats.ks_2samp(reference[name], current[name]).pvalue
        else:
            ref_counts = reference[name].value_counts()
            cur_counts = current[name].value_counts().reindex(ref_counts.index, fill_value=0)
            expected = ref_counts * (cur_counts.sum() / ref_counts.sum())
            p_value = stats.chisquare(cur_counts, expected).pvalue
        drifted += int(p_value < 0.05)
    return drifted


#: Modules each contender imports before the clock starts (import time is not drift time).
IMPORTS = {
    "observe": ("analyzers.drift",),
    "evidently": ("evidently", "evidently.presets"),
    "whylogs": ("whylogs", "whylogs.viz.drift.column_drift_algorithms"),
    "scipy": ("scipy.stats",),
}

RUNNERS = {
    "observe": run_observe,
    "evidently": run_evidently,
    "whylogs": run_whylogs,
    "scipy": run_scipy,
}


def child(contender: str, rows: int) -> None:
    """Build the data, time one contender, print JSON."""
    import importlib

    for module in IMPORTS[contender]:
        importlib.import_module(module)
    reference = make_side(rows, drift=False, seed=1)
    current = make_side(rows, drift=True, seed=2)
    baseline_mb = rss_mb()
    reset_peak_rss()
    started = time.perf_counter()
    drifted = RUNNERS[contender](reference, current)
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb - baseline_mb, "drifted": drifted}))


def measure(contender: str, rows: int, timeout_seconds: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", contender, str(rows)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_seconds, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout_seconds:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the 30-day window from hourly profiles ---------------------------------------------------


def month_of_profiles(hours: int, rows_per_hour: int) -> dict[str, Any]:
    """Store `hours` hourly profiles of 25 features, then time a drift analysis over them."""
    from analyzers.feature_profiles import profile_frame
    from observe.db import migrate
    from observe.db.engine import create_database
    from observe.pipeline.drift import DriftQuery, analyze_drift
    from observe.pipeline.profiling import store_profiles
    from observe.pipeline.references import store_reference
    from tests.conftest import make_settings

    end = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    start = end - dt.timedelta(hours=hours)
    with tempfile.TemporaryDirectory() as directory:
        db = create_database(f"sqlite:///{directory}/observe.db")
        migrate.upgrade(db.engine)
        store_reference(
            db,
            make_side(100_000, drift=False, seed=1),
            model="bench",
            model_version="v1",
            name="train",
            source=None,
            max_rows=1000,
            now=start,
        )
        for hour in range(hours):
            frame = make_side(rows_per_hour, drift=hour >= hours // 2, seed=100 + hour)
            at = start + dt.timedelta(hours=hour)
            hourly = {
                ("bench", "v1", at, name): (profile, rows_per_hour)
                for name, profile in profile_frame(frame).items()
            }
            with db.write_sessions.begin() as session:
                store_profiles(session, hourly, now=at)
        settings = make_settings(database_url=str(db.engine.url), drift_raw_max_hours=0.0)
        query = DriftQuery(model="bench", start=start, end=end, model_version="v1")
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            report = analyze_drift(db, query, settings=settings, now=end)
            timings.append(time.perf_counter() - started)
        db.engine.dispose()
    return {
        "seconds": min(timings),
        "rows": report.num_rows_current,
        "drifted": report.result.num_drifted,
        "source": report.result.source,
    }


def profiling_rate(num_records: int) -> float:
    """Records per second the profiling job folds (20 numeric features per record)."""
    from observe.db import migrate
    from observe.db.engine import create_database
    from observe.pipeline import ingest
    from observe.pipeline.profiling import refresh_profiles
    from observe.schemas.records import InferenceRecordIn

    rng = np.random.default_rng(0)
    start = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    values = rng.normal(0, 1, (num_records, NUM_NUMERIC)).round(5)
    items = [
        InferenceRecordIn(
            model="bench",
            model_version="v1",
            request_id=f"r{i}",
            timestamp=start + dt.timedelta(seconds=i * 86_400 / num_records),
            latency_ms=10.0,
            features={f"f{j}": float(values[i, j]) for j in range(NUM_NUMERIC)},
        )
        for i in range(num_records)
    ]
    with tempfile.TemporaryDirectory() as directory:
        db = create_database(f"sqlite:///{directory}/observe.db")
        migrate.upgrade(db.engine)
        for offset in range(0, num_records, 10_000):
            with db.write_sessions.begin() as session:
                ingest.store_records(
                    session, items[offset : offset + 10_000], rollup_tags=(), now=start
                )
        started = time.perf_counter()
        run = refresh_profiles(db.write_sessions, now=start + dt.timedelta(days=2), lag_seconds=0)
        seconds = time.perf_counter() - started
        db.engine.dispose()
    assert run.num_records == num_records
    return num_records / seconds


# --- the table ----------------------------------------------------------------------------------


def cell(result: dict[str, Any]) -> str:
    if "error" in result:
        return result["error"]
    return f"{result['seconds']:.2f} s, {result['peak_mb']:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--skip", nargs="*", default=[], choices=CONTENDERS)
    parser.add_argument("--timeout", type=float, default=900.0, help="per contender and size")
    parser.add_argument("--hours", type=int, default=720, help="hourly profiles in the window")
    parser.add_argument("--rows-per-hour", type=int, default=1000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    contenders = [c for c in CONTENDERS if c not in args.skip]
    print(f"{NUM_NUMERIC} numeric + {NUM_CATEGORICAL} categorical columns, rows per side")
    header = ["rows"] + contenders + [f"vs {c}" for c in contenders if c != "observe"]
    print(" | ".join(header))
    for rows in args.sizes:
        results = {c: measure(c, rows, args.timeout) for c in contenders}
        ours = results.get("observe", {})
        ratios = []
        for name in contenders:
            if name == "observe":
                continue
            other = results[name]
            if "error" in other or "error" in ours:
                ratios.append("-")
            else:
                ratios.append(f"{other['seconds'] / ours['seconds']:.1f}x")
        drifted = {c: r.get("drifted") for c, r in results.items()}
        print(" | ".join([f"{rows:,}"] + [cell(results[c]) for c in contenders] + ratios))
        print(f"    drifted columns found (7 moved): {drifted}")
    month = month_of_profiles(args.hours, args.rows_per_hour)
    print(
        f"{args.hours} hourly profiles x 25 features ({month['rows']:,} records) against a "
        f"reference: {month['seconds']:.2f} s from {month['source']} ({month['drifted']} drifted)"
    )
    print(f"profiling job: {profiling_rate(100_000):,.0f} records/s folded (20 features, SQLite)")


if __name__ == "__main__":
    main()
