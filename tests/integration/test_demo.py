"""The demo data set on both databases: stored, analysed and explained as `make demo` shows it.

A fixed `now` makes the week reproducible; the assertions are the incidents the demo injects
(observe.demo.traffic) and what the analysis and the diagnosis must say about each.
"""

from __future__ import annotations

import datetime as dt

import pytest

from observe.config import Settings
from observe.db.engine import Database
from observe.demo import build_demo
from tests.conftest import database_url, make_settings

NOW = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_settings(db: Database, tmp_path: object) -> Settings:
    return make_settings(database_url=database_url(db), data_dir=tmp_path)


def test_the_demo_week_is_stored_analysed_and_explained(
    db: Database, demo_settings: Settings
) -> None:
    report = build_demo(db, settings=demo_settings, now=NOW, log=lambda _: None)

    counts = {kind: c.new for kind, c in report.counts.items()}
    assert counts["records"] > 100_000
    assert counts["spans"] > 10_000
    assert counts["metrics"] > 10_000
    assert report.num_references == 4
    assert report.num_profiles == 2
    found = "\n".join(report.incidents)
    assert "churn-classifier 2024.11: 3 of 5 features drifted" in found
    assert "top cause: dependency_latency (span=feature_store.lookup)" in found
    assert "top cause: model_operator (operator=aten::" in found
    assert "model_version=v7) -> Roll back to v6" in found
    assert "top cause: traffic_surge (model=recsys-ranker)" in found
    assert "top cause: host_degradation (host=gpu-3)" in found
    assert "top cause: error_spike" in found
    described = report.describe()
    assert described.startswith("Demo data 2026-11-09 12:00")
    assert "Found by the analysis:" in described


def test_the_demo_is_not_built_twice(db: Database, demo_settings: Settings) -> None:
    build_demo(db, settings=demo_settings, days=1, now=NOW, log=lambda _: None)

    again = build_demo(db, settings=demo_settings, days=1, now=NOW, log=lambda _: None)
    fresh = build_demo(db, settings=demo_settings, days=1, now=NOW, fresh=True, log=lambda _: None)

    assert again.skipped
    assert not fresh.skipped
    assert fresh.counts["records"].new > 0
