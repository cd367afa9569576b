"""The pages' callbacks over HTTP, as the browser calls them: what each page shows for seeded
data, for an empty database and for bad URL parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dashboards.data import drift as drift_data
from observe.db.engine import Database
from tests.integration.api.helpers import app_client
from tests.integration.dashboards import seed
from tests.integration.dashboards.helpers import by_id, call, find_all, response_props, texts

LATENCY_ID = '{"page":"latency","param":"model","type":"url-param"}'


@pytest.fixture
def ui(db: Database, tmp_path: Path) -> Any:
    with app_client(db, tmp_path, auth_enabled=False, profiling_lag_seconds=0) as client:
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


# --- triage, drift, skew, traces, profiler on the canary incident ------------------------------

TRIAGE_MODEL_ID = '{"page":"triage","param":"model","type":"url-param"}'
DRIFT_FEATURE_ID = '{"page":"drift","param":"feature","type":"url-param"}'


@pytest.fixture
def canary(db: Database) -> seed.Canary:
    return seed.seed_canary(db)


def figure_of(props: dict[str, Any], container: str) -> dict[str, Any]:
    """The figure of the chart a callback put in `container`."""
    figure: dict[str, Any] = props[container]["children"]["props"]["figure"]
    return figure


def triage_values(canary: seed.Canary, **overrides: str) -> list[str]:
    values = {
        "model": seed.CANARY_MODEL,
        "start": f"{canary.onset_at:%Y-%m-%dT%H:%M:%SZ}",
        "end": f"{canary.window_end:%Y-%m-%dT%H:%M:%SZ}",
        "baseline_start": "",
        "baseline_end": "",
    }
    values.update(overrides)
    return list(values.values())


def test_triage_lists_the_models_regressions_with_links_to_their_windows(
    ui: Any, canary: seed.Canary
) -> None:
    props = response_props(
        call(ui, 'triage","param":"model","type":"url-param"}.options', [None, None])
    )

    assert props[TRIAGE_MODEL_ID]["value"] == seed.CANARY_MODEL
    regressions = props["triage-regressions"]["children"]
    assert seed.CANARY_SUMMARY in texts(regressions)
    [link] = find_all(regressions, lambda p: p.get("className") == "regression-link")
    assert link["props"]["href"] == "/ui/triage?" + canary.triage_query().replace(":", "%3A")


def test_triage_walks_the_checklist_and_ranks_the_operator_first(
    ui: Any, canary: seed.Canary
) -> None:
    props = response_props(call(ui, "triage-status", triage_values(canary)))

    assert "8 of 17 checks failed" in props["triage-status"]["children"]
    steps = props["triage-steps"]["children"]
    cards = find_all(steps, lambda p: str(p.get("id", "")).startswith("triage-check-"))
    statuses = {
        c["props"]["id"].removeprefix("triage-check-"): c["props"]["data-status"] for c in cards
    }
    assert list(statuses)[:3] == ["symptom", "versions", "hosts"]
    assert (statuses["versions"], statuses["operators"], statuses["segments"]) == (
        "fail",
        "fail",
        "skipped",
    )
    charts = find_all(steps, lambda p: str(p.get("id", "")).startswith("triage-chart-"))
    assert len(charts) == sum(status != "skipped" for status in statuses.values())
    causes = props["triage-causes"]["children"]
    rows = find_all(causes, lambda p: "data-kind" in p)
    # The canary's requests also triple `amount` and bring an unseen country: data causes too.
    assert [row["props"]["data-kind"] for row in rows] == [
        "model_operator",
        "deploy",
        "data_drift",
        "data_drift",
    ]
    assert "Roll back to v6, then fix the change to aten::addmm in v7" in " ".join(texts(rows[0]))
    hrefs = [
        c["props"]["href"] for c in find_all(causes, lambda p: p.get("className") == "cause-link")
    ]
    profiles = canary.profile_ids
    assert f"/ui/profiler?model=checkout&base={profiles['v6']}&target={profiles['v7']}" in hrefs
    top = " ".join(texts(props["triage-symptom"]["children"]))
    assert "p95 latency" in top
    assert "operator aten::addmm" in top


def test_triage_links_down_to_the_slowest_traces_of_the_window(
    ui: Any, canary: seed.Canary
) -> None:
    props = response_props(call(ui, "triage-status", triage_values(canary)))

    links_panel = props["triage-links"]["children"]
    traces = find_all(links_panel, lambda p: p.get("className") == "trace-link")
    assert len(traces) == 5
    assert all("/ui/traces?model=checkout&start=" in t["props"]["href"] for t in traces)
    assert all("&trace=" in t["props"]["href"] for t in traces)
    pages = [
        p["props"]["children"]
        for p in find_all(links_panel, lambda p: p.get("className") == "page-link")
    ]
    assert pages[:2] == ["traces of the window", "profiler diff v6 → v7"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "nope"}, "no model named 'nope'"),
        ({"baseline_start": "-3h"}, "give both baseline_start and baseline_end"),
        ({"start": "soon"}, "start: "),
    ],
)
def test_triage_reports_bad_parameters(
    ui: Any, canary: seed.Canary, overrides: dict[str, str], message: str
) -> None:
    props = response_props(call(ui, "triage-status", triage_values(canary, **overrides)))

    assert message in " ".join(texts(props["triage-status"]["children"]))


def test_triage_without_models_says_how_to_send_data(ui: Any) -> None:
    props = response_props(call(ui, "triage-status", ["", "", "", "", ""]))

    assert "No data yet" in texts(props["triage-status"]["children"])


def test_overview_and_latency_link_the_regression_into_triage(ui: Any, canary: seed.Canary) -> None:
    overview = response_props(call(ui, "overview-status", ["-24h", ""]))
    latency = response_props(
        call(ui, "latency-status", [seed.CANARY_MODEL, "-24h", "", "model_version", "95"])
    )

    expected = "/ui/triage?" + canary.triage_query().replace(":", "%3A")
    row = find_all(
        overview["overview-table"]["children"], lambda p: p.get("data-model") == "checkout"
    )
    [link] = find_all(row, lambda p: p.get("className") == "triage-link")
    assert link["props"]["href"] == expected
    [diagnose] = find_all(
        latency["latency-markers"]["children"], lambda p: p.get("className") == "triage-link"
    )
    assert diagnose["props"]["href"] == expected


def drift_values(**overrides: str) -> list[str]:
    values = dict.fromkeys(
        (
            "model",
            "version",
            "start",
            "end",
            "baseline_start",
            "baseline_end",
            "reference",
            "feature",
        ),
        "",
    )
    values.update({"model": seed.CANARY_MODEL, **overrides})
    return list(values.values())


def test_drift_shows_the_verdict_the_feature_table_and_the_most_drifted_feature(
    ui: Any, canary: seed.Canary
) -> None:
    props = response_props(call(ui, "drift-status", drift_values()))

    assert "against reference training of v6" in props["drift-status"]["children"]
    summary = texts(props["drift-summary"]["children"])
    assert "data set drifted" in summary
    assert "2 of 3 features drifted" in summary
    rows = find_all(props["drift-table"]["children"], lambda p: "data-feature" in p)
    assert [r["props"]["data-feature"] for r in rows] == ["amount", "country", "num_items"]
    assert "drifted" in texts(rows[0])
    assert "wasserstein" in texts(rows[0])
    distribution = figure_of(props, "drift-distribution")
    assert distribution["layout"]["title"]["text"].startswith("amount: wasserstein")
    assert [t["name"] for t in distribution["data"]] == ["reference training", "window"]
    heatmap = figure_of(props, "drift-heatmap")["data"][0]
    assert heatmap["y"] == ["amount", "country", "num_items"]
    assert [o["value"] for o in props[DRIFT_FEATURE_ID]["options"]] == [
        "amount",
        "country",
        "num_items",
    ]


def test_drift_plots_the_feature_asked_for_and_refuses_an_unknown_one(
    ui: Any, canary: seed.Canary
) -> None:
    country = response_props(call(ui, "drift-status", drift_values(feature="country")))
    unknown = response_props(call(ui, "drift-status", drift_values(feature="price")))

    figure = figure_of(country, "drift-distribution")
    assert figure["layout"]["title"]["text"].startswith("country: jensenshannon")
    assert seed.UNSEEN_COUNTRY in figure["data"][1]["x"]
    assert "feature: 'price' is not a feature" in " ".join(
        texts(unknown["drift-status"]["children"])
    )


def test_drift_against_a_baseline_window_without_data_says_so(ui: Any, canary: seed.Canary) -> None:
    props = response_props(
        call(ui, "drift-status", drift_values(baseline_start="-30d", baseline_end="-29d"))
    )

    assert "the baseline has no data" in " ".join(texts(props["drift-status"]["children"]))


def skew_values(**overrides: str) -> list[str]:
    values = dict.fromkeys(("model", "version", "start", "end", "reference", "join_key"), "")
    values.update({"model": seed.CANARY_MODEL, **overrides})
    return list(values.values())


def test_skew_shows_schema_distribution_and_value_skew(ui: Any, canary: seed.Canary) -> None:
    props = response_props(call(ui, "skew-status", skew_values(join_key="request_id")))

    schema = props["skew-schema"]["children"]
    assert texts(by_id(schema, "skew-missing")) == ["Missing in serving: ", "channel"]
    assert texts(by_id(schema, "skew-extra")) == ["Extra in serving: ", "device"]
    assert "country: BR" in " ".join(texts(by_id(schema, "skew-unseen")))
    values = props["skew-values"]["children"]
    amount = find_all(values, lambda p: p.get("data-feature") == "amount")
    assert texts(amount)[:4] == ["amount", "1,200", "240", "20.0%"]
    distribution = find_all(props["skew-distribution"]["children"], lambda p: "data-feature" in p)
    assert len(distribution) == 3


def test_skew_reads_the_newest_records_of_a_busy_window(
    ui: Any, canary: seed.Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drift_data, "SKEW_MAX_ROWS", 1000)

    props = response_props(call(ui, "skew-status", skew_values(join_key="request_id")))

    status = props["skew-status"]["children"]
    assert "the newest 1,000 serving records against reference training" in status
    values = props["skew-values"]["children"]
    assert "Feature-value skew · 0 entities joined on request_id" in texts(values)


def test_skew_without_a_reference_says_how_to_upload_one(ui: Any, canary: seed.Canary) -> None:
    props = response_props(call(ui, "skew-status", skew_values(model="ranker")))

    shown = texts(props["skew-status"]["children"])
    assert "No training reference for this model" in shown
    assert "observe import reference FILE --model M --version V" in shown


def test_traces_show_the_slowest_and_the_waterfall_of_one(ui: Any, canary: seed.Canary) -> None:
    values = [seed.CANARY_MODEL, "-24h", "", canary.slowest_trace_id, "p95"]
    props = response_props(call(ui, "traces-status", values))

    rows = find_all(props["traces-table"]["children"], lambda p: "data-trace" in p)
    assert rows[0]["props"]["data-trace"] == canary.slowest_trace_id
    assert rows[0]["props"]["className"] == "selected"
    waterfall = props["traces-waterfall"]["figure"]
    assert waterfall["layout"]["yaxis"]["ticktext"] == [
        "predict",
        "\u00a0\u00a0feature_store.lookup",
        "\u00a0\u00a0forward",
    ]
    spans = props["traces-spans"]["data"]
    assert [s["name"] for s in spans] == ["predict", "feature_store.lookup", "forward"]
    lines = figure_of(props, "traces-span-percentiles")["data"]
    assert {line["name"] for line in lines} == {"predict", "feature_store.lookup", "forward"}


def test_clicking_a_span_shows_all_its_attributes(ui: Any, canary: seed.Canary) -> None:
    values = [seed.CANARY_MODEL, "-24h", "", canary.slowest_trace_id, "p95"]
    spans = response_props(call(ui, "traces-status", values))["traces-spans"]["data"]
    click = {"points": [{"customdata": [1, "hover"]}]}

    props = response_props(call(ui, "traces-span-details", [click], states=[spans]))

    shown = texts(props["traces-span-details"]["children"])
    assert "feature_store.lookup" in shown
    assert "attribute db.system" in shown
    assert "redis" in shown


def test_a_bad_trace_id_is_reported(ui: Any, canary: seed.Canary) -> None:
    props = response_props(call(ui, "traces-status", [seed.CANARY_MODEL, "-24h", "", "xyz", "p95"]))

    assert "trace: must be 32 hex digits" in " ".join(texts(props["traces-status"]["children"]))


def test_profiler_shows_the_traces_the_top_operators_and_the_diff(
    ui: Any, canary: seed.Canary
) -> None:
    props = response_props(call(ui, "profiler-status", [seed.CANARY_MODEL, "", [], "", "", ""]))

    rows = find_all(props["profiler-profiles"]["children"], lambda p: "data-profile" in p)
    assert [r["props"]["data-profile"] for r in rows] == [
        str(canary.profile_ids["v7"]),
        str(canary.profile_ids["v6"]),
    ]
    operators = figure_of(props, "profiler-operators")
    assert "Trace" not in [trace["name"] for trace in operators["data"]]
    diff = props["profiler-diff"]["children"]
    assert texts(by_id(diff, "profiler-diff-title"))[0].startswith("v7 (#")
    first = find_all(diff, lambda p: "data-operator" in p)[0]
    assert first["props"]["data-operator"] == seed.CHANGED_OPERATOR
    assert figure_of(props, "profiler-timeline")["layout"]["title"]["text"].startswith(
        "Timeline of step"
    )


def test_profiler_diff_of_chosen_traces_and_a_bad_id(ui: Any, canary: seed.Canary) -> None:
    ids = canary.profile_ids
    swapped = [seed.CANARY_MODEL, "", [], "", str(ids["v7"]), str(ids["v6"])]
    props = response_props(call(ui, "profiler-status", swapped))
    bad = response_props(call(ui, "profiler-status", [seed.CANARY_MODEL, "99", [], "", "", ""]))

    title = texts(by_id(props["profiler-diff"]["children"], "profiler-diff-title"))[0]
    assert title.startswith(f"v6 (#{ids['v6']}) against v7 (#{ids['v7']})")
    assert "profile: no profiler trace 99" in " ".join(texts(bad["profiler-status"]["children"]))


def test_profiler_of_a_model_without_traces_says_how_to_upload(
    ui: Any, canary: seed.Canary
) -> None:
    props = response_props(call(ui, "profiler-status", ["ranker", "", [], "", "", ""]))

    assert "No profiler traces for this model" in texts(props["profiler-profiles"]["children"])
