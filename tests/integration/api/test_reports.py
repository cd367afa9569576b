"""GET /api/v1/reports, /api/v1/reports/{id}, /api/v1/reports/{id}/html and /api/v1/alerts."""

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
from tests.conftest import bearer
from tests.integration.api.helpers import app_client
from tests.integration.pipeline.report_scenario import REPORT_AT, WEEK, write_small_week


@pytest.fixture
def api(db: Database, tmp_path: Path) -> Iterator[Any]:
    with app_client(db, tmp_path, auth_enabled=False) as client:
        yield client


def test_reports_are_listed_with_their_deliveries(
    db: Database, settings: Settings, api: Any
) -> None:
    write_small_week(db, settings)
    reports.queue_week_delivery(db, WEEK, ["directory", "webhook"], now=REPORT_AT)
    with db.write_sessions.begin() as session:
        [first, _] = delivery_store.claim_due_deliveries(session, now=REPORT_AT, lease_seconds=1)
        delivery_store.record_delivery_failure(
            session, first.id, error="disk full", now=REPORT_AT, retry_at=None
        )

    body = api.get("/api/v1/reports").json()

    summary, model = body["items"]
    assert (summary["kind"], summary["model"], summary["week"]) == ("summary", None, "2026-W47")
    assert (model["kind"], model["model"]) == ("model", "fraud-scorer")
    assert summary["window"] == {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z"}
    assert summary["num_needs_attention"] >= 0
    deliveries = {d["channel"]: d for d in model["deliveries"]}
    assert deliveries["directory"]["status"] == "failed"
    assert deliveries["directory"]["last_error"] == "disk full"
    assert deliveries["webhook"]["status"] == "pending"
    assert deliveries["webhook"]["attempts"] == 1
    only = api.get("/api/v1/reports", params={"model": "fraud-scorer"}).json()["items"]
    assert [r["id"] for r in only] == [model["id"]]
    assert api.get("/api/v1/reports", params={"week": "2026W46"}).json()["items"] == []
    assert len(api.get("/api/v1/reports", params={"kind": "summary"}).json()["items"]) == 1


def test_a_report_is_served_as_json_and_as_self_contained_html(
    db: Database, settings: Settings, api: Any
) -> None:
    write_small_week(db, settings)
    [summary, model] = api.get("/api/v1/reports").json()["items"]

    content = api.get(f"/api/v1/reports/{model['id']}").json()
    page = api.get(f"/api/v1/reports/{model['id']}/html")
    overview = api.get(
        "/api/v1/models", params={"start": WEEK.start.isoformat(), "end": WEEK.end.isoformat()}
    ).json()["models"][0]

    assert content["kind"] == "model"
    assert content["week"] == "2026-W47"
    assert content["overview"] == overview
    assert content["traffic"]["num_requests"]["current"] == 300
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'filename="observe-2026-W47-fraud-scorer.html"' in page.headers["content-disposition"]
    assert "plotly.js v" in page.text
    assert api.get(f"/api/v1/reports/{summary['id']}").json()["kind"] == "summary"


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/api/v1/reports/999", 404, "no report with id 999"),
        ("/api/v1/reports/999/html", 404, "no report with id 999"),
        ("/api/v1/reports/99999999999999999999", 404, "no report with id"),
        ("/api/v1/reports?week=last", 422, "week: 'last' is not an ISO week"),
        ("/api/v1/reports?week=2027-W53", 422, "week: 2027 has no week 53"),
        ("/api/v1/reports?kind=other", 422, ""),
        ("/api/v1/reports?limit=0", 422, ""),
        ("/api/v1/alerts?state=closed", 422, ""),
    ],
)
def test_bad_requests_get_4xx_naming_the_problem(
    api: Any, path: str, status: int, detail: str
) -> None:
    response = api.get(path)

    assert response.status_code == status
    assert detail in str(response.json()["detail"])


def test_alerts_are_listed_newest_first_with_their_deliveries(db: Database, api: Any) -> None:
    now = dt.datetime(2026, 11, 18, 13, tzinfo=dt.UTC)
    ids = []
    for state, at in (("opened", now), ("resolved", now + dt.timedelta(hours=3))):
        alert = NewAlert(
            "latency_regression:k",
            "subject",
            state,
            "latency_regression",
            "fraud-scorer",
            "v2",
            4,
            f"{state}: p95 rose",
            {"link": "x"},
        )
        with db.write_sessions.begin() as session:
            ids.append(alert_store.insert_alert(session, alert, now=at))
            delivery_store.enqueue_deliveries(
                session, channels=["webhook"], now=at, alert_id=ids[-1]
            )

    body = api.get("/api/v1/alerts").json()
    resolved = api.get("/api/v1/alerts", params={"state": "resolved"}).json()

    assert [a["id"] for a in body["items"]] == ids[::-1]
    first = body["items"][1]
    assert (first["state"], first["model_version"], first["details"]) == (
        "opened",
        "v2",
        {"link": "x"},
    )
    assert [d["status"] for d in first["deliveries"]] == ["pending"]
    assert [a["state"] for a in resolved["items"]] == ["resolved"]
    assert api.get("/api/v1/alerts", params={"model": "other"}).json()["items"] == []


def test_reports_and_alerts_need_a_read_key(
    db: Database, tmp_path: Path, api_keys: dict[str, str]
) -> None:
    with app_client(db, tmp_path) as client:
        for path in ("/api/v1/reports", "/api/v1/alerts"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers=bearer(api_keys["ingest"])).status_code == 403
            assert client.get(path, headers=bearer(api_keys["read"])).status_code == 200
