"""Weekly reports of a seeded fortnight: the numbers against the read API, the HTML offline,
and the scheduler's catch-up and once-only writing with two schedulers on one database."""

from __future__ import annotations

import datetime as dt
import re
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dashboards.report import render_report_html
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import reports
from observe.pipeline.delivery import Deliverer, InMemoryChannel
from observe.pipeline.weeks import Week
from observe.schemas.reports import ModelReport, SummaryReport
from observe.storage import jobs as job_store
from observe.storage import reports as report_store
from tests.conftest import other_engines, run_in_threads
from tests.integration.api.helpers import app_client
from tests.integration.pipeline import report_scenario as scenario

WEEK, PREVIOUS = scenario.WEEK, scenario.PREVIOUS


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return scenario.settings_for(settings)


def write_seeded_week(db: Database, settings: Settings) -> tuple[Any, ModelReport, ModelReport]:
    scenario.seed(db, settings)
    result = reports.write_week(db, WEEK, settings=settings, now=scenario.REPORT_AT)
    summary, fraud, ranker = (r.content for r in result.reports)
    assert result.num_written == 3
    return (
        SummaryReport.model_validate(summary),
        ModelReport.model_validate(fraud),
        ModelReport.model_validate(ranker),
    )


def api_models(client: Any, week: Week) -> dict[str, Any]:
    response = client.get(
        "/api/v1/models", params={"start": week.start.isoformat(), "end": week.end.isoformat()}
    )
    assert response.status_code == 200, response.text
    return {model["name"]: model for model in response.json()["models"]}


