"""dashboards.links: page addresses with their URL state, and where each cause points."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import pytest

from analyzers.rootcause import Cause
from dashboards import links
from tests.unit.dashboards.builders import T0, profile, triage_view


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


def test_page_urls_carry_times_as_rfc3339_and_leave_out_empty_values() -> None:
    url = links.triage_url("fraud scorer", T0, T0 + dt.timedelta(hours=1), baseline_start=None)

    assert urlparse(url).path == "/ui/triage"
    assert query(url) == {
        "model": ["fraud scorer"],
        "start": ["2026-11-16T12:00:00Z"],
        "end": ["2026-11-16T13:00:00Z"],
    }


def test_times_in_other_zones_are_written_in_utc() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))

    assert links.format_param(dt.datetime(2026, 11, 16, 13, 0, tzinfo=berlin)) == (
        "2026-11-16T12:00:00Z"
    )
    assert links.format_param("-24h") == "-24h"


def test_profiler_and_traces_urls() -> None:
    assert links.profiler_url("m", base=3, target=4) == "/ui/profiler?model=m&base=3&target=4"
    assert query(links.traces_url("m", "-1h", None, trace="ab" * 16)) == {
        "model": ["m"],
        "start": ["-1h"],
        "trace": ["ab" * 16],
    }


def cause(kind: str, scope: dict[str, str]) -> Cause:
    return Cause(kind, 0.9, scope, "summary", "action")


def texts_and_paths(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(text, urlparse(href).path) for text, href in found]


def test_an_operator_cause_points_at_the_profiler_diff_of_the_compared_traces() -> None:
    view = triage_view(profiles=(profile(3, "v6"), profile(4, "v7")))

    found = links.for_cause(cause("model_operator", {"operator": "aten::addmm"}), view)

    [(text, href)] = found
    assert text == "profiler diff v6 → v7"
    assert query(href) == {"model": ["checkout"], "base": ["3"], "target": ["4"]}


def test_a_deploy_cause_points_at_latency_over_baseline_and_window() -> None:
    view = triage_view()

    found = links.for_cause(cause("deploy", {"model_version": "v7"}), view)

    [(text, href)] = found
    assert text == "latency"
    assert query(href)["start"] == ["2026-11-16T11:00:00Z"]
    assert query(href)["end"] == ["2026-11-16T13:00:00Z"]


def test_a_host_cause_points_at_the_host_metrics_and_latency_by_host() -> None:
    found = links.for_cause(cause("host_degradation", {"host": "gpu-3"}), triage_view())

    assert texts_and_paths(found) == [("gpu-3 metrics", "/ui/infra"), ("latency", "/ui/latency")]
    assert query(found[0][1])["host"] == ["gpu-3"]
    assert query(found[1][1])["by"] == ["host"]


@pytest.mark.parametrize(
    ("kind", "scope", "expected"),
    [
        ("dependency_latency", {"span": "feature_store.get"}, [("slowest traces", "/ui/traces")]),
        ("data_drift", {"feature": "amount"}, [("drift of amount", "/ui/drift")]),
        ("traffic_surge", {"model": "checkout"}, [("latency", "/ui/latency")]),
    ],
)
def test_each_cause_kind_points_where_its_evidence_is(
    kind: str, scope: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert texts_and_paths(links.for_cause(cause(kind, scope), triage_view())) == expected


def test_a_drift_cause_opens_its_feature_against_the_diagnosis_baseline() -> None:
    [(_, href)] = links.for_cause(cause("data_drift", {"feature": "amount"}), triage_view())

    assert query(href) == {
        "model": ["checkout"],
        "start": ["2026-11-16T12:00:00Z"],
        "end": ["2026-11-16T13:00:00Z"],
        "baseline_start": ["2026-11-16T11:00:00Z"],
        "baseline_end": ["2026-11-16T12:00:00Z"],
        "feature": ["amount"],
    }


def test_the_diagnosis_links_to_every_page_of_its_window() -> None:
    with_profiles = triage_view(profiles=(profile(3, "v6"), profile(4, "v7")))

    found = texts_and_paths(links.for_diagnosis(with_profiles))

    assert found == [
        ("traces of the window", "/ui/traces"),
        ("profiler diff v6 → v7", "/ui/profiler"),
        ("latency, baseline and window", "/ui/latency"),
        ("drift of the window against the baseline", "/ui/drift"),
        ("GPU and host metrics", "/ui/infra"),
    ]
    assert len(links.for_diagnosis(triage_view())) == 4
