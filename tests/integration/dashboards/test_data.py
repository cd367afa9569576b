"""dashboards.data on a seeded incident, on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboards import data
from dashboards.data import drift as drift_data
from dashboards.data import profiler as profiler_data
from dashboards.data import traces as trace_data
from dashboards.data import triage as triage_data
from observe.db.engine import Database
from tests.conftest import make_settings
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


# --- the canary incident: triage, drift, skew, traces, profiler --------------------------------

SETTINGS = make_settings(profiling_lag_seconds=0)


@pytest.fixture
def canary(db: Database) -> seed.Canary:
    return seed.seed_canary(db, end=END)


def test_the_canary_regression_is_listed_with_its_first_hour(
    db: Database, canary: seed.Canary
) -> None:
    [regression] = triage_data.load_regressions(db.sessions, seed.CANARY_MODEL)

    assert (regression.model_version, regression.summary) == ("v7", seed.CANARY_SUMMARY)
    assert regression.onset_at == canary.onset_at
    window = regression.window(now=END + dt.timedelta(days=1))
    assert (window.start, window.end) == (canary.onset_at, canary.window_end)


def test_triage_of_the_canary_names_the_operator_then_the_deploy(
    db: Database, canary: seed.Canary
) -> None:
    windows = triage_data.resolve_windows(
        canary.onset_at.isoformat(), canary.window_end.isoformat()
    )

    view = triage_data.load_triage(
        db.sessions, model=seed.CANARY_MODEL, windows=windows, rollup_tags=("host",)
    )

    statuses = {check.check: check.status for check in view.diagnosis.steps}
    assert statuses["versions"] == statuses["operators"] == statuses["changes"] == "fail"
    assert statuses["traffic"] == statuses["dependencies"] == "pass"
    assert statuses["segments"] == "skipped"
    top, second = view.diagnosis.causes[:2]
    assert (top.kind, top.scope) == (
        "model_operator",
        {"operator": seed.CHANGED_OPERATOR, "model_version": "v7"},
    )
    assert (second.kind, second.scope) == ("deploy", {"model_version": "v7"})
    assert view.profiles is not None
    assert [p.id for p in view.profiles] == [canary.profile_ids["v6"], canary.profile_ids["v7"]]
    durations = [trace["duration_ms"] for trace in view.slow_traces]
    assert len(durations) == triage_data.NUM_SLOW_TRACES
    assert durations == sorted(durations, reverse=True)
    assert all(windows.start <= t["start_at"] < windows.end for t in view.slow_traces)
    assert len(view.inputs.minute_series) == 120


def test_triage_refuses_a_model_that_does_not_exist(db: Database, canary: seed.Canary) -> None:
    windows = triage_data.resolve_windows("-1h", None)

    with pytest.raises(data.InputError, match="no model named 'nope'"):
        triage_data.load_triage(db.sessions, model="nope", windows=windows, rollup_tags=())


def test_drift_of_the_canary_day_against_the_training_reference(
    db: Database, canary: seed.Canary
) -> None:
    view = drift_data.load_drift(
        db, SETTINGS, model=seed.CANARY_MODEL, window=WINDOW, now=dt.datetime.now(dt.UTC)
    )

    verdicts = {f.feature: f.drifted for f in view.result.features}
    assert verdicts == {"amount": True, "country": True, "num_items": False}
    assert view.report.baseline.reference is not None
    assert view.report.baseline.reference.name == seed.REFERENCE_NAME
    assert view.result.skipped["device"] == "not in the reference data"
    assert view.bucket_seconds == 3600
    cells = drift_data.timeline_cells(view.timeline)
    after = [c for c in cells if c.start >= canary.onset_at]
    assert {c.feature for c in after if c.drifted} == {"amount", "country"}
    assert not any(c.drifted for c in cells if c.feature == "num_items")


def test_drift_against_an_empty_baseline_window_says_so(db: Database, canary: seed.Canary) -> None:
    baseline = drift_data.Baseline(END - dt.timedelta(days=3), END - dt.timedelta(days=2))

    with pytest.raises(data.InputError, match="the baseline has no data"):
        drift_data.load_drift(
            db, SETTINGS, model=seed.CANARY_MODEL, window=WINDOW, baseline=baseline, now=END
        )


def test_skew_of_the_canary_against_training_joined_on_request_id(
    db: Database, canary: seed.Canary
) -> None:
    report = drift_data.load_skew(
        db, SETTINGS, model=seed.CANARY_MODEL, window=WINDOW, join_key="request_id"
    )

    schema = report.result.schema
    assert (schema.missing, schema.extra) == (("channel",), ("device",))
    assert schema.unseen_categories["country"]["values"] == [seed.UNSEEN_COUNTRY]
    values = {v.feature: v for v in report.result.values}
    assert report.result.num_joined == seed.NUM_REFERENCE
    assert values["amount"].mismatch_rate == pytest.approx(1 / seed.SKEWED_EVERY)
    assert values["amount"].max_abs_diff == pytest.approx(10.0)
    assert values["country"].num_mismatched == 0


def test_traces_of_the_canary_slowest_first_with_the_tree_of_one(
    db: Database, canary: seed.Canary
) -> None:
    view = trace_data.load_traces(
        db.sessions, model=seed.CANARY_MODEL, window=WINDOW, trace_id=canary.slowest_trace_id
    )

    assert view.traces[0]["trace_id"] == canary.slowest_trace_id
    assert len(view.traces) == trace_data.NUM_TRACES
    assert view.selected is not None
    assert not view.is_default
    spans = trace_data.span_records(view.selected)
    assert [(s["name"], s["depth"]) for s in spans] == [
        ("predict", 0),
        ("feature_store.lookup", 1),
        ("forward", 1),
    ]
    assert spans[1]["attributes"] == {"db.system": "redis", "keys": 12}
    names = set(view.span_series.frame["series"])
    assert names == {"predict", "feature_store.lookup", "forward"}
    lookups = view.span_series.frame[view.span_series.frame["series"] == "feature_store.lookup"]
    assert lookups["p95"].to_numpy() == pytest.approx(seed.LOOKUP_MS, rel=0.01)


def test_traces_default_to_the_slowest_and_refuse_an_unknown_one(
    db: Database, canary: seed.Canary
) -> None:
    view = trace_data.load_traces(db.sessions, model=seed.CANARY_MODEL, window=WINDOW)

    assert view.is_default
    assert view.selected is not None
    assert view.selected.trace_id == canary.slowest_trace_id
    with pytest.raises(data.InputError, match="no spans or records with trace id"):
        trace_data.load_traces(
            db.sessions, model=seed.CANARY_MODEL, window=WINDOW, trace_id="f" * 32
        )


def test_profiler_of_the_canary_diffs_v7_against_v6(db: Database, canary: seed.Canary) -> None:
    view = profiler_data.load_profiler(db.sessions, model=seed.CANARY_MODEL)

    assert [p.model_version for p in view.profiles] == ["v7", "v6"]
    assert view.profile is not None
    assert view.profile.id == canary.profile_ids["v7"]
    assert view.diff is not None
    assert (view.diff.base.id, view.diff.target.id) == (
        canary.profile_ids["v6"],
        canary.profile_ids["v7"],
    )
    assert view.diff.operators[0].name == seed.CHANGED_OPERATOR
    assert "Trace" in view.categories
    assert all(op.category != "Trace" for op in view.operators)
    assert view.operators[0].name == seed.CHANGED_OPERATOR
    assert view.step == view.steps[0].step
    assert view.timeline is not None
    assert view.timeline.events


def test_profiler_category_filter_and_a_step_that_does_not_exist(
    db: Database, canary: seed.Canary
) -> None:
    view = profiler_data.load_profiler(
        db.sessions, model=seed.CANARY_MODEL, categories=["user_annotation"]
    )

    assert {op.category for op in view.operators} == {"user_annotation"}
    with pytest.raises(data.InputError, match="has no profiler step 99"):
        profiler_data.load_profiler(db.sessions, model=seed.CANARY_MODEL, step=99)
    with pytest.raises(data.InputError, match="give both base and target"):
        profiler_data.load_profiler(db.sessions, model=seed.CANARY_MODEL, base_id=1)