def test_a_seeded_week_has_the_numbers_of_the_read_api(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    summary, fraud, ranker = write_seeded_week(db, settings)
    with app_client(db, tmp_path, auth_enabled=False) as client:
        this_week, week_before = api_models(client, WEEK), api_models(client, PREVIOUS)
        findings = client.get(
            "/api/v1/findings", params={"model": "fraud-scorer", "kind": "latency_regression"}
        ).json()["items"]

    for report in (fraud, ranker):
        current, previous = this_week[report.model], week_before[report.model]
        assert report.overview.model_dump(mode="json") == current
        for name in ("num_requests", "num_errors", "error_rate", "mean_ms", "p50", "p95", "p99"):
            numbers = getattr(report.traffic, name)
            assert (numbers.current, numbers.previous) == (current[name], previous[name]), name
        assert report.slo.observed_latency_ms == current["slo_status"]["latency_ms"]
        assert report.slo.latency_ok == current["slo_status"]["latency_ok"]
    assert [m.overview.model_dump(mode="json") for m in summary.models] == [
        this_week["fraud-scorer"],
        this_week["ranker"],
    ]
    assert summary.num_requests.current == sum(m["num_requests"] for m in this_week.values())
    [finding] = findings
    [regression] = fraud.regressions
    assert regression.finding_id == finding["id"]
    assert regression.summary == finding["summary"]


def test_a_seeded_week_has_the_scenarios_known_answers(db: Database, settings: Settings) -> None:
    summary, fraud, ranker = write_seeded_week(db, settings)
    records = [r for r in scenario.fraud_scorer() if WEEK.start <= r.timestamp < WEEK.end]

    dense_days, sparse_days = 2, 5
    assert fraud.traffic.num_requests.current == len(records)
    assert len(records) == (dense_days * 24 * 30) + (sparse_days * 24 * 6)
    assert fraud.traffic.num_requests.previous == 7 * 24 * 6
    assert fraud.traffic.num_requests.change == pytest.approx(len(records) / (7 * 24 * 6) - 1)
    assert fraud.traffic.num_errors.current == sum(r.status == "error" for r in records)
    assert ranker.traffic.num_requests.current == 7 * 24 * 6
    assert [v.model_version for v in fraud.versions] == ["v1", "v2"]
    assert fraud.slo.latency_ok is False
    assert fraud.slo.error_rate_ok is False
    assert ranker.slo.latency_ok is True
    # The regression: the v2 deploy, found and diagnosed as such.
    [regression] = fraud.regressions
    assert regression.status == "open"
    assert regression.model_version == "v2"
    assert abs(regression.onset_at - scenario.DEPLOY_AT) <= dt.timedelta(minutes=5)
    assert regression.ratio == pytest.approx(2.0, rel=0.1)
    assert regression.event is not None
    assert regression.event["kind"] == "deploy"
    assert regression.diagnosis is not None
    top = regression.diagnosis.causes[0]
    assert (top.kind, top.scope) == ("deploy", {"model_version": "v2"})
    assert regression.triage_url.endswith(
        "/ui/triage?model=fraud-scorer&start=2026-11-18T12:00:00Z&end=2026-11-18T13:00:00Z"
    )
    assert {b.objective for b in fraud.slo_breaches} == {"latency", "error_rate"}
    # Drift and skew.
    [ranker_drift] = ranker.drift
    assert ranker_drift.dataset_drifted is True
    assert ranker_drift.baseline == "the week before"
    assert ranker_drift.top_features[0].feature == "amount"
    assert ranker_drift.top_features[0].drifted is True
    by_version = {d.model_version: d for d in fraud.drift}
    assert by_version["v1"].dataset_drifted is False
    assert by_version["v2"].baseline == "reference training"
    [skew] = fraud.skew
    assert (skew.model_version, skew.missing_features) == ("v2", ["merchant"])
    # GPUs: the model's hosts, peak memory against the device's.
    devices = {d.host: d for d in fraud.gpu.devices}
    assert sorted(devices) == ["gpu-1", "gpu-2"]
    assert devices["gpu-2"].memory_headroom_pct == pytest.approx(100 * (1 - 15_500 / 16_000))
    assert devices["gpu-1"].mean_utilization_pct == pytest.approx(50.0)
    assert [d.host for d in ranker.gpu.devices] == ["gpu-3"]
    assert [d.host for d in summary.gpu.devices] == ["gpu-1", "gpu-2", "gpu-3"]
    # Deploys and rollbacks.
    assert fraud.event_counts == {"deploy": 1}
    assert ranker.event_counts == {"rollback": 1}
    # Needs attention: the critical first.
    kinds = [(i.severity, i.kind) for i in fraud.needs_attention]
    assert kinds[:3] == [
        ("critical", "slo_breach"),
        ("critical", "slo_breach"),
        ("critical", "latency_regression"),
    ]
    assert {k for _, k in kinds[3:]} == {
        "error_rate",
        "latency_change",
        "drift",
        "skew",
        "gpu_memory",
    }
    assert [i.kind for i in ranker.needs_attention] == ["drift", "rollback"]
    assert summary.needs_attention == [*fraud.needs_attention, *ranker.needs_attention]


class Resources(HTMLParser):
    """What a document would load: script, style sheet, image and frame sources."""

    LOADING: ClassVar[dict[str, str]] = {
        "script": "src",
        "link": "href",
        "img": "src",
        "iframe": "src",
        "source": "src",
        "embed": "src",
        "object": "data",
        "audio": "src",
        "video": "src",
    }

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.num_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.num_scripts += 1
        attribute = self.LOADING.get(tag)
        if attribute and values.get(attribute):
            self.loaded.append(f"{tag} {values[attribute]}")


def test_the_html_opens_offline_and_shows_the_json_numbers(
    db: Database, settings: Settings
) -> None:
    summary, fraud, _ = write_seeded_week(db, settings)

    for report in (summary, fraud):
        document = render_report_html(report)
        resources = Resources()
        resources.feed(document)
        assert resources.loaded == []
        styles = " ".join(re.findall(r"<style>(.*?)</style>", document, re.S))
        assert "url(" not in styles
        assert "@import" not in styles
        assert "Plotly.newPlot" in document
        assert "plotly.js v" in document  # the library itself is inline
    document = render_report_html(fraud)
    # latency, traffic, week over week, drift of v1 and v2, GPU headroom and utilization
    assert document.count('<div class="figure">') == 7
    assert f"{fraud.traffic.num_requests.current:,.0f}" in document
    assert f"{fraud.traffic.p95.current:,.1f} ms" in document
    assert f"{fraud.traffic.p95.previous:,.1f} ms" in document
    assert f"{fraud.traffic.p95.change * 100:+.1f}%" in document
    assert "Roll back fraud-scorer from v2 to v1" in document
    assert "3.1%" in document  # gpu-2's headroom


def test_a_week_not_over_is_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(reports.WeekNotOver, match="2026-W48 has not ended yet"):
        reports.write_week(db, Week(2026, 48), settings=settings, now=scenario.REPORT_AT)


def test_an_unknown_model_is_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(LookupError, match="no model named 'nope'"):
        reports.write_week(db, WEEK, settings=settings, now=scenario.REPORT_AT, models=["nope"])


def test_reports_stored_before_are_reused_unless_rendered_again(
    db: Database, settings: Settings
) -> None:
    scenario.seed(db, settings, analyse=False)
    first = reports.write_week(
        db, WEEK, settings=settings, now=scenario.REPORT_AT, models=["ranker"]
    )
    whole = reports.write_week(db, WEEK, settings=settings, now=scenario.REPORT_AT)
    again = reports.write_week(
        db, WEEK, settings=settings, now=scenario.REPORT_AT + dt.timedelta(days=1), rerender=True
    )

    assert (first.num_written, whole.num_written, again.num_written) == (1, 2, 3)
    assert [r.model for r in whole.reports] == [None, "fraud-scorer", "ranker"]
    assert whole.reports[2].id == first.reports[0].id
    assert [r.id for r in again.reports] == [r.id for r in whole.reports]
    assert again.reports[0].created_at == scenario.REPORT_AT + dt.timedelta(days=1)


# --- the scheduler -----------------------------------------------------------------------------


def scheduler_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={"report_cron": "0 6 * * 1", **overrides})


