"""The UI in a real headless Chromium against a real `observe serve` on a seeded incident.

Logs in through the form, opens every page, checks what is on the screen against the seeded data
and the API, drives the controls and the shareable URLs, and saves a screenshot of every page
under tests/artifacts/ui/. Without Chromium the tests are skipped, unless
OBSERVE_REQUIRE_BROWSER=1 (set by CI) makes that a failure.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from dashboards.formats import format_ms
from observe.auth import Scope
from observe.db import migrate
from observe.db.engine import create_database
from observe.pipeline.keys import create_key
from tests.integration.dashboards import browser, seed
from tests.integration.dashboards.browser import is_idle, screenshot, text_of, wait_for
from tests.integration.dashboards.helpers import UPDATE_PATH

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Site:
    url: str
    read_key: str
    ingest_key: str
    canary: seed.Canary

    def api(self, path: str) -> Any:
        response = httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {self.read_key}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    reason = browser.missing_browser()
    if reason:
        if os.environ.get(browser.REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{reason}, but {browser.REQUIRE_BROWSER_ENV}=1 requires the browser")
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp("ui-site")
    url = f"sqlite:///{data_dir / 'observe.db'}"
    db = create_database(url)
    migrate.upgrade(db.engine)
    seed.seed_incident(db)
    canary = seed.seed_canary(db)
    read_key, _ = create_key(db.write_sessions, name="ui test", scopes=[Scope.READ])
    ingest_key, _ = create_key(db.write_sessions, name="ingest only", scopes=[Scope.INGEST])
    db.engine.dispose()
    with browser.observe_server(url, data_dir, profiling_lag_seconds="0") as server:
        yield Site(server.url, read_key, ingest_key, canary)


@pytest.fixture(scope="module")
def driver(site: Site) -> Iterator[Any]:
    with browser.chromium() as chromium:
        yield chromium


@pytest.fixture
def logged_in(site: Site, driver: Any) -> Any:
    if driver.get_cookie("observe_session") is None:
        driver.get(f"{site.url}/ui/login")
        submit_key(driver, site.read_key)
        wait_for(driver, lambda d: urlparse(d.current_url).path == "/ui/")
    return driver


def submit_key(driver: Any, key: str) -> None:
    field = driver.find_element("id", "login-key")
    field.clear()
    field.send_keys(key)
    driver.find_element("id", "login-submit").click()


def open_page(driver: Any, url: str, ready_css: str) -> None:
    """Load `url` and wait until `ready_css` shows text and no callback is running."""
    driver.get(url)
    wait_for(driver, lambda d: text_of(d, ready_css).strip() and is_idle(d))


def query_of(driver: Any) -> dict[str, list[str]]:
    return parse_qs(urlparse(driver.current_url).query)


# --- login -------------------------------------------------------------------------------------


def test_login_form_refuses_a_wrong_key_and_returns_to_the_shared_url(
    site: Site, driver: Any
) -> None:
    shared = f"{site.url}/ui/latency?model=fraud-scorer&percentile=99&start=-24h"
    driver.delete_all_cookies()

    driver.get(shared)
    wait_for(driver, lambda d: urlparse(d.current_url).path == "/ui/login")
    screenshot(driver, "login")
    submit_key(driver, site.ingest_key)
    refusal = wait_for(driver, lambda d: text_of(d, ".login-error"))
    screenshot(driver, "login-refused")
    submit_key(driver, site.read_key)

    assert "lacks the read scope" in refusal
    wait_for(driver, lambda d: "requests" in text_of(d, "#latency-status"))
    assert query_of(driver) == {
        "model": ["fraud-scorer"],
        "percentile": ["99"],
        "start": ["-24h"],
    }
    checked = driver.find_element("css selector", ".radio input[value='99']")
    assert checked.is_selected()
    cookie = driver.get_cookie("observe_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/ui"
    assert site.read_key not in cookie["value"]


# --- pages -------------------------------------------------------------------------------------


def test_overview_shows_each_model_with_its_numbers_and_badges(site: Site, logged_in: Any) -> None:
    driver = logged_in
    models = {m["name"]: m for m in site.api("/api/v1/models")["models"]}

    open_page(driver, f"{site.url}/ui/", "#overview-status")
    wait_for(driver, lambda d: d.find_elements("css selector", "#overview-models tbody tr"))
    screenshot(driver, "overview")

    fraud = row_cells(driver, "fraud-scorer")
    ranker = row_cells(driver, "ranker")
    assert fraud["Requests"] == f"{seed.NUM_V1 + seed.NUM_V2:,}"
    assert fraud["p95"] == format_ms(models["fraud-scorer"]["p95"])
    assert fraud["p99"] == format_ms(models["fraud-scorer"]["p99"])
    assert fraud["Versions"] == "v1, v2"
    assert fraud["SLO"] == "p95 ≤ 60 ms, errors ≤ 1%"
    assert fraud["SLO status"].startswith("breached: p95 ")
    assert (fraud["Drift"], fraud["Open regressions"]) == ("drifting", "1 open diagnose →")
    assert ranker["Requests"] == f"{seed.NUM_RANKER:,}"
    assert (ranker["SLO status"], ranker["Drift"]) == ("meets SLO", "no drift")
    badge = driver.find_element("css selector", "tr[data-model='fraud-scorer'] .badge-breached")
    assert badge.value_of_css_property("color") == "rgba(185, 28, 28, 1)"
    assert driver.find_elements("css selector", "#overview-slo-chart .main-svg")


def row_cells(driver: Any, model: str) -> dict[str, str]:
    headers = [th.text for th in driver.find_elements("css selector", "#overview-models thead th")]
    cells = driver.find_elements("css selector", f"tr[data-model='{model}'] td")
    return dict(zip(headers, [cell.text for cell in cells], strict=True))


def test_latency_page_shows_versions_the_deploy_and_the_change_point(
    site: Site, logged_in: Any
) -> None:
    driver = logged_in

    open_page(driver, f"{site.url}/ui/latency?model=fraud-scorer&start=-24h", "#latency-status")
    wait_for(driver, lambda d: d.find_elements("css selector", "#latency-chart .legendtext"))
    screenshot(driver, "latency")

    legend = [e.text for e in driver.find_elements("css selector", "#latency-chart .legendtext")]
    assert {"v1", "v2", "SLO p95 ≤ 60 ms", "deploy events", "change points"} <= set(legend)
    assert f"{seed.NUM_V1 + seed.NUM_V2:,} requests" in text_of(driver, "#latency-status")
    markers = text_of(driver, "#latency-marker-table")
    assert seed.DEPLOY_DESCRIPTION in markers
    assert seed.REGRESSION_SUMMARY in markers


def test_controls_write_the_url_and_the_back_button_restores_it(site: Site, logged_in: Any) -> None:
    driver = logged_in
    open_page(driver, f"{site.url}/ui/latency?model=fraud-scorer", "#latency-status")

    driver.find_element("xpath", "//label[normalize-space(.)='p99']").click()
    wait_for(driver, lambda d: query_of(d).get("percentile") == ["99"])
    wait_for(driver, lambda d: "p99 latency" in chart_title(d) and is_idle(d))
    driver.find_element("xpath", "//label[normalize-space(.)='7d']").click()
    wait_for(driver, lambda d: query_of(d).get("start") == ["-7d"])
    wait_for(driver, lambda d: "30 min buckets" in text_of(d, "#latency-status"))
    driver.back()

    wait_for(
        driver,
        lambda d: "start" not in query_of(d) and "5 min buckets" in text_of(d, "#latency-status"),
    )
    assert query_of(driver) == {"model": ["fraud-scorer"], "percentile": ["99"]}


def test_zooming_the_chart_puts_the_window_in_the_url(site: Site, logged_in: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    driver = logged_in
    open_page(driver, f"{site.url}/ui/latency?model=fraud-scorer&start=-24h", "#latency-status")
    wait_for(driver, lambda d: d.find_elements("css selector", "#latency-chart .nsewdrag"))
    plot = driver.find_element("css selector", "#latency-chart .nsewdrag")
    width = plot.size["width"]

    ActionChains(driver).move_to_element_with_offset(
        plot, int(width * 0.2), 0
    ).click_and_hold().move_by_offset(int(width * 0.25), 0).release().perform()

    wait_for(driver, lambda d: query_of(d).get("start", ["-24h"])[0].endswith("Z"))
    query = query_of(driver)
    start, end = (
        dt.datetime.fromisoformat(query[k][0].replace("Z", "+00:00")) for k in ("start", "end")
    )
    assert dt.timedelta(hours=4) < end - start < dt.timedelta(hours=8)  # a quarter of 24 hours
    wait_for(driver, lambda d: "1 min buckets" in text_of(d, "#latency-status") and is_idle(d))
    screenshot(driver, "latency-zoomed")


def chart_title(driver: Any) -> str:
    return text_of(driver, "#latency-chart .gtitle")


def test_infra_page_shows_every_gpu_and_the_hot_one(site: Site, logged_in: Any) -> None:
    driver = logged_in

    open_page(driver, f"{site.url}/ui/infra", "#infra-status")
    wait_for(driver, lambda d: d.find_elements("css selector", "#infra-summary-table tbody tr"))
    screenshot(driver, "infra")

    rows = {
        row.get_attribute("data-resource"): row.text
        for row in driver.find_elements("css selector", "#infra-summary-table tbody tr")
    }
    assert sorted(rows) == ["gpu-1/gpu0", "gpu-2/gpu0"]
    assert f"{seed.HOT_GPU_TEMPERATURE_C:.1f} °C" in rows["gpu-2/gpu0"]
    charts = driver.find_elements("css selector", "#infra-charts .dash-graph")
    assert len(charts) == 3

    open_page(driver, f"{site.url}/ui/infra?host=gpu-1", "#infra-status")
    wait_for(
        driver,
        lambda d: (
            [
                r.get_attribute("data-resource")
                for r in d.find_elements("css selector", "#infra-summary-table tbody tr")
            ]
            == ["gpu-1/gpu0"]
        ),
    )


def test_every_page_in_the_navigation_renders(site: Site, logged_in: Any) -> None:
    driver = logged_in
    driver.get(f"{site.url}/ui/")
    wait_for(driver, lambda d: d.find_elements("css selector", ".nav-link"))
    links = [
        (link.get_attribute("id"), link.get_attribute("href"))
        for link in driver.find_elements("css selector", ".nav-link")
    ]
    driver.get_log("browser")  # drop what earlier tests logged (the refused login)

    for link_id, href in links:
        driver.get(href)
        wait_for(driver, lambda d: d.find_elements("css selector", ".page") and is_idle(d))
        wait_for(driver, lambda d: text_of(d, ".status-line").strip())
        screenshot(driver, f"page-{link_id.removeprefix('nav-')}")
        assert "active" in driver.find_element("id", link_id).get_attribute("class")
        errors = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
        ]
        assert errors == [], f"{href}: {errors}"
    assert len(links) >= 3


# --- triage, and down to traces and the profiler ------------------------------------------------


def test_triage_walk_of_the_canary_down_to_the_traces_and_the_profiler(
    site: Site, logged_in: Any
) -> None:
    driver = logged_in
    open_page(driver, f"{site.url}/ui/", "#overview-status")
    link = wait_for(
        driver,
        lambda d: d.find_elements("css selector", "tr[data-model='checkout'] a.triage-link"),
    )
    link[0].click()

    wait_for(driver, lambda d: urlparse(d.current_url).path == "/ui/triage")
    assert query_of(driver)["start"] == [f"{site.canary.onset_at:%Y-%m-%dT%H:%M:%SZ}"]
    wait_for(driver, lambda d: charts_drawn(d, "#triage-checklist") and is_idle(d))
    screenshot(driver, "triage")
    assert "8 of 17 checks failed" in text_of(driver, "#triage-status")
    assert badge_of(driver, "versions") == "fail"
    assert badge_of(driver, "operators") == "fail"
    assert badge_of(driver, "hosts") == "pass"
    assert badge_of(driver, "segments") == "skipped"
    steps = [e.text for e in driver.find_elements("css selector", ".step h3")]
    assert steps == ["1 · Isolate", "2 · Data", "3 · Infra", "4 · Model"]
    top = driver.find_element("css selector", "#triage-cause-table tbody tr.top-cause")
    assert top.get_attribute("data-kind") == "model_operator"
    assert "aten::addmm" in top.text
    assert "Roll back to v6, then fix the change to aten::addmm in v7" in top.text
    assert "Roll back to v6" in text_of(driver, "#triage-top-cause")

    follow_slowest_trace(site, driver)
    driver.back()
    wait_for(driver, lambda d: d.find_elements("css selector", "#triage-page-links a"))
    follow_profiler_diff(site, driver)


def charts_drawn(driver: Any, container: str) -> bool:
    graphs = driver.find_elements("css selector", f"{container} .dash-graph")
    drawn = driver.find_elements("css selector", f"{container} .dash-graph .main-svg")
    return bool(graphs) and len(drawn) >= len(graphs)


def badge_of(driver: Any, check: str) -> str:
    return text_of(driver, f"#triage-check-{check} .badge")


def follow_slowest_trace(site: Site, driver: Any) -> None:
    """From the triage page: the window's slowest trace, its waterfall, a span's attributes."""
    from selenium.webdriver.common.action_chains import ActionChains

    first = driver.find_element("css selector", "#triage-slow-traces a.trace-link")
    trace_id = first.text
    first.click()
    wait_for(driver, lambda d: query_of(d).get("trace") == [trace_id])
    wait_for(driver, lambda d: charts_drawn(d, ".page-traces") and is_idle(d))
    selected = driver.find_element("css selector", "#traces-list tr.selected")
    assert selected.get_attribute("data-trace") == trace_id
    ticks = [t.text for t in driver.find_elements("css selector", "#traces-waterfall .ytick text")]
    assert [t.strip() for t in ticks] == ["predict", "feature_store.lookup", "forward"]
    for _ in range(5):  # a click while plotly redraws after a resize can be lost
        bars = driver.find_elements("css selector", "#traces-waterfall .trace.bars .point path")
        lookup = next(b for b in bars if 0 < b.size["width"] < 200)  # the 4 ms lookup
        ActionChains(driver).move_to_element(lookup).click().perform()
        try:
            wait_for(driver, lambda d: "db.system" in text_of(d, "#traces-span-details"), 3)
            break
        except AssertionError:
            continue
    details = text_of(driver, "#traces-span-details")
    assert "feature_store.lookup" in details
    assert "attribute db.system redis" in details
    screenshot(driver, "traces-waterfall")


def follow_profiler_diff(site: Site, driver: Any) -> None:
    """From the triage page: the operator diff of the two profiler traces it compared."""
    driver.find_element("link text", "profiler diff v6 → v7").click()
    wait_for(driver, lambda d: urlparse(d.current_url).path == "/ui/profiler")
    ids = site.canary.profile_ids
    assert query_of(driver) == {
        "model": ["checkout"],
        "base": [str(ids["v6"])],
        "target": [str(ids["v7"])],
    }
    wait_for(driver, lambda d: charts_drawn(d, ".page-profiler") and is_idle(d))
    screenshot(driver, "profiler-diff")
    title = text_of(driver, "#profiler-diff-title")
    assert title.startswith(f"v7 (#{ids['v7']}) against v6 (#{ids['v6']})")
    first = driver.find_element("css selector", "#profiler-diff-table tbody tr")
    assert first.get_attribute("data-operator") == seed.CHANGED_OPERATOR
    assert "aten::native_layer_norm" in text_of(driver, "#profiler-diff-panel")


def test_drift_page_shows_the_verdict_and_plots_the_feature_clicked(
    site: Site, logged_in: Any
) -> None:
    driver = logged_in
    open_page(driver, f"{site.url}/ui/drift?model=checkout", "#drift-status")
    wait_for(driver, lambda d: charts_drawn(d, ".page-drift") and is_idle(d))

    assert text_of(driver, "#drift-verdict") == "data set drifted"
    assert text_of(driver, "#drift-share") == "2 of 3 features drifted"
    rows = driver.find_elements("css selector", "#drift-feature-table tbody tr")
    assert [r.get_attribute("data-feature") for r in rows] == ["amount", "country", "num_items"]
    assert "amount: wasserstein" in text_of(driver, "#drift-distribution .gtitle")
    heat = driver.find_elements("css selector", "#drift-heatmap .ytick text")
    assert sorted(t.text for t in heat) == ["amount", "country", "num_items"]
    driver.find_element("link text", "country").click()

    wait_for(driver, lambda d: query_of(d).get("feature") == ["country"])
    wait_for(
        driver, lambda d: "country: jensenshannon" in text_of(d, "#drift-distribution .gtitle")
    )
    wait_for(driver, lambda d: is_idle(d))
    screenshot(driver, "drift")
    selected = driver.find_element("css selector", "#drift-feature-table tr.selected")
    assert selected.get_attribute("data-feature") == "country"


def test_skew_page_shows_the_schema_and_the_values_that_differ(site: Site, logged_in: Any) -> None:
    driver = logged_in

    open_page(driver, f"{site.url}/ui/skew?model=checkout&join_key=request_id", "#skew-status")
    wait_for(driver, lambda d: d.find_elements("css selector", "#skew-value-chart .main-svg"))
    screenshot(driver, "skew")

    assert text_of(driver, "#skew-missing") == "Missing in serving: channel"
    assert text_of(driver, "#skew-extra") == "Extra in serving: device"
    assert "country: BR" in text_of(driver, "#skew-unseen")
    amount = driver.find_element("css selector", "#skew-value-table tr[data-feature='amount']")
    assert "20.0%" in amount.text


def test_a_callback_needs_the_session_cookie(site: Site, logged_in: Any) -> None:
    cookie = logged_in.get_cookie("observe_session")["value"]
    body = {"output": "overview-status.children", "outputs": {}, "inputs": [], "state": []}

    refused = httpx.post(f"{site.url}{UPDATE_PATH}", json=body, timeout=10)
    layout_refused = httpx.get(f"{site.url}/ui/_dash-layout", timeout=10)
    layout = httpx.get(
        f"{site.url}/ui/_dash-layout", cookies={"observe_session": cookie}, timeout=10
    )

    assert refused.status_code == 401
    assert layout_refused.status_code == 401
    assert layout.status_code == 200


def test_logout_returns_to_the_login_form(site: Site, logged_in: Any) -> None:
    driver = logged_in
    open_page(driver, f"{site.url}/ui/", "#overview-status")

    driver.find_element("id", "nav-logout").click()
    wait_for(driver, lambda d: urlparse(d.current_url).path == "/ui/login")
    driver.get(f"{site.url}/ui/infra")

    wait_for(driver, lambda d: urlparse(d.current_url).path == "/ui/login")
    assert driver.get_cookie("observe_session") is None
