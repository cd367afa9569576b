"""dashboards.data on a seeded incident, on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboards import data
from observe.db.engine import Database
from tests.integration.dashboards import seed

END = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)
WINDOW = data.Window(END - dt.timedelta(hours=24), END)


@pytest.fixture
def seeded(db: Database) -> seed.Seeded:
    return seed.seed_incident(db, end=END)


def test_overview_lists_models_with_traffic_slo_verdicts_and_findings(
    db: Database, seeded: seed.Seeded
) -> None:
    overview = data.load_overview(db.sessions, WINDOW)

    rows = {row.model.name: row for row in overview.rows}
    assert sorted(rows) == ["fraud-scorer", "ranker"]
    fraud, ranker = rows["fraud-scorer"], rows["ranker"]
    assert fraud.model.num_requests == seed.NUM_V1 + seed.NUM_V2
    assert fraud.model.num_errors == seed.NUM_V2_ERRORS
    assert fraud.model.p95 == pytest.approx(100.0, rel=0.01)
    assert fraud.slo.kind == "breached"
    assert fraud.slo.text.startswith("breached: p95 ")
    assert "errors" not in fraud.slo.text  # 0.65 % errors meet the 1 % objective
    assert (fraud.drift.text, fraud.num_open_regressions) == ("drifting", 1)
    assert fraud.open_findings == {"drift": 1, "latency_regression": 1}
    assert ranker.model.num_requests == seed.NUM_RANKER
    assert (ranker.slo.text, ranker.drift.text, ranker.num_open_findings) == (
        "meets SLO",
        "no drift",
        0,
    )


def test_overview_only_counts_findings_overlapping_the_window(
    db: Database, seeded: seed.Seeded
) -> None:
    earlier = data.Window(END - dt.timedelta(days=3), END - dt.timedelta(days=2))

    overview = data.load_overview(db.sessions, earlier)

    assert all(row.num_open_findings == 0 for row in overview.rows)
    assert all(row.slo.text == "no traffic" for row in overview.rows)


def test_latency_view_has_a_series_per_version_with_events_and_change_points(
    db: Database, seeded: seed.Seeded
) -> None:
    view = data.load_latency(db.sessions, model="fraud-scorer", window=WINDOW, bucket_seconds=3600)

    assert view.bucket_seconds == 3600
    assert view.source == "rollups"
    per_version = view.frame.groupby("series")["num_requests"].sum().to_dict()
    assert per_version == {"v1": seed.NUM_V1, "v2": seed.NUM_V2}
    v2 = view.frame[view.frame["series"] == "v2"]
    assert v2["p95"].tolist() == pytest.approx([100.0, 100.0], rel=0.01)
    [deploy] = view.events
    assert (deploy.at, deploy.kind, deploy.description) == (
        seeded.deploy_at,
        "deploy",
        seed.DEPLOY_DESCRIPTION,
    )
    [point] = view.change_points
    assert (point.at, point.summary, point.status) == (
        seeded.deploy_at,
        seed.REGRESSION_SUMMARY,
        "open",
    )
    assert view.slo is not None
    assert view.slo.latency_ms == 60


def test_latency_view_by_tag_and_percentile(db: Database, seeded: seed.Seeded) -> None:
    view = data.load_latency(
        db.sessions,
        model="fraud-scorer",
        window=WINDOW,
        by="host",
        percentile=99.0,
        rollup_tags=("host",),
    )

    assert set(view.frame["series"]) == {"gpu-1", "gpu-2"}
    assert view.percentile_column == "p99"
    assert view.frame["num_requests"].sum() == seed.NUM_V1 + seed.NUM_V2
    assert view.bucket_seconds == 300  # 24 hours in at most 600 points


def test_latency_view_refuses_unknown_models_and_groupings(
    db: Database, seeded: seed.Seeded
) -> None:
    with pytest.raises(data.InputError, match="no model named 'nope'"):
        data.load_latency(db.sessions, model="nope", window=WINDOW)
    with pytest.raises(data.InputError, match="by: 'region' is not one of model_version, all"):
        data.load_latency(db.sessions, model="fraud-scorer", window=WINDOW, by="region")


def test_model_names(db: Database, seeded: seed.Seeded) -> None:
    assert data.list_model_names(db.sessions) == ["fraud-scorer", "ranker"]


def test_infra_view_per_host_and_device(db: Database, seeded: seed.Seeded) -> None:
    view = data.load_infra(db.sessions, window=WINDOW)

    assert view.available_hosts == ["gpu-1", "gpu-2"]
    assert view.bucket_seconds == 300
    temperature = view.chart_frame("gpu_temperature_c")
    hot = temperature[temperature["host"] == "gpu-2"]
    assert hot["max"].max() == seed.HOT_GPU_TEMPERATURE_C
    summary = data.summarize_resources(view).set_index("host")
    assert summary.loc["gpu-2", "max_temperature_c"] == seed.HOT_GPU_TEMPERATURE_C
    assert summary.loc["gpu-1", "mean_utilization_pct"] == pytest.approx(40.0)


def test_infra_view_of_chosen_hosts(db: Database, seeded: seed.Seeded) -> None:
    view = data.load_infra(db.sessions, window=WINDOW, hosts=["gpu-1"])

    assert set(view.frame["host"]) == {"gpu-1"}
    assert view.available_hosts == ["gpu-1", "gpu-2"]  # the picker still offers every host