def deliverer(db: Database, settings: Settings, channel: InMemoryChannel) -> Deliverer:
    return Deliverer(db, {"webhook": channel}, settings.base_url, settings.delivery_max_attempts)


def stored_weeks(db: Database) -> list[tuple[str, str, str | None]]:
    with db.sessions() as session:
        return sorted((r.week, r.kind, r.model) for r in report_store.list_reports(session))


def test_after_downtime_the_missed_weeks_are_written_once(db: Database, settings: Settings) -> None:
    scenario.seed(db, settings, analyse=False)
    settings = scheduler_settings(settings, report_catch_up_weeks=8)
    channel = InMemoryChannel()
    # Down since before W47 ended; back on Wednesday of W50.
    back = dt.datetime(2026, 12, 9, 10, 0, tzinfo=dt.UTC)

    run = reports.run_report_schedule(
        db, settings=settings, now=back, deliverer=deliverer(db, settings, channel)
    )
    again = reports.run_report_schedule(
        db,
        settings=settings,
        now=back + dt.timedelta(minutes=1),
        deliverer=deliverer(db, settings, channel),
    )

    # W43..W45 ended before the first record (W46 starts with it): skipped.
    written = ["2026-W46", "2026-W47", "2026-W48", "2026-W49"]
    assert [w.name for w in run.written] == written
    assert again.written == []
    assert [r.week for r in channel.reports] == written
    weeks = stored_weeks(db)
    assert [w for w in weeks if w[1] == "summary"] == [(w, "summary", None) for w in written]
    # W48 still lists both models (they had traffic the week before); W49 has none.
    assert ("2026-W48", "model", "ranker") in weeks
    assert not any(w == "2026-W49" and kind == "model" for w, kind, _ in weeks)
    with db.sessions() as session:
        claims = job_store.load_job_claims(session, reports.JOB_NAME)
    assert sorted(c.slot_start for c in claims) == [Week.parse(w).start for w in written]
    assert all(c.finished_at is not None for c in claims)


def test_before_the_schedule_fires_nothing_is_written(db: Database, settings: Settings) -> None:
    scenario.seed(db, settings, analyse=False)
    settings = scheduler_settings(settings, report_catch_up_weeks=1)
    channel = InMemoryChannel()
    sunday = WEEK.end - dt.timedelta(minutes=1)

    run = reports.run_report_schedule(
        db, settings=settings, now=sunday, deliverer=deliverer(db, settings, channel)
    )
    monday_early = reports.run_report_schedule(
        db,
        settings=settings,
        now=WEEK.end + dt.timedelta(hours=5),
        deliverer=deliverer(db, settings, channel),
    )
    off = reports.run_report_schedule(
        db,
        settings=settings.model_copy(update={"report_cron": ""}),
        now=scenario.REPORT_AT,
        deliverer=deliverer(db, settings, channel),
    )
    on_time = reports.run_report_schedule(
        db, settings=settings, now=scenario.REPORT_AT, deliverer=deliverer(db, settings, channel)
    )

    # W46 was due (its report is what the schedule wrote on Monday of W47) ...
    assert [w.name for w in run.written] == ["2026-W46"]
    assert monday_early.written == off.written == []
    assert [w.name for w in on_time.written] == ["2026-W47"]


