"""The pages' callbacks over HTTP, as the browser calls them: what each page shows for seeded
data, for an empty database and for bad URL parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from observe.db.engine import Database
from tests.integration.api.helpers import app_client
from tests.integration.dashboards import seed
from tests.integration.dashboards.helpers import call, response_props, texts

LATENCY_ID = '{"page":"latency","param":"model","type":"url-param"}'


@pytest.fixture
def ui(db: Database, tmp_path: Path) -> Any:
    with app_client(db, tmp_path, auth_enabled=False) as client:
        yield client


def test_overview_of_an_empty_database_says_how_to_send_data(ui: Any) -> None:
    props = response_props(call(ui, "overview-status", ["-24h", ""]))

    shown = texts(props["overview-table"]["children"])
    assert "No data yet" in shown
    assert "observe import records FILE" in shown
    assert props["overview-status"]["children"].startswith("0 models")


def test_overview_rows_show_the_numbers_and_badges(db: Database, ui: Any) -> None:
    seed.seed_incident(db)

    props = response_props(call(ui, "overview-status", ["-24h", ""]))

    shown = texts(props["overview-table"]["children"])
    assert f"{seed.NUM_V1 + seed.NUM_V2:,}" in shown
    assert f"{seed.NUM_RANKER:,}" in shown
    assert "meets SLO" in shown
    assert any(text.startswith("breached: p95 ") for text in shown)
    assert "1 open" in shown
    assert "drift (1), latency_regression (1)" in shown
    figure = props["overview-slo-chart"]["figure"]
    assert list(figure["data"][0]["y"]) == ["fraud-scorer", "ranker"]


@pytest.mark.parametrize(
    ("start", "message"),
    [("yesterday", "start: "), ("-1x", "start: ")],
)
def test_a_bad_window_is_reported_on_the_page(ui: Any, start: str, message: str) -> None:
    props = response_props(call(ui, "overview-status", [start, ""]))

    assert message in " ".join(texts(props["overview-status"]["children"]))


def test_latency_page_offers_the_models_and_picks_the_first(db: Database, ui: Any) -> None:
    seed.seed_incident(db)

    props = response_props(
        call(ui, 'latency","param":"model","type":"url-param"}.options', [None, None])
    )

    assert props[LATENCY_ID]["options"] == [
        {"label": "fraud-scorer", "value": "fraud-scorer"},
        {"label": "ranker", "value": "ranker"},
    ]
    assert props[LATENCY_ID]["value"] == "fraud-scorer"


def test_latency_page_shows_series_events_and_change_points(db: Database, ui: Any) -> None:
    seed.seed_incident(db)

    props = response_props(
        call(ui, "latency-status", ["fraud-scorer", "-24h", "", "model_version", "95"])
    )

    status = props["latency-status"]["children"]
    assert f"{seed.NUM_V1 + seed.NUM_V2:,} requests" in status
    names = [trace["name"] for trace in props["latency-chart"]["figure"]["data"]]
    assert names[:2] == ["v1", "v2"]
    assert "SLO p95 ≤ 60 ms" in names
    assert "deploy events" in names
    assert "change points" in names
    markers = texts(props["latency-markers"]["children"])
    assert seed.DEPLOY_DESCRIPTION in markers
    assert seed.REGRESSION_SUMMARY in markers


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["nope", "-24h", "", "model_version", "95"], "no model named 'nope'"),
        (["fraud-scorer", "-24h", "", "gpu", "95"], "by: 'gpu' is not one of"),
        (["fraud-scorer", "-24h", "", "model_version", "101"], "percentile: must be between"),
    ],
)
def test_latency_page_reports_bad_parameters(
    db: Database, ui: Any, values: list[str], message: str
) -> None:
    seed.seed_incident(db)

    props = response_props(call(ui, "latency-status", values))

    assert message in " ".join(texts(props["latency-status"]["children"]))


def test_infra_page_shows_a_chart_per_metric_and_a_summary(db: Database, ui: Any) -> None:
    seed.seed_incident(db)

    props = response_props(call(ui, "infra-status", ["-24h", "", []]))

    charts = props["infra-charts"]["children"]
    assert [chart["props"]["id"] for chart in charts] == [
        "infra-chart-gpu_utilization_pct",
        "infra-chart-gpu_memory_used_mb",
        "infra-chart-gpu_temperature_c",
    ]
    summary = texts(props["infra-summary"]["children"])
    assert f"{seed.HOT_GPU_TEMPERATURE_C:.1f} °C" in summary
    options = props['{"page":"infra","param":"host","type":"url-param"}']["options"]
    assert [option["value"] for option in options] == ["gpu-1", "gpu-2"]


def test_infra_page_without_samples_says_how_to_send_them(ui: Any) -> None:
    props = response_props(call(ui, "infra-status", ["-24h", "", []]))

    assert "No GPU or host metrics in this window" in texts(props["infra-summary"]["children"])
