"""observe.pipeline.latency_analysis on both databases: seeded histories whose regression,
carrier and preceding event are known."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import delete

from observe.db.engine import Database
from observe.db.models import InferenceRecord
from observe.pipeline import latency_analysis
from observe.storage import findings as finding_store
from observe.storage import models as model_store
from tests.conftest import make_settings
from tests.factories import T0
from tests.integration.pipeline import latency_scenarios as scenarios

START, END = T0 - scenarios.HISTORY, T0 + scenarios.AFTER
NOW = END


def regressions(db: Database, **options: Any) -> list[latency_analysis.Regression]:
    arguments: dict[str, Any] = {
        "model": "fraud-scorer",
        "start": START,
        "end": END,
        "rollup_tags": scenarios.ROLLUP_TAGS,
    }
    with db.sessions() as session:
        return latency_analysis.detect_regressions(session, **(arguments | options))


def test_a_canary_regression_is_carried_by_its_version_and_follows_its_event(
    db: Database,
) -> None:
    scenarios.store(db, *scenarios.canary_history())

    found = [r for r in regressions(db) if r.series == "all"]

    assert {95.0, 99.0} <= {r.percentile for r in found}
    p95 = next(r for r in found if r.percentile == 95.0)
    assert p95.onset_at == T0
    assert p95.is_open
    assert p95.cleared_at is None
    assert p95.ratio > 1.5
    assert p95.model_version == "v2"
    assert (p95.carriers[0]["dimension"], p95.carriers[0]["value"]) == ("model_version", "v2")
    assert p95.carriers[0]["share_after"] == pytest.approx(0.3, abs=0.03)
    assert p95.event is not None
    assert (p95.event["kind"], p95.event["model_version"]) == ("canary", "v2")
    assert p95.event["seconds_before_onset"] == 60.0
    test = p95.significance
    assert test["source"] == "records"
    assert test["quantile_test"]["p_value"] < 1e-10
    assert test["mann_whitney"]["cliffs_delta"] > 0
    assert test["mann_whitney"]["median_ratio"] > 1.0


def test_a_canary_is_compared_with_the_versions_serving_beside_it(db: Database) -> None:
    scenarios.store(db, *scenarios.canary_history())

    found = [r for r in regressions(db) if r.series == "v2"]

    assert {r.percentile for r in found} == {50.0, 95.0, 99.0}
    p95 = next(r for r in found if r.percentile == 95.0)
    assert p95.onset_at == T0
    assert p95.is_open  # v1 still serves beside it
    assert p95.ratio == pytest.approx(2.5, rel=0.15)
    assert p95.significance["comparison"] == "concurrent versions"
    assert p95.significance["baseline_versions"] == ["v1"]
    assert p95.significance["quantile_test"]["p_value"] < 1e-10
    assert p95.event is not None
    assert p95.event["model_version"] == "v2"
    assert p95.model_version == "v2"


@pytest.mark.parametrize(("slowdown", "expected"), [(1.0, set()), (1.3, {"v2"})])
def test_a_small_canary_is_found_by_the_comparison_alone(
    db: Database, slowdown: float, expected: set[str]
) -> None:
    scenarios.store(db, *scenarios.canary_history(share=0.05, slowdown=slowdown))

    found = regressions(db, percentiles=[50, 95])

    assert {r.series for r in found} == expected  # 5 % of the requests: the model barely moves
    findings = latency_analysis.regression_findings(found, [], bucket_seconds=300)
    assert [f.model_version for f in findings] == sorted(expected)
    assert all(f.status == "open" for f in findings)


def test_a_canary_rolled_out_in_full_ends_the_comparison(db: Database) -> None:
    items, events = scenarios.canary_history()
    rollout = T0 + dt.timedelta(hours=1)
    items = [
        item.model_copy(update={"model_version": "v2"}) if item.timestamp >= rollout else item
        for item in items
    ]
    scenarios.store(db, items, events)

    [p95] = [r for r in regressions(db, percentiles=[95]) if r.series == "v2"]

    assert not p95.is_open
    assert p95.cleared_at == rollout


def test_a_slow_host_is_found_in_its_version_and_carried_by_the_host(db: Database) -> None:
    scenarios.store(db, *scenarios.host_history())

    found = regressions(db, percentiles=[95])

    assert {r.series for r in found} == {"all", "v1"}
    for regression in found:
        assert regression.onset_at == T0
        assert (regression.carriers[0]["dimension"], regression.carriers[0]["value"]) == (
            "host",
            "gpu-3",
        )
        assert regression.carriers[0]["explained"] > 0.8
        assert regression.event is None  # nothing was deployed


def test_steady_heavy_tailed_latency_is_no_regression(db: Database) -> None:
    scenarios.store(db, *scenarios.steady_history())

    assert regressions(db) == []


def test_the_daily_pattern_is_no_regression_but_a_regression_on_top_of_it_is(
    db: Database,
) -> None:
    window = {"start": T0 - dt.timedelta(days=2), "end": T0, "percentiles": [50]}
    scenarios.store(db, *scenarios.diurnal_history())

    assert regressions(db, **window) == []

    with db.write_sessions.begin() as session:
        session.execute(delete(InferenceRecord))
    onset = T0 - dt.timedelta(hours=30)  # 06:00 on the last day but one: a quiet morning
    items, _ = scenarios.diurnal_history(regression_at=onset)
    scenarios.store(db, [r.model_copy(update={"model": "slow"}) for r in items], [])
    found = regressions(db, model="slow", **window)

    assert {(r.series, r.onset_at) for r in found} == {("all", onset), ("v1", onset)}


def test_without_raw_records_the_test_reads_the_rollup_histograms(db: Database) -> None:
    scenarios.store(db, *scenarios.canary_history())
    with db.write_sessions.begin() as session:  # retention removed the raw rows
        session.execute(delete(InferenceRecord))

    [p95] = [r for r in regressions(db, percentiles=[95]) if r.series == "all"]

    assert p95.significance["source"] == "rollups"
    assert p95.significance["quantile_test"]["p_value"] < 1e-10
    assert p95.model_version == "v2"


def test_one_version_only(db: Database) -> None:
    scenarios.store(db, *scenarios.host_history())

    found = regressions(db, model_versions=["v1"], percentiles=[50, 95])

    assert {(r.series, r.percentile) for r in found} == {("all", 50.0), ("all", 95.0)} | {
        ("v1", 50.0),
        ("v1", 95.0),
    }


def test_a_window_with_too_many_buckets_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="buckets"):
        regressions(db, start=END - dt.timedelta(days=400), bucket_seconds=60)


def test_findings_are_one_per_incident_and_keep_their_key_on_a_rerun(db: Database) -> None:
    scenarios.store(db, *scenarios.canary_history())
    settings = make_settings(rollup_tags=",".join(scenarios.ROLLUP_TAGS))

    first = latency_analysis.findings_for_model(db, "fraud-scorer", now=NOW, settings=settings)
    with db.write_sessions.begin() as session:
        finding_store.upsert_findings(session, first, now=NOW)
    later = NOW + dt.timedelta(minutes=7)
    second = latency_analysis.findings_for_model(db, "fraud-scorer", now=later, settings=settings)

    [finding] = first
    assert finding.kind == "latency_regression"
    assert finding.model_version == "v2"
    assert finding.status == "open"
    assert "rose from" in finding.summary
    assert "canary v2" in finding.summary
    percentiles = {r["percentile"] for r in finding.details["regressions"]}
    assert {95.0, 99.0} <= percentiles
    assert [f.dedupe_key for f in second] == [finding.dedupe_key]


def test_a_cleared_regression_is_reported_resolved(db: Database) -> None:
    items, events = scenarios.canary_history()
    rollback = T0 + dt.timedelta(hours=1)
    kept = [r for r in items if not (r.timestamp >= rollback and r.model_version == "v2")]
    scenarios.store(db, kept, events)

    found = regressions(db, percentiles=[95])
    findings = latency_analysis.regression_findings(found, [], bucket_seconds=300)

    assert {r.series for r in found} == {"all", "v2"}
    for p95 in found:
        assert not p95.is_open
        assert p95.cleared_at == rollback
    assert [f.status for f in findings] == ["resolved"]  # one incident: v2's
    assert findings[0].window_end == rollback


def test_an_slo_breach_is_open_while_the_latest_hour_breaches_it(db: Database) -> None:
    scenarios.store(db, *scenarios.canary_history())
    with db.write_sessions.begin() as session:
        model_store.set_slo(
            session,
            "fraud-scorer",
            latency_percentile=95,
            latency_ms=90.0,
            error_rate_pct=50.0,
            now=NOW,
        )

    with db.sessions() as session:
        breaches = latency_analysis.slo_findings(session, "fraud-scorer", now=NOW)
        later = latency_analysis.slo_findings(
            session, "fraud-scorer", now=NOW + dt.timedelta(hours=3)
        )

    [breach] = breaches
    assert breach.kind == "slo_breach"
    assert breach.window_start == T0  # the canary's first hour
    assert breach.details["objective"] == "latency"
    assert breach.details["hours_breached"] == 2
    assert breach.details["observed"] > 90.0
    assert later == []  # no traffic in the latest hour: nothing breaches now