def test_two_schedulers_on_one_database_write_each_week_once(
    db: Database, settings: Settings
) -> None:
    scenario.seed(db, settings, analyse=False)
    settings = scheduler_settings(settings, report_catch_up_weeks=2)
    channels = [InMemoryChannel(), InMemoryChannel()]
    barrier = threading.Barrier(2)
    runs: list[Any] = []

    def serve(server: Database, channel: InMemoryChannel, name: str) -> None:
        barrier.wait()
        for minute in range(3):  # each checks every minute
            runs.append(
                reports.run_report_schedule(
                    server,
                    settings=settings,
                    now=scenario.REPORT_AT + dt.timedelta(minutes=minute),
                    deliverer=deliverer(server, settings, channel),
                    owner=name,
                )
            )

    with other_engines(db, 2) as servers:  # two servers' engines
        run_in_threads(
            serve,
            ((s, c, f"server-{i}") for i, (s, c) in enumerate(zip(servers, channels, strict=True))),
        )

    written = sorted(w.name for run in runs for w in run.written)
    assert written == ["2026-W46", "2026-W47"]
    assert len(stored_weeks(db)) == 6  # two weeks: two models and a summary each
    delivered = sorted(r.week for channel in channels for r in channel.reports)
    assert delivered == ["2026-W46", "2026-W47"]


def test_a_week_whose_writer_died_is_taken_over_and_not_written_twice(
    db: Database, settings: Settings
) -> None:
    scenario.seed(db, settings, analyse=False)
    settings = scheduler_settings(settings, report_catch_up_weeks=1)
    with db.write_sessions.begin() as session:  # a server claimed W47, wrote ranker's, died
        job_store.claim_job_slot(
            session, reports.JOB_NAME, WEEK.start, now=scenario.REPORT_AT, owner="died"
        )
    partial = reports.write_week(
        db, WEEK, settings=settings, now=scenario.REPORT_AT, models=["ranker"]
    )
    channel = InMemoryChannel()

    soon = reports.run_report_schedule(
        db,
        settings=settings,
        now=scenario.REPORT_AT + dt.timedelta(minutes=30),
        deliverer=deliverer(db, settings, channel),
    )
    later = reports.run_report_schedule(
        db,
        settings=settings,
        now=scenario.REPORT_AT + dt.timedelta(hours=2),
        deliverer=deliverer(db, settings, channel),
    )

    assert soon.written == []
    assert [w.name for w in later.written] == ["2026-W47"]
    assert stored_weeks(db) == [
        ("2026-W47", "model", "fraud-scorer"),
        ("2026-W47", "model", "ranker"),
        ("2026-W47", "summary", None),
    ]
    with db.sessions() as session:
        ranker = report_store.find_report(session, week="2026-W47", model="ranker")
    assert ranker is not None
    assert ranker.id == partial.reports[0].id
    assert [r.week for r in channel.reports] == ["2026-W47"]


def test_serve_runs_the_report_job_every_minute(db: Database, tmp_path: Path) -> None:
    with app_client(db, tmp_path, auth_enabled=False) as client:
        jobs = {job.name: job for job in client.app.state.scheduler.jobs}  # type: ignore[attr-defined]

    assert jobs["reports"].interval_seconds == 60.0


def test_a_week_that_fails_is_tried_again_later_and_blocks_no_other(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario.seed(db, settings, analyse=False)
    settings = scheduler_settings(settings, report_catch_up_weeks=2)
    channel = InMemoryChannel()
    build = reports.build_model_report

    def failing_for_w46(db: Database, model: str, context: Any) -> Any:
        if context.week == PREVIOUS:
            raise RuntimeError("the database went away")
        return build(db, model, context)

    monkeypatch.setattr(reports, "build_model_report", failing_for_w46)
    first = reports.run_report_schedule(
        db, settings=settings, now=scenario.REPORT_AT, deliverer=deliverer(db, settings, channel)
    )
    monkeypatch.setattr(reports, "build_model_report", build)
    soon = reports.run_report_schedule(
        db,
        settings=settings,
        now=scenario.REPORT_AT + dt.timedelta(minutes=1),
        deliverer=deliverer(db, settings, channel),
    )
    later = reports.run_report_schedule(
        db,
        settings=settings,
        now=scenario.REPORT_AT + dt.timedelta(hours=1, minutes=1),
        deliverer=deliverer(db, settings, channel),
    )

    assert [w.name for w in first.written] == ["2026-W47"]
    assert soon.written == []  # the failed claim is not stale yet
    assert [w.name for w in later.written] == ["2026-W46"]
    assert sorted(r.week for r in channel.reports) == ["2026-W46", "2026-W47"]
