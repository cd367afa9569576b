"""A weekly report file opened in a real headless Chromium, offline: every chart is drawn from
the inline plotly.js and nothing is fetched from anywhere.

Without Chromium the test is skipped, unless OBSERVE_REQUIRE_BROWSER=1 (set by CI) makes that a
failure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from observe.db import migrate
from observe.db.engine import create_database
from observe.pipeline.delivery import write_report_files
from observe.storage import reports as report_store
from tests.conftest import make_settings
from tests.integration.dashboards import browser
from tests.integration.dashboards.browser import screenshot, wait_for
from tests.integration.pipeline import report_scenario as scenario

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    reason = browser.missing_browser()
    if reason:
        if os.environ.get(browser.REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{reason}, but {browser.REQUIRE_BROWSER_ENV}=1 requires the browser")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{folder / 'observe.db'}"
    db = create_database(url)
    migrate.upgrade(db.engine)
    settings = scenario.settings_for(make_settings(database_url=url, data_dir=folder))
    scenario.seed(db, settings)
    from observe.pipeline import reports

    reports.write_week(db, scenario.WEEK, settings=settings, now=scenario.REPORT_AT)
    with db.sessions() as session:
        stored = report_store.load_week_reports(session, scenario.WEEK.name)
    db.engine.dispose()
    files = {}
    for report in stored:
        _, html_path = write_report_files(folder / "out", report.content or {})
        files[report.model or "summary"] = html_path
    return files


def drawn_charts(driver: Any) -> list[int]:
    """[charts, charts drawn] on the page."""
    return list(
        driver.execute_script(
            "const charts = document.querySelectorAll('.figure .plotly-graph-div');"
            "return [charts.length,"
            " [...charts].filter(c => c.querySelector('.main-svg g.trace')).length];"
        )
    )


@pytest.mark.parametrize("name", ["fraud-scorer", "summary"])
def test_a_report_file_draws_every_chart_offline(report_files: dict[str, Path], name: str) -> None:
    with browser.chromium() as driver:
        driver.get(report_files[name].as_uri())
        charts = wait_for(driver, lambda d: (c := drawn_charts(d))[0] == c[1] > 0 and c)
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        heading = driver.find_element("tag name", "h1").text
        screenshot(driver, f"report-{name}")

    assert charts[0] == (7 if name == "fraud-scorer" else 3)
    assert fetched == []
    assert errors == []
    assert heading.startswith(f"{'All models' if name == 'summary' else name} · week 2026-W47")
