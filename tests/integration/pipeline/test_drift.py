"""Drift, skew, profiling, references and whylogs imports through the pipeline, on SQLite and
Postgres: raw and profile analyses of the same records agree, the profiling job folds each
record once, findings say what the data says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import ingest
from observe.pipeline.drift import (
    DriftInputError,
    DriftQuery,
    analyze_drift,
    drift_timeline,
    findings_for_model,
)
from observe.pipeline.profiling import refresh_profiles
from observe.pipeline.references import ReferenceError
from observe.pipeline.skew import SkewQuery, analyze_skew
from observe.pipeline.whylogs_import import WhylogsImportError, import_whylogs
from observe.schemas.records import InferenceRecordIn
from observe.storage import feature_profiles as profile_store
from observe.storage import references as reference_store
from tests.factories import T0, record, stored_reference

HOUR = dt.timedelta(hours=1)
DATA = Path(__file__).resolve().parents[2] / "data"
NOW = T0 + dt.timedelta(days=3)


def serving(
    count: int,
    *,
    start: dt.datetime,
    hours: float,
    shift: float,
    seed: int,
    version: str = "v1",
    prefix: str = "r",
) -> list[InferenceRecordIn]:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, hours * 3600, count))
    items = []
    for i in range(count):
        features: dict[str, Any] = {
            "amount": round(float(rng.normal(50 + 10 * shift, 10)), 4),
            "country": str(
                rng.choice(["DE", "FR", "US"], p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5])
            ),
            "num_tx": int(rng.integers(0, 4)),
        }
        items.append(
            InferenceRecordIn.model_validate(
                record(
                    request_id=f"{prefix}-{i}",
                    model_version=version,
                    timestamp=(start + dt.timedelta(seconds=float(offsets[i]))).isoformat(),
                    features=features,
                )
            )
        )
    return items


def store(db: Database, items: list[InferenceRecordIn], received_at: dt.datetime = T0) -> None:
    for start in range(0, len(items), 2000):
        with db.write_sessions.begin() as session:
            ingest.store_records(
                session, items[start : start + 2000], rollup_tags=(), now=received_at
            )


def training_frame(count: int = 3000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "request_id": [f"t-{i}" for i in range(count)],
            "amount": rng.normal(50, 10, count).round(4),
            "country": rng.choice(["DE", "FR", "US"], count, p=[0.5, 0.3, 0.2]),
            "num_tx": rng.integers(0, 4, count),
        }
    )


@pytest.fixture
def drift_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"profiling_lag_seconds": 0.0})


def test_profiling_folds_each_record_once_and_merges_late_ones(db: Database) -> None:
    store(db, serving(600, start=T0, hours=2, shift=0, seed=1))
    first = refresh_profiles(db.write_sessions, now=NOW, lag_seconds=0, batch_records=250)
    assert first.num_records == 600
    assert refresh_profiles(db.write_sessions, now=NOW, lag_seconds=0).num_records == 0
    late = serving(50, start=T0, hours=1, shift=0, seed=2, prefix="late")
    store(db, late, received_at=T0 + dt.timedelta(hours=5))
    # Not yet older than the lag: left for the next run.
    held = refresh_profiles(db.write_sessions, now=T0 + dt.timedelta(hours=5), lag_seconds=60)
    assert held.num_records == 0
    assert refresh_profiles(db.write_sessions, now=NOW, lag_seconds=60).num_records == 50
    with db.sessions() as session:
        rows = profile_store.load_feature_profiles(session, model="fraud-scorer", start=T0, end=NOW)
    assert set(rows["feature"]) == {"amount", "country", "num_tx"}
    assert rows[rows["feature"] == "amount"]["num_rows"].sum() == 650
    assert sorted(rows["start"].unique()) == [pd.Timestamp(T0), pd.Timestamp(T0 + HOUR)]
    with db.sessions() as session:
        days = profile_store.load_feature_profiles(
            session, model="fraud-scorer", start=T0 - 12 * HOUR, end=NOW, span="day"
        )
    assert list(days["start"].unique()) == [pd.Timestamp(T0.replace(hour=0))]
    assert days[days["feature"] == "amount"]["num_rows"].sum() == 650


def test_raw_and_profile_drift_agree_on_the_same_records(
    db: Database, drift_settings: Settings
) -> None:
    store(db, serving(3000, start=T0, hours=6, shift=0, seed=3, prefix="base"))
    store(db, serving(3000, start=T0 + 6 * HOUR, hours=6, shift=1, seed=4, prefix="now"))
    query = DriftQuery(
        model="fraud-scorer",
        start=T0 + 6 * HOUR,
        end=T0 + 12 * HOUR,
        baseline_start=T0,
        baseline_end=T0 + 6 * HOUR,
    )
    raw = analyze_drift(db, query, settings=drift_settings, now=NOW)
    profiled = analyze_drift(
        db, query, settings=drift_settings.model_copy(update={"drift_raw_max_hours": 1.0}), now=NOW
    )
    assert raw.result.source == "raw"
    assert profiled.result.source == "profiles"
    assert raw.num_rows_current == profiled.num_rows_current == 3000
    for feature in raw.result.features:
        other = profiled.result.feature(feature.feature)
        assert other.test == feature.test
        assert other.drifted == feature.drifted
        assert other.statistic == pytest.approx(feature.statistic, abs=0.02, rel=0.1)
    assert raw.result.feature("amount").drifted
    assert raw.result.feature("country").drifted
    assert raw.result.feature("num_tx").kind == "categorical"
    assert not raw.result.feature("num_tx").drifted
    assert raw.result.dataset_drifted


def test_drift_against_a_reference_and_default_baselines(
    db: Database, drift_settings: Settings
) -> None:
    store(db, serving(1500, start=T0, hours=3, shift=0, seed=5))
    summary = stored_reference(db, training_frame(), source="test")
    assert summary.num_rows == 3000
    assert summary.num_rows_stored == 1000
    assert summary.feature_types["num_tx"] == "integer"
    query = DriftQuery(model="fraud-scorer", start=T0, end=T0 + 3 * HOUR, model_version="v1")
    raw = analyze_drift(db, query, settings=drift_settings, now=NOW)
    assert raw.baseline.reference is not None
    assert raw.baseline.reference.name == "train"
    assert raw.num_rows_baseline == 1000  # the stored rows
    assert not raw.result.dataset_drifted
    long_window = analyze_drift(
        db, query, settings=drift_settings.model_copy(update={"drift_raw_max_hours": 0.5}), now=NOW
    )
    assert long_window.result.source == "profiles"
    assert long_window.num_rows_baseline == 3000
    assert not long_window.result.dataset_drifted
    with pytest.raises(DriftInputError, match="no reference data set named 'nope'"):
        analyze_drift(
            db,
            DriftQuery(model="fraud-scorer", start=T0, end=NOW, reference="nope"),
            settings=drift_settings,
            now=NOW,
        )
    with pytest.raises(DriftInputError, match="no records of fraud-scorer in the window"):
        analyze_drift(
            db,
            DriftQuery(model="fraud-scorer", start=T0, end=T0 + HOUR, model_version="v9"),
            settings=drift_settings,
            now=NOW,
        )
    empty_baseline = DriftQuery(
        model="fraud-scorer",
        start=T0,
        end=T0 + HOUR,
        baseline_start=T0 - 10 * HOUR,
        baseline_end=T0 - 9 * HOUR,
    )
    with pytest.raises(DriftInputError, match="baseline has no data"):
        analyze_drift(db, empty_baseline, settings=drift_settings, now=NOW)


def test_tests_and_thresholds_reach_the_analysis(db: Database, drift_settings: Settings) -> None:
    store(db, serving(800, start=T0, hours=2, shift=0, seed=6))
    query = DriftQuery(
        model="fraud-scorer",
        start=T0 + HOUR,
        end=T0 + 2 * HOUR,
        tests={"amount": "psi"},
        thresholds={"amount": 0.5},
    )
    report = analyze_drift(db, query, settings=drift_settings, now=NOW)
    assert report.baseline.start == T0  # the window of equal length before
    amount = report.result.feature("amount")
    assert (amount.test, amount.threshold) == ("psi", 0.5)
    bad = DriftQuery(
        model="fraud-scorer", start=T0 + HOUR, end=T0 + 2 * HOUR, tests={"country": "ks"}
    )
    report = analyze_drift(db, bad, settings=drift_settings, now=NOW)
    assert "does not apply to categorical" in report.result.skipped["country"]


def test_timeline_buckets_against_the_reference(db: Database, drift_settings: Settings) -> None:
    store(db, serving(600, start=T0, hours=2, shift=0, seed=7, prefix="a"))
    store(db, serving(600, start=T0 + 2 * HOUR, hours=2, shift=1.5, seed=8, prefix="b"))
    stored_reference(db, training_frame(), max_rows=100)
    query = DriftQuery(model="fraud-scorer", start=T0, end=T0 + 4 * HOUR)
    baseline, buckets = drift_timeline(
        db, query, bucket_seconds=3600, settings=drift_settings, now=NOW
    )
    assert baseline.kind == "reference"
    assert [b.start for b in buckets] == [T0 + i * HOUR for i in range(4)]
    assert [b.result.dataset_drifted for b in buckets] == [False, False, True, True]  # type: ignore[union-attr]
    assert sum(b.num_rows for b in buckets) == 1200
    with pytest.raises(DriftInputError, match="multiple of 1h"):
        drift_timeline(db, query, bucket_seconds=600, settings=drift_settings, now=NOW)


def test_a_timeline_without_profiles_in_the_window_has_empty_buckets(
    db: Database, drift_settings: Settings
) -> None:
    store(db, serving(300, start=T0, hours=2, shift=0, seed=7))
    query = DriftQuery(
        model="fraud-scorer",
        start=T0 + 10 * HOUR,
        end=T0 + 12 * HOUR,
        baseline_start=T0,
        baseline_end=T0 + 2 * HOUR,
    )

    _, buckets = drift_timeline(db, query, bucket_seconds=3600, settings=drift_settings, now=NOW)

    assert [(b.num_rows, b.result) for b in buckets] == [(0, None), (0, None)]


def test_findings_for_model_per_version_and_day(db: Database, drift_settings: Settings) -> None:
    day = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    store(
        db,
        serving(
            2000, start=day - 7 * dt.timedelta(days=1), hours=24 * 7, shift=0, seed=9, prefix="old"
        ),
    )
    store(db, serving(800, start=day, hours=5, shift=1.5, seed=10, prefix="new"))
    store(db, serving(800, start=day, hours=5, shift=0, seed=11, version="v2", prefix="v2"))
    stored_reference(db, training_frame(), model_version="v2", max_rows=500)
    now = day + dt.timedelta(hours=5, minutes=30)
    findings = {
        f.model_version: f
        for f in findings_for_model(db, "fraud-scorer", now=now, settings=drift_settings)
    }
    assert set(findings) == {"v1", "v2"}
    v1, v2 = findings["v1"], findings["v2"]
    assert (v1.kind, v1.status) == ("drift", "open")
    assert v1.window_start == day
    assert v1.window_end == day + 5 * HOUR
    assert v1.dedupe_key == "drift:fraud-scorer:v1:2026-11-20"
    assert "amount" in v1.summary
    assert v1.details["baseline"]["kind"] == "window"
    assert v1.severity == pytest.approx(v1.details["share_drifted"])
    assert v2.status == "ok"
    assert v2.details["baseline"]["kind"] == "reference"
    assert findings_for_model(db, "no-such-model", now=now, settings=drift_settings) == []


def test_skew_against_the_reference(db: Database, drift_settings: Settings) -> None:
    training = training_frame(500)
    items = []
    for i, row in training.iterrows():
        features = {
            "amount": float(row["amount"]) * (1.0 if i % 5 else 2.0),
            "country": str(row["country"]),
            "num_tx": int(row["num_tx"]),
            "device": "ios",
        }
        if i % 10 == 0:
            features["country"] = "BR"
        items.append(
            InferenceRecordIn.model_validate(
                record(
                    request_id=str(row["request_id"]),
                    timestamp=(T0 + dt.timedelta(seconds=int(i))).isoformat(),
                    features=features,
                )
            )
        )
    store(db, items)
    stored_reference(db, training, max_rows=10_000)
    query = SkewQuery(model="fraud-scorer", start=T0, end=T0 + HOUR, join_key="request_id")
    report = analyze_skew(db, query, settings=drift_settings)
    result = report.result
    assert result.schema.extra == ("device",)
    assert result.schema.missing == ()
    assert result.schema.unseen_categories["country"]["values"] == ["BR"]
    assert result.num_joined == 500
    amount = next(v for v in result.values if v.feature == "amount")
    assert amount.mismatch_rate == pytest.approx(0.2)
    num_tx = next(v for v in result.values if v.feature == "num_tx")
    assert num_tx.mismatch_rate == 0.0
    with pytest.raises(DriftInputError, match="no column 'user'"):
        analyze_skew(
            db,
            SkewQuery(model="fraud-scorer", start=T0, end=NOW, join_key="user"),
            settings=drift_settings,
        )
    newest = SkewQuery(
        model="fraud-scorer", start=T0, end=T0 + HOUR, join_key="request_id", max_rows=100
    )
    sampled = analyze_skew(db, newest, settings=drift_settings)
    assert (sampled.num_rows_serving, sampled.result.num_joined) == (100, 100)


def test_reference_replacement_and_bad_input(db: Database) -> None:
    stored_reference(db, training_frame(100), model="m", max_rows=50)
    stored_reference(db, training_frame(200), model="m", max_rows=50, now=T0 + HOUR)
    with db.sessions() as session:
        stored = reference_store.list_reference_datasets(session, model="m")
        assert len(stored) == 1
        assert stored[0].num_rows == 200
        assert len(reference_store.load_reference_rows(session, stored[0].id)) == 50
    with pytest.raises(ReferenceError, match="no rows or no columns"):
        stored_reference(db, pd.DataFrame(), model="m", name="x", max_rows=5)
    with db.sessions() as session:
        assert len(reference_store.list_reference_datasets(session, model="m")) == 1


def test_whylogs_profile_as_reference_and_as_serving(
    db: Database, drift_settings: Settings
) -> None:
    pytest.importorskip("whylogs")
    result = import_whylogs(
        db,
        DATA / "whylogs_reference.bin",
        model="fraud-scorer",
        model_version="v1",
        as_reference=True,
        name="wl",
        now=T0,
    )
    assert result["num_features"] == 4
    assert result["num_rows"] == 5000
    source = pd.read_parquet(DATA / "whylogs_reference_source.parquet")
    stored_reference(db, source, name="exact", max_rows=10, now=T0 - HOUR)
    hour = T0 + 2 * HOUR
    import_whylogs(
        db,
        DATA / "whylogs_reference.bin",
        model="fraud-scorer",
        model_version="v1",
        as_reference=False,
        hour=hour,
        now=T0,
    )
    settings = drift_settings.model_copy(update={"drift_raw_max_hours": 0.0})
    query = DriftQuery(model="fraud-scorer", start=hour, end=hour + HOUR, reference="exact")
    report = analyze_drift(db, query, settings=settings, now=NOW)
    # The same data, profiled by whylogs and by observe: no drift, close statistics.
    assert report.num_rows_current == 5000
    assert not report.result.dataset_drifted
    assert report.result.feature("amount").statistic < 0.05  # whylogs sketches are coarser
    assert report.result.feature("country").statistic == pytest.approx(0.0, abs=1e-9)
    assert report.result.feature("num_tx").kind == "categorical"
    with pytest.raises(WhylogsImportError, match="not a whylogs profile"):
        import_whylogs(
            db, DATA / "records.csv", model="m", model_version="v1", as_reference=True, now=T0
        )


def test_long_windows_merge_whole_days_and_the_hours_at_their_ends(
    db: Database, drift_settings: Settings
) -> None:
    from observe.pipeline.drift import load_window_profiles

    start = T0 - 2 * HOUR  # 10:00 on day one
    store(db, serving(3000, start=start, hours=50, shift=0, seed=12))
    refresh_profiles(db.write_sessions, now=NOW, lag_seconds=0)
    end = start + 50 * HOUR  # 12:00 on day three
    with db.sessions() as session:
        parts = load_window_profiles(session, "fraud-scorer", None, start, end)
    day_two = pd.Timestamp(T0.replace(hour=0) + dt.timedelta(days=1))
    starts = sorted(parts["start"].unique())
    assert day_two in starts  # one daily row for the whole day inside
    assert len(starts) == 14 + 1 + 12  # 14 hours of day one, day two, 12 hours of day three
    settings = drift_settings.model_copy(update={"drift_raw_max_hours": 1.0})
    query = DriftQuery(
        model="fraud-scorer", start=start, end=end, baseline_start=start, baseline_end=end
    )
    report = analyze_drift(db, query, settings=settings, now=NOW)
    assert report.result.source == "profiles"
    assert report.num_rows_current == 3000
    country = report.result.feature("country")
    assert country.statistic == pytest.approx(0.0, abs=1e-12)
    # KLL merges compact at random: two merges of the same hours differ within the tolerance.
    assert report.result.feature("amount").statistic < 0.025
    assert not report.result.dataset_drifted
