"""observe.pipeline.overview: per-model traffic, errors, percentiles and SLO status."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analyzers.histograms import RELATIVE_ACCURACY
from observe.db.engine import Database
from observe.pipeline import ingest, overview
from observe.schemas.records import InferenceRecordIn
from observe.storage import models as model_store
from tests.factories import T0, record

NOW = T0 + dt.timedelta(days=1)
WINDOW = {"start": T0, "end": T0 + dt.timedelta(hours=1)}


def latencies(count: int, seed: int) -> np.ndarray:
    return np.round(np.random.default_rng(seed).gamma(2.0, 30.0, count) + 1.0, 3)


def make_records(
    model: str, version: str, values: np.ndarray, *, num_errors: int, minute: int = 0
) -> list[InferenceRecordIn]:
    start = T0 + dt.timedelta(minutes=minute)
    return [
        InferenceRecordIn.model_validate(
            record(
                model=model,
                model_version=version,
                request_id=f"{model}-{version}-{minute}-{i}",
                timestamp=(start + dt.timedelta(seconds=i % 600)).isoformat(),
                latency_ms=float(value),
                status="error" if i < num_errors else "ok",
            )
        )
        for i, value in enumerate(values)
    ]


def store(db: Database, records: list[InferenceRecordIn]) -> None:
    with db.write_sessions.begin() as session:
        ingest.store_records(session, records, rollup_tags=(), now=NOW)


def set_slo(db: Database, model: str, **values: float | None) -> None:
    arguments = {"latency_percentile": None, "latency_ms": None, "error_rate_pct": None} | values
    with db.write_sessions.begin() as session:
        model_store.set_slo(session, model, now=NOW, **arguments)


def exact(values: np.ndarray, percentile: float) -> float:
    return float(np.percentile(values, percentile, method="lower"))


def close(estimate: float | None, truth: float) -> bool:
    return estimate is not None and abs(estimate - truth) <= RELATIVE_ACCURACY * truth + 1e-9


def test_overview_numbers_match_the_raw_data(db: Database) -> None:
    v1, v2 = latencies(600, seed=1), latencies(400, seed=2) * 1.5
    store(db, make_records("fraud-scorer", "v1", v1, num_errors=12))
    store(db, make_records("fraud-scorer", "v2", v2, num_errors=28, minute=20))
    store(db, make_records("fraud-scorer", "v0", latencies(5, 3), num_errors=0, minute=-600))
    both = np.concatenate([v1, v2])

    with db.sessions() as session:
        (model,) = overview.list_model_overviews(session, **WINDOW)

    assert (model.name, model.created_at, model.start, model.end) == (
        "fraud-scorer",
        NOW,
        WINDOW["start"],
        WINDOW["end"],
    )
    assert (model.num_requests, model.num_errors) == (1000, 40)
    assert model.error_rate == pytest.approx(0.04)
    assert model.mean_ms == pytest.approx(both.mean(), rel=1e-12)
    for percentile in (50, 95, 99):
        assert close(getattr(model, f"p{percentile}"), exact(both, percentile)), percentile
    stats = {v.model_version: v for v in model.versions}
    assert set(stats) == {"v0", "v1", "v2"}
    assert (stats["v1"].num_requests, stats["v1"].num_errors) == (600, 12)
    assert stats["v2"].error_rate == pytest.approx(28 / 400)
    assert close(stats["v2"].p95, exact(v2, 95))
    assert stats["v2"].first_seen_at == T0 + dt.timedelta(minutes=20)
    assert stats["v2"].last_seen_at == T0 + dt.timedelta(minutes=20, seconds=399)
    idle = stats["v0"]  # seen before the window: listed, with no traffic in it
    assert (idle.num_requests, idle.error_rate, idle.p95) == (0, None, None)
    assert idle.first_seen_at == T0 - dt.timedelta(hours=10)


def test_slo_status_against_a_percentile_outside_the_defaults(db: Database) -> None:
    values = latencies(500, seed=4)
    p90 = exact(values, 90)
    store(db, make_records("meets", "v1", values, num_errors=5))
    store(db, make_records("misses", "v1", values, num_errors=5))
    set_slo(db, "meets", latency_percentile=90, latency_ms=p90 * 1.05, error_rate_pct=1.0)
    set_slo(db, "misses", latency_percentile=90, latency_ms=p90 * 0.95, error_rate_pct=0.5)

    with db.sessions() as session:
        models = {m.name: m for m in overview.list_model_overviews(session, **WINDOW)}

    meets, misses = models["meets"].slo_status, models["misses"].slo_status
    assert close(meets.latency_ms, p90)
    assert meets.latency_ms == misses.latency_ms
    assert meets.error_rate_pct == pytest.approx(1.0)
    assert (meets.latency_ok, meets.error_rate_ok) == (True, True)
    assert (misses.latency_ok, misses.error_rate_ok) == (False, False)
    assert models["meets"].slo.latency_percentile == 90
    assert models["meets"].slo.updated_at == NOW


def test_a_model_with_an_slo_and_no_traffic(db: Database) -> None:
    set_slo(db, "new-model", latency_percentile=95, latency_ms=100, error_rate_pct=1)
    store(db, make_records("fraud-scorer", "v1", latencies(10, 5), num_errors=0, minute=120))

    with db.sessions() as session:
        models = {m.name: m for m in overview.list_model_overviews(session, **WINDOW)}

    for name in ("new-model", "fraud-scorer"):
        model = models[name]
        assert (model.num_requests, model.error_rate, model.p95) == (0, None, None)
        status = model.slo_status
        assert (status.latency_ms, status.latency_ok, status.error_rate_ok) == (None, None, None)
    assert models["new-model"].versions == []
    assert [v.num_requests for v in models["fraud-scorer"].versions] == [0]


def test_an_objective_left_out_is_not_judged(db: Database) -> None:
    store(db, make_records("fraud-scorer", "v1", latencies(50, 6), num_errors=50))
    set_slo(db, "fraud-scorer", error_rate_pct=10)

    with db.sessions() as session:
        model = overview.get_model_overview(session, "fraud-scorer", **WINDOW)
        assert overview.get_model_overview(session, "unknown", **WINDOW) is None

    assert model is not None
    status = model.slo_status
    assert (status.latency_ms, status.latency_ok) == (None, None)
    assert (status.error_rate_pct, status.error_rate_ok) == (100.0, False)


def test_the_window_is_reported_in_whole_minutes(db: Database) -> None:
    store(db, make_records("fraud-scorer", "v1", latencies(30, 7), num_errors=0))

    with db.sessions() as session:
        model = overview.get_model_overview(
            session,
            "fraud-scorer",
            start=T0 + dt.timedelta(seconds=10),
            end=T0 + dt.timedelta(seconds=20),
        )

    assert model is not None
    assert (model.start, model.end) == (T0, T0 + dt.timedelta(minutes=1))
    assert model.num_requests == 30
