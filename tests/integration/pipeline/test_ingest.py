"""observe.pipeline.ingest: a batch and everything derived from it (versions, rollups, labels)
stored in the caller's transaction, exactly once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from analyzers.histograms import Histogram
from observe.db.engine import Database
from observe.db.models import InferenceRecord, Label, LatencyRollup, Model, ModelVersion
from observe.pipeline import ingest
from observe.pipeline.ingest import IngestCounts
from observe.schemas.records import InferenceRecordIn
from observe.storage import models as model_store
from tests.conftest import run_in_threads
from tests.factories import T0, event_in, label_in, metric_in, record

ROLLUP_TAGS = ("host", "region")
NOW = T0 + dt.timedelta(hours=2)


def make_records(
    count: int,
    *,
    seed: int,
    prefix: str,
    versions: Sequence[str] = ("v1",),
    start: dt.datetime = T0,
    spacing_seconds: float = 1.7,
    model: str = "fraud-scorer",
) -> list[InferenceRecordIn]:
    """Records with errors, input sizes, rolled-up tags that some records lack, and a tag
    without rollups ("segment")."""
    rng = np.random.default_rng(seed)
    latency = np.round(rng.gamma(3.0, 8.0, count) + rng.choice([0, 0, 0, 150], count), 3)
    items = []
    for i in range(count):
        tags = {"segment": str(rng.choice(["web", "app"]))}
        if i % 10:
            tags["host"] = str(rng.choice(["gpu-1", "gpu-2", "gpu-3"]))
        if i % 4 == 0:
            tags["region"] = str(rng.choice(["eu", "us"]))
        items.append(
            InferenceRecordIn.model_validate(
                record(
                    model=model,
                    model_version=str(rng.choice(list(versions))),
                    request_id=f"{prefix}-{i}",
                    timestamp=(start + dt.timedelta(seconds=i * spacing_seconds)).isoformat(),
                    latency_ms=0.0 if i == 3 else float(latency[i]),
                    status="error" if i % 9 == 0 else "ok",
                    input_size=float(rng.integers(1, 4096)) if i % 2 else None,
                    tags=tags,
                )
            )
        )
    return items


def store(db: Database, batch: Sequence[InferenceRecordIn], **options: Any) -> IngestCounts:
    with db.write_sessions.begin() as session:
        return ingest.store_records(
            session, batch, rollup_tags=options.get("rollup_tags", ROLLUP_TAGS), now=NOW
        )


def frame_of(records: Sequence[InferenceRecordIn]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": [r.model for r in records],
            "model_version": [r.model_version for r in records],
            "minute": [r.timestamp.replace(second=0, microsecond=0) for r in records],
            "latency_ms": [r.latency_ms for r in records],
            "is_error": [r.status == "error" for r in records],
            "input_size": [r.input_size for r in records],
            **{f"tag_{t}": [(r.tags or {}).get(t) for r in records] for t in ROLLUP_TAGS},
        }
    )


def expected_rollups(records: Sequence[InferenceRecordIn]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """What the rollup rows must hold, computed from the raw records."""
    frame = frame_of(records)
    expected = {}
    slices = [("", None)] + [(tag, f"tag_{tag}") for tag in ROLLUP_TAGS]
    for dim_key, column in slices:
        part = frame if column is None else frame[frame[column].notna()]
        values = pd.Series("", index=part.index) if column is None else part[column]
        for (model, version, value, minute), group in part.groupby(
            [part["model"], part["model_version"], values, part["minute"]]
        ):
            sizes = group["input_size"].dropna()
            expected[(model, version, dim_key, value, minute)] = {
                "num_requests": len(group),
                "num_errors": int(group["is_error"].sum()),
                "latency_sum_ms": float(group["latency_ms"].sum()),
                "latency_min_ms": float(group["latency_ms"].min()),
                "latency_max_ms": float(group["latency_ms"].max()),
                "num_with_input_size": len(sizes),
                "input_size_sum": float(sizes.sum()),
                "histogram": Histogram.from_values(group["latency_ms"].to_numpy()),
            }
    return expected


def stored_rollups(db: Database) -> dict[tuple[Any, ...], LatencyRollup]:
    with db.sessions() as session:
        return {
            (r.model, r.model_version, r.dim_key, r.dim_value, r.bucket_start): r
            for r in session.scalars(select(LatencyRollup))
        }


def assert_rollups_match(db: Database, records: Sequence[InferenceRecordIn]) -> None:
    expected = expected_rollups(records)
    stored = stored_rollups(db)
    assert set(stored) == set(expected)
    for key, values in expected.items():
        row = stored[key]
        assert row.num_requests == values["num_requests"], key
        assert row.num_errors == values["num_errors"], key
        assert row.latency_sum_ms == pytest.approx(values["latency_sum_ms"], rel=1e-12), key
        assert row.latency_min_ms == values["latency_min_ms"], key
        assert row.latency_max_ms == values["latency_max_ms"], key
        assert row.num_with_input_size == values["num_with_input_size"], key
        assert row.input_size_sum == pytest.approx(values["input_size_sum"], rel=1e-12), key
        histogram = Histogram.from_bytes(row.histogram)
        assert histogram.indices.tolist() == values["histogram"].indices.tolist(), key
        assert histogram.counts.tolist() == values["histogram"].counts.tolist(), key


def test_rollups_hold_exact_aggregates_per_minute_over_several_batches(db: Database) -> None:
    first = make_records(150, seed=1, prefix="a", versions=["v1"])
    second = make_records(
        120, seed=2, prefix="b", versions=["v2"], start=T0 + dt.timedelta(seconds=30)
    )
    third = make_records(
        80, seed=3, prefix="c", versions=["v1", "v2"], start=T0 + dt.timedelta(seconds=61)
    )
    retried = make_records(20, seed=4, prefix="a", versions=["v1"])  # ids of `first` again
    other_model = make_records(30, seed=5, prefix="a", model="ranker")

    counts = [store(db, batch) for batch in (first, second, third + retried, other_model)]

    assert counts == [
        IngestCounts(150, 150, 0),
        IngestCounts(120, 120, 0),
        IngestCounts(100, 80, 20),
        IngestCounts(30, 30, 0),
    ]
    assert_rollups_match(db, first + second + third + other_model)


def test_records_without_rolled_up_tags_count_only_towards_their_version(db: Database) -> None:
    batch = [
        InferenceRecordIn.model_validate(record(request_id="a", latency_ms=4.0, tags=None)),
        InferenceRecordIn.model_validate(
            record(request_id="b", latency_ms=6.0, tags={"segment": "web"})
        ),
        InferenceRecordIn.model_validate(
            record(request_id="c", latency_ms=8.0, tags={"host": "gpu-9"}, status="error")
        ),
    ]

    store(db, batch)

    stored = stored_rollups(db)
    assert sorted((k[2], k[3], r.num_requests, r.num_errors) for k, r in stored.items()) == [
        ("", "", 3, 1),
        ("host", "gpu-9", 1, 1),
    ]
    assert store(db, batch, rollup_tags=()) == IngestCounts(3, 0, 3)
    assert stored_rollups(db)[("fraud-scorer", "v1", "", "", T0)].num_requests == 3


def test_without_rollup_tags_only_whole_version_rollups_are_kept(db: Database) -> None:
    batch = make_records(60, seed=8, prefix="x", versions=["v1", "v2"])

    store(db, batch, rollup_tags=())

    stored = stored_rollups(db)
    assert {key[2] for key in stored} == {""}
    assert sum(row.num_requests for row in stored.values()) == 60


def test_versions_are_registered_with_the_times_of_their_records(db: Database) -> None:
    store(db, make_records(10, seed=1, prefix="a", versions=["v1"], spacing_seconds=60))
    store(
        db,
        make_records(5, seed=2, prefix="b", versions=["v1"], start=T0 - dt.timedelta(minutes=30)),
    )
    store(
        db, make_records(3, seed=3, prefix="c", versions=["v2"], start=T0 + dt.timedelta(hours=1))
    )

    with db.sessions() as session:
        info = model_store.get_model(session, "fraud-scorer")
    assert info is not None
    assert info.created_at == NOW
    seen = {v.model_version: (v.first_seen_at, v.last_seen_at) for v in info.versions}
    assert seen == {
        "v1": (T0 - dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=9)),
        "v2": (T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=1, seconds=3.4)),
    }


def test_a_batch_of_only_repeats_changes_nothing(db: Database) -> None:
    batch = make_records(40, seed=1, prefix="a", versions=["v1", "v2"])
    store(db, batch)
    before = {
        k: (r.num_requests, r.latency_sum_ms, r.histogram) for k, r in stored_rollups(db).items()
    }

    assert store(db, batch[::-1]) == IngestCounts(40, 0, 40)

    after = {
        k: (r.num_requests, r.latency_sum_ms, r.histogram) for k, r in stored_rollups(db).items()
    }
    assert after == before


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_batch_that_fails_after_storing_leaves_nothing(db: Database) -> None:
    batch = make_records(50, seed=1, prefix="a", versions=["v1", "v2"])
    labelled = [r.model_copy(update={"label": 1}) for r in batch]

    def store_then_fail() -> None:
        with db.write_sessions.begin() as session:
            ingest.store_records(session, labelled, rollup_tags=ROLLUP_TAGS, now=NOW)
            model_store.set_slo(  # violates the check on slo_latency_ms: the transaction fails
                session,
                "fraud-scorer",
                latency_percentile=95,
                latency_ms=-1,
                error_rate_pct=None,
                now=NOW,
            )

    with pytest.raises(IntegrityError):
        store_then_fail()

    for table in (InferenceRecord, Label, LatencyRollup, ModelVersion, Model):
        assert count(db, table) == 0, table.__tablename__


def test_store_labels_events_and_metrics_count_new_and_duplicates(db: Database) -> None:
    with db.write_sessions.begin() as session:
        labels = ingest.store_labels(
            session, [label_in(request_id="a"), label_in(request_id="b")], now=NOW
        )
        events = ingest.store_events(session, [event_in(), event_in()], now=NOW)
        samples = ingest.store_metric_samples(
            session, [metric_in(), metric_in(host="gpu-2"), metric_in()], now=NOW
        )

    assert labels == IngestCounts(2, 2, 0)
    assert events == IngestCounts(2, 1, 1)
    assert samples == IngestCounts(3, 2, 1)
    with db.write_sessions.begin() as session:
        again = ingest.store_labels(session, [label_in(request_id="a")], now=NOW)
    assert again == IngestCounts(1, 0, 1)  # the same label at the same time changes nothing


def test_counts_add_up(db: Database) -> None:
    assert IngestCounts(3, 2, 1) + IngestCounts(5, 1, 4) == IngestCounts(8, 3, 5)


def test_concurrent_transactions_merge_into_the_same_rollup_rows(db: Database) -> None:
    """Writers in separate transactions on overlapping minutes: totals stay exact and nobody
    fails (no deadlock, no lost update, no unique violation on a rollup row)."""
    num_writers, num_rounds = 4, 5
    batches = [
        [
            make_records(
                40,
                seed=100 * writer + round_,
                prefix=f"w{writer}-r{round_}",
                versions=["v1", "v2"],
                spacing_seconds=4.5,
            )
            for round_ in range(num_rounds)
        ]
        for writer in range(num_writers)
    ]
    barrier = threading.Barrier(num_writers)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for batch in batches[writer]:
                barrier.wait(timeout=30)
                store(db, batch)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    run_in_threads(write, ((w,) for w in range(num_writers)), timeout_seconds=60)

    assert errors == []
    everything = [r for writer in batches for batch in writer for r in batch]
    assert count(db, InferenceRecord) == len(everything) == 800
    assert_rollups_match(db, everything)
