"""The scheduled analysis run: once per slot across processes and servers, findings stored
and resolved, one model's failure isolated."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from observe.app import create_app
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import analysis
from observe.pipeline.latency_analysis import REGRESSION_KIND, SLO_KIND
from observe.schemas.findings import FindingIn
from observe.storage import findings as finding_store
from observe.storage import jobs as job_store
from tests.conftest import other_engines, run_in_threads
from tests.factories import T0, finding_in
from tests.integration.pipeline import latency_scenarios as scenarios

NOW = T0 + scenarios.AFTER


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return scenarios.settings_for(settings)


class Recorder:
    """An analysis that records its calls and reports one finding per model (or fails)."""

    def __init__(self, *, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.calls: list[str] = []
        self.failing = failing
        self.lock = threading.Lock()

    def __call__(
        self, db: Database, model: str, *, now: dt.datetime, settings: Settings
    ) -> list[FindingIn]:
        with self.lock:
            self.calls.append(model)
        if model in self.failing:
            raise RuntimeError(f"cannot analyse {model}")
        return [finding_in(model=model, kind="drift", dedupe_key=f"drift:{model}:{now:%H}")]


def recorded(recorder: Recorder) -> list[analysis.Analysis]:
    return [analysis.Analysis("recorder", ("drift",), recorder)]


def findings(db: Database, **filters: Any) -> list[Any]:
    with db.sessions() as session:
        return finding_store.load_findings(session, **filters)


def test_each_slot_runs_once_across_processes_on_one_database(
    db: Database, settings: Settings
) -> None:
    scenarios.store(db, *scenarios.steady_history())
    recorder = Recorder()
    results: list[analysis.RunSummary] = []

    def run(database: Database, owner: str) -> None:
        summary = analysis.run_scheduled_analysis(
            database, now=NOW, settings=settings, analyses=recorded(recorder), owner=owner
        )
        results.append(summary)

    with other_engines(db, 3) as others:
        run_in_threads(run, ((d, f"process-{i}") for i, d in enumerate([db, *others])))
        next_slot = NOW + dt.timedelta(hours=1)
        again = analysis.run_scheduled_analysis(
            others[0], now=next_slot, settings=settings, analyses=recorded(recorder)
        )

    assert sorted(r.ran for r in results) == [False, False, False, True]
    assert again.ran
    assert recorder.calls == ["fraud-scorer", "fraud-scorer"]
    with db.sessions() as session:
        claims = job_store.load_job_claims(session, analysis.JOB_NAME)
    assert [c.slot_start for c in claims] == [
        T0 + dt.timedelta(hours=3),
        T0 + dt.timedelta(hours=2),
    ]
    assert all(c.finished_at is not None for c in claims)


def test_the_job_of_two_app_instances_runs_each_slot_once(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(analysis, "ANALYSES", tuple(recorded(recorder)))
    clock = iter([NOW, NOW + dt.timedelta(minutes=1), NOW + dt.timedelta(hours=1)])
    monkeypatch.setattr(analysis, "utc_now", lambda: next(clock))
    scenarios.store(db, *scenarios.steady_history())
    runs = []
    for _ in range(2):  # two servers on one database, each with its scheduler's job
        with TestClient(create_app(settings)) as client:
            state: Any = client.app.state  # type: ignore[attr-defined]
            [job] = [j for j in state.scheduler.jobs if j.name == "analysis"]
            runs.append(job.run())
    assert job.interval_seconds == 60.0
    runs.append(job.run())

    assert [r.ran for r in runs] == [True, False, True]
    assert recorder.calls == ["fraud-scorer", "fraud-scorer"]


def test_stale_findings_are_resolved_and_a_failing_model_does_not_stop_the_others(
    db: Database, settings: Settings
) -> None:
    scenarios.store(db, *scenarios.steady_history())
    items, _ = scenarios.host_history()
    other = [r.model_copy(update={"model": "ranker"}) for r in items]
    scenarios.store(db, other, [])
    with db.write_sessions.begin() as session:
        finding_store.upsert_findings(
            session,
            [
                finding_in(model="fraud-scorer", kind="drift", dedupe_key="drift:old"),
                finding_in(model="fraud-scorer", kind="skew", dedupe_key="skew:other-analysis"),
            ],
            now=T0,
        )
    recorder = Recorder(failing={"ranker"})

    summary = analysis.analyze_models(db, now=NOW, settings=settings, analyses=recorded(recorder))

    assert summary.models == ["fraud-scorer", "ranker"]
    assert summary.failures == ["recorder:ranker"]
    assert (summary.num_findings, summary.num_resolved) == (1, 1)
    statuses = {f.dedupe_key: f.status for f in findings(db)}
    assert statuses == {
        "drift:old": "resolved",
        f"drift:fraud-scorer:{NOW:%H}": "open",
        "skew:other-analysis": "open",  # another analysis's kind is left alone
    }


def test_the_latency_analysis_stores_and_later_resolves_a_regression(
    db: Database, settings: Settings
) -> None:
    scenarios.store(db, *scenarios.canary_history())

    first = analysis.analyze_models(db, now=NOW, settings=settings)
    [regression] = findings(db, kinds=[REGRESSION_KIND])
    again = analysis.analyze_models(db, now=NOW + dt.timedelta(minutes=30), settings=settings)
    much_later = NOW + dt.timedelta(days=8)  # the incident left the 7-day window
    gone = analysis.analyze_models(db, now=much_later, settings=settings, models=["fraud-scorer"])

    assert first.failures == again.failures == gone.failures == []
    assert regression.status == "open"
    assert regression.model_version == "v2"
    assert again.num_resolved == 0
    [after] = findings(db, kinds=[REGRESSION_KIND])
    assert after.id == regression.id
    assert after.status == "resolved"
    assert gone.num_resolved == 1
    assert findings(db, kinds=[SLO_KIND]) == []  # no SLO set


@pytest.fixture(autouse=True)
def _no_scheduler_thread_leak() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    assert "observe-scheduler" not in {t.name for t in threading.enumerate()} - before
