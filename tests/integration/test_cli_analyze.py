"""`observe analyze latency` on both databases."""

from __future__ import annotations

from observe.db.engine import Database
from tests.factories import T0
from tests.integration.pipeline import latency_scenarios as scenarios
from tests.integration.test_cli import Invoke, cli, failed, json_of, succeeded

__all__ = ["cli"]  # the fixture

WINDOW = [
    "--start",
    (T0 - scenarios.HISTORY).isoformat(),
    "--end",
    (T0 + scenarios.AFTER).isoformat(),
]


def test_analyze_latency_reports_the_regression_its_carrier_and_event(
    cli: Invoke, db: Database
) -> None:
    scenarios.store(db, *scenarios.canary_history())

    result = json_of(
        cli(
            "analyze", "latency", "--model", "fraud-scorer", *WINDOW, "--percentile", "95", "--json"
        )
    )
    text = succeeded(cli("analyze", "latency", "--model", "fraud-scorer", *WINDOW)).stdout

    [regression] = [r for r in result["regressions"] if r["series"] == "all"]
    assert {r["series"] for r in result["regressions"]} == {"all", "v2"}
    assert result["percentiles"] == [95.0]
    assert result["bucket_seconds"] == 300
    assert regression["onset_at"] == T0.isoformat()
    assert regression["model_version"] == "v2"
    assert regression["event"]["kind"] == "canary"
    assert regression["significance"]["source"] == "records"
    assert "2026-11-16 12:00" in text
    assert "model_version=v2" in text
    assert "canary v2" in text


def test_analyze_latency_of_one_version_and_of_a_quiet_model(cli: Invoke, db: Database) -> None:
    scenarios.store(db, *scenarios.host_history())

    result = json_of(
        cli(
            "analyze",
            "latency",
            "--model",
            "fraud-scorer",
            "--version",
            "v1",
            *WINDOW,
            "--percentile",
            "95",
            "--bucket",
            "10m",
            "--json",
        )
    )
    quiet = succeeded(cli("analyze", "latency", "--model", "nobody", *WINDOW)).stdout

    assert {r["series"] for r in result["regressions"]} == {"all", "v1"}
    assert result["bucket_seconds"] == 600
    assert all(r["carriers"][0]["value"] == "gpu-3" for r in result["regressions"])
    assert "no latency regressions" in quiet


def test_analyze_latency_refuses_bad_options(cli: Invoke) -> None:
    failed(cli("analyze", "latency", "--model", "m", "--percentile", "100"), 2, "--percentile")
    failed(cli("analyze", "latency", "--model", "m", "--bucket", "soon"), 2, "--bucket")
    failed(cli("analyze", "latency", "--model", "m", "--bucket", "90s"), 2, "multiple of 60")
    failed(cli("analyze", "latency", "--model", "m", "--start", "-1h", "--end", "-2h"), 2, "start")
