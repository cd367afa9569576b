"""`observe report` on both databases: files written and printed, stored reports reused, bad
weeks refused, and the week delivered on request."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from observe.cli import app
from observe.db.engine import Database
from observe.storage import deliveries as delivery_store
from observe.storage import reports as report_store
from tests.conftest import database_url
from tests.factories import records_in
from tests.integration.pipeline.report_scenario import WEEK
from tests.integration.test_cli import Invoke, cli, failed, json_of, succeeded

__all__ = ["cli"]  # the fixture


def seed(db: Database) -> None:
    from observe.pipeline import ingest

    items = records_in(200, start=WEEK.start, spacing_seconds=3000)
    items += records_in(20, start=WEEK.start, spacing_seconds=3000, prefix="r", model="ranker")
    with db.write_sessions.begin() as session:
        ingest.store_records(session, items, rollup_tags=("host",), now=WEEK.start)


def test_report_writes_html_and_json_per_model_and_a_summary(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    seed(db)
    out = tmp_path / "out"

    result = json_of(cli("report", "--week", "2026-W47", "--out", out, "--json"))
    again = json_of(cli("report", "--week", "2026W47", "--out", out, "--json"))
    text = succeeded(cli("report", "--week", "2026-W47", "--out", out)).stdout

    folder = out / "2026-W47"
    assert result["week"] == "2026-W47"
    assert result["window"] == {
        "start": "2026-11-16T00:00:00+00:00",
        "end": "2026-11-23T00:00:00+00:00",
    }
    assert result["num_written"] == 3
    assert [(r["kind"], r["model"]) for r in result["reports"]] == [
        ("summary", None),
        ("model", "fraud-scorer"),
        ("model", "ranker"),
    ]
    assert result["reports"][1]["files"] == [
        str(folder / "fraud-scorer.json"),
        str(folder / "fraud-scorer.html"),
    ]
    assert sorted(p.name for p in folder.iterdir()) == [
        "fraud-scorer.html",
        "fraud-scorer.json",
        "ranker.html",
        "ranker.json",
        "summary.html",
        "summary.json",
    ]
    content = json.loads((folder / "fraud-scorer.json").read_text())
    assert content["traffic"]["num_requests"]["current"] == 200
    assert again["num_written"] == 0  # stored before: reused, not written twice
    assert [r["id"] for r in again["reports"]] == [r["id"] for r in result["reports"]]
    assert "0 written now, 3 stored before" in text
    assert f"in {folder}" in text
    assert "summary.html summary.json" in text
    assert "deliveries" not in text


def test_report_of_one_model_writes_only_its_files(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    seed(db)

    result = json_of(
        cli("report", "--week", "2026-W47", "--model", "ranker", "--out", tmp_path, "--json")
    )

    assert [(r["kind"], r["model"]) for r in result["reports"]] == [("model", "ranker")]
    assert sorted(p.name for p in (tmp_path / "2026-W47").iterdir()) == [
        "ranker.html",
        "ranker.json",
    ]
    with db.sessions() as session:
        assert report_store.find_report(session, week="2026-W47", model=None) is None


def test_bad_weeks_and_models_are_refused_with_a_message(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    seed(db)

    failed(cli("report", "--week", "last", "--out", tmp_path), 2, "'last' is not an ISO week")
    failed(cli("report", "--week", "2027-W53", "--out", tmp_path), 2, "2027 has no week 53")
    failed(cli("report", "--week", "2099-W01", "--out", tmp_path), 2, "has not ended yet")
    failed(
        cli("report", "--week", "2026-W47", "--model", "nope", "--out", tmp_path),
        1,
        "no model named 'nope'",
    )
    failed(
        cli("report", "--week", "2026-W47", "--model", "ranker", "--deliver"),
        2,
        "--deliver sends the whole week",
    )
    with db.sessions() as session:
        assert report_store.list_reports(session) == []


def test_report_deliver_sends_the_week_and_reports_failures(db: Database, tmp_path: Path) -> None:
    seed(db)
    delivered = tmp_path / "delivered"
    env = {
        "OBSERVE_DATABASE_URL": database_url(db),
        "OBSERVE_DATA_DIR": str(tmp_path),
        "OBSERVE_REPORT_DIR": str(delivered),
        "OBSERVE_WEBHOOK_URL": "http://127.0.0.1:9/hooks/token",
        "OBSERVE_WEBHOOK_TIMEOUT_SECONDS": "2",
    }
    runner = CliRunner()

    result = runner.invoke(
        app, ["report", "--week", "2026-W47", "--out", str(tmp_path / "out"), "--deliver"], env=env
    )

    assert result.exit_code == 1, result.output
    assert "delivered via directory" in result.stdout
    assert "delivery via webhook will be retried: webhook 127.0.0.1: ConnectError" in result.output
    assert (delivered / "2026-W47" / "summary.html").exists()
    with db.sessions() as session:
        states = {d.channel: d.status for d in delivery_store.load_deliveries(session)}
    assert states == {"directory": "sent", "webhook": "pending"}
