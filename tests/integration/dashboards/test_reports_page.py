"""The reports page over HTTP, as the browser calls it: the list of reports with their
deliveries, the alerts, and the report files behind the login."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import reports
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage.alerts import NewAlert
from tests.integration.api.helpers import app_client
from tests.integration.dashboards.helpers import call, response_props, texts
from tests.integration.pipeline.report_scenario import REPORT_AT, WEEK, write_small_week


@pytest.fixture
def ui(db: Database, tmp_path: Path) -> Iterator[Any]:
    with app_client(db, tmp_path, auth_enabled=False) as client:
        yield client


def show(ui: Any, week: str | None = None, model: str | None = None) -> dict[str, Any]:
    return response_props(call(ui, "reports-status", [week, model]))


def seed(db: Database, settings: Settings) -> None:
    write_small_week(db, settings)
    reports.queue_week_delivery(db, WEEK, ["webhook"], now=REPORT_AT)
    with db.write_sessions.begin() as session:
        [delivery] = delivery_store.claim_due_deliveries(session, now=REPORT_AT, lease_seconds=1)
        delivery_store.record_delivery_failure(
            session,
            delivery.id,
            error="webhook answered HTTP 500",
            now=REPORT_AT,
            retry_at=REPORT_AT + dt.timedelta(minutes=1),
        )
        alert = NewAlert(
            "latency_regression:k",
            "s",
            "opened",
            "latency_regression",
            "fraud-scorer",
            "v2",
            1,
            "p95 of fraud-scorer v2 doubled",
            {"link": "http://observe/ui/triage?model=x"},
        )
        alert_store.insert_alert(session, alert, now=REPORT_AT)


def test_without_reports_the_page_says_how_they_are_made(ui: Any) -> None:
    props = show(ui)

    shown = texts(props["reports-table"]["children"])
    assert "No weekly reports yet" in shown
    assert "OBSERVE_REPORT_CRON" in shown
    assert props["reports-status"]["children"] == "0 reports · 0 alerts"


def test_the_page_lists_reports_with_deliveries_and_alerts(
    db: Database, settings: Settings, ui: Any
) -> None:
    seed(db, settings)

    props = show(ui)

    table = props["reports-table"]["children"]
    rows = table["props"]["children"][1]["props"]["children"]
    assert [row["props"]["data-report"] for row in rows] == [
        "2026-W47/summary",
        "2026-W47/fraud-scorer",
    ]
    shown = texts(table)
    assert "All models (summary)" in shown
    assert "webhook pending (1 attempt)" in shown
    assert "/ui/reports/2026-W47/fraud-scorer.html" in str(table)
    alerts = texts(props["reports-alerts"]["children"])
    assert "p95 of fraud-scorer v2 doubled" in alerts
    assert "opened" in alerts
    assert props[next(k for k in props if '"param":"week"' in k)]["options"] == [
        {"label": "2026-W47", "value": "2026-W47"}
    ]
    only = show(ui, model="fraud-scorer")
    assert "All models (summary)" not in texts(only["reports-table"]["children"])
    assert "week: 'soon' is not an ISO week" in str(show(ui, week="soon")["reports-status"])


def test_report_files_are_served_as_html_and_json(
    db: Database, settings: Settings, ui: Any
) -> None:
    seed(db, settings)

    page = ui.get("/ui/reports/2026-W47/fraud-scorer.html")
    data = ui.get("/ui/reports/2026-W47/summary.json")
    api = ui.get("/api/v1/reports", params={"kind": "summary"}).json()["items"][0]

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "plotly.js v" in page.text
    assert 'href="summary.html"' in page.text  # beside the week's other reports
    assert data.json() == ui.get(f"/api/v1/reports/{api['id']}").json()
    for missing in (
        "/ui/reports/2026-W47/nobody.html",
        "/ui/reports/2026-W46/summary.html",
        "/ui/reports/someday/summary.html",
        "/ui/reports/2026-W47/summary.txt",
    ):
        assert ui.get(missing).status_code == 404, missing


def test_report_files_need_a_login(db: Database, settings: Settings, tmp_path: Path) -> None:
    seed(db, settings)
    with app_client(db, tmp_path) as client:
        response = client.get("/ui/reports/2026-W47/summary.html", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=")
