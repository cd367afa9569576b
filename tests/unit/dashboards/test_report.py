"""dashboards.report: file names, and the summary rendered for files, mail and text from a
hand-made report (escaped, script-free where it must be, offline)."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboards.report import (
    render_email_html,
    render_report_html,
    render_summary_text,
    safe_file_name,
    stem_for,
)
from observe.schemas.diagnosis import Period
from observe.schemas.reads import ModelOut, SloOut, SloStatus
from observe.schemas.reports import (
    AttentionItem,
    Change,
    GpuWeek,
    SummaryModel,
    SummaryReport,
    Traffic,
)

START = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
NAME = "<script>alert(1)</script>"


def change(current: float | None, previous: float | None) -> Change:
    relative = None if current is None or not previous else current / previous - 1
    return Change(current=current, previous=previous, change=relative)


def summary() -> SummaryReport:
    overview = ModelOut(
        name=NAME,
        created_at=START,
        start=START,
        end=START + dt.timedelta(days=7),
        num_requests=12_500,
        num_errors=12,
        error_rate=12 / 12_500,
        mean_ms=40.0,
        p50=38.0,
        p95=81.25,
        p99=120.0,
        slo=SloOut(latency_percentile=95, latency_ms=60),
        slo_status=SloStatus(
            latency_ms=81.25, latency_ok=False, error_rate_pct=None, error_rate_ok=None
        ),
        versions=[],
    )
    traffic = Traffic(
        num_requests=change(12_500, 10_000),
        num_errors=change(12, 10),
        error_rate=change(12 / 12_500, 0.001),
        mean_ms=change(40.0, 38.0),
        p50=change(38.0, 37.0),
        p95=change(81.25, 62.5),
        p99=change(120.0, 100.0),
    )
    return SummaryReport(
        week="2026-W47",
        window=Period(start=START, end=START + dt.timedelta(days=7)),
        previous_window=Period(start=START - dt.timedelta(days=7), end=START),
        generated_at=START + dt.timedelta(days=7, hours=6),
        links={"reports": "https://observe.example.com/ui/reports?week=2026-W47"},
        needs_attention=[
            AttentionItem(
                severity="critical",
                kind="slo_breach",
                model=NAME,
                summary=f"p95 of {NAME} was 81.2 ms",
                link="https://observe.example.com/ui/latency?model=x",
            )
        ],
        num_requests=change(12_500, 10_000),
        num_errors=change(12, 10),
        models=[
            SummaryModel(
                overview=overview,
                traffic=traffic,
                num_needs_attention=1,
                num_regressions=0,
                num_slo_breaches=0,
                num_drifted_versions=0,
                num_deploys=2,
                num_rollbacks=1,
            )
        ],
        gpu=GpuWeek(hosts="all", devices=[]),
        event_counts={"deploy": 2, "rollback": 1},
    )


@pytest.mark.parametrize(
    ("name", "stem"),
    [("fraud-scorer", "fraud-scorer"), ("ranker_v2.1", "ranker_v2.1")],
)
def test_plain_model_names_are_their_own_file_names(name: str, stem: str) -> None:
    assert safe_file_name(name) == stem


def test_other_names_are_made_safe_and_kept_apart() -> None:
    first, second = safe_file_name("team/a b"), safe_file_name("team_a/b")

    assert first.startswith("team_a_b-")
    assert second.startswith("team_a_b-")
    assert first != second
    assert safe_file_name("..") != ".."
    assert "/" not in safe_file_name("../../etc/passwd")
    assert stem_for(None) == "summary"


def test_the_summary_file_escapes_names_and_links_the_models_beside_it() -> None:
    document = render_report_html(summary())

    assert NAME not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert 'href="_script_alert_1___script_-' in document  # the model's report beside it
    assert "12,500" in document
    assert "+25.0%" in document  # requests, week over week
    assert "+30.0%" in document  # p95
    assert "critical" in document


def test_the_mail_body_has_no_scripts_and_links_the_server() -> None:
    body = render_email_html(summary(), model_links={NAME: "https://observe.example.com/r.html"})

    assert "<script" not in body.lower()
    assert 'href="https://observe.example.com/r.html"' in body
    assert "https://observe.example.com/ui/reports?week=2026-W47" in body


def test_the_text_summary_lists_what_needs_attention_and_each_model() -> None:
    text = render_summary_text(summary())

    assert text.splitlines()[:3] == [
        "observe weekly report 2026-W47: 1 model",
        "12,500 requests (+25.0% week over week)",
        "Needs attention (1):",
    ]
    assert f"{NAME}: 12,500 requests, errors 0.10%, p95 81.2 ms (+30.0%)" in text
