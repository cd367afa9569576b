"""The "needs attention" list at the top of a weekly report, derived from the report's numbers.

Critical: an SLO the week as a whole missed, a latency regression still open, a model whose
traffic stopped. Warning: SLO breaches that came and went, regressions that cleared, an error
rate that at least doubled, p95 up by a fifth or more, traffic down by half, a data set that
drifted or is skewed against its training data, a GPU with little memory to spare or running
flat out, and rollbacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from observe.pipeline.incidents import ui_url
from observe.schemas.reports import AttentionItem, ModelReport

#: p95 up by this much (relative) week over week.
LATENCY_CHANGE = 0.2
#: Error rate at least this many times last week's, and up by at least this much (absolute).
ERROR_RATE_FACTOR = 2.0
MIN_ERROR_RATE_RISE = 0.005
#: Traffic down by this much (relative), from at least this many requests.
TRAFFIC_DROP = -0.5
MIN_PREVIOUS_REQUESTS = 100
#: GPU memory headroom at its peak under this share, and utilization averaging at least this.
LOW_MEMORY_HEADROOM_PCT = 10.0
HIGH_UTILIZATION_PCT = 90.0
SEVERITY_ORDER = {"critical": 0, "warning": 1}


def ordered(items: Iterable[AttentionItem]) -> list[AttentionItem]:
    """Critical before warning, otherwise in the order given."""
    return sorted(items, key=lambda item: SEVERITY_ORDER[item.severity])


def model_attention(report: ModelReport, base_url: str) -> list[AttentionItem]:
    """Everything in a model's week that needs a look, most severe first."""
    items = [
        *_slo(report),
        *_regressions(report),
        *_traffic(report),
        *_drift(report),
        *_skew(report),
        *_gpus(report, base_url),
        *_rollbacks(report),
    ]
    return ordered(items)


def _item(
    report: ModelReport, severity: str, kind: str, summary: str, link: str | None = None
) -> AttentionItem:
    return AttentionItem(
        severity=severity,  # type: ignore[arg-type]
        kind=kind,
        model=report.model,
        summary=summary,
        link=link or report.links.get("latency"),
    )


def _slo(report: ModelReport) -> list[AttentionItem]:
    slo, model = report.slo, report.model
    items = []
    if slo.latency_ok is False:
        items.append(
            _item(
                report,
                "critical",
                "slo_breach",
                f"p{slo.latency_percentile:g} of {model} was {slo.observed_latency_ms:,.1f} ms "
                f"over the week, above its objective of {slo.latency_ms:g} ms "
                f"({_hours(slo.hours_latency_breached, slo.hours_with_traffic)})",
            )
        )
    if slo.error_rate_ok is False:
        items.append(
            _item(
                report,
                "critical",
                "slo_breach",
                f"error rate of {model} was {slo.observed_error_rate_pct:.2f}% over the week, "
                f"above its objective of {slo.error_rate_pct:g}% "
                f"({_hours(slo.hours_error_rate_breached, slo.hours_with_traffic)})",
            )
        )
    week_breached = {"latency": slo.latency_ok is False, "error_rate": slo.error_rate_ok is False}
    for breach in report.slo_breaches:
        if not week_breached.get(breach.objective):
            items.append(_item(report, "warning", "slo_breach", breach.summary))
    return items


def _hours(breached: int | None, total: int) -> str:
    return f"breached in {breached or 0} of {total} hours with traffic"


def _regressions(report: ModelReport) -> list[AttentionItem]:
    items = []
    for regression in report.regressions:
        cause = ""
        if regression.diagnosis and regression.diagnosis.causes:
            top = regression.diagnosis.causes[0]
            cause = f"; likely {top.kind.replace('_', ' ')}: {top.action}"
        state = "still open" if regression.status == "open" else "cleared"
        items.append(
            _item(
                report,
                "critical" if regression.status == "open" else "warning",
                "latency_regression",
                f"{regression.summary} ({state}){cause}",
                regression.triage_url,
            )
        )
    return items


def _traffic(report: ModelReport) -> list[AttentionItem]:
    traffic, model = report.traffic, report.model
    items = []
    requests = traffic.num_requests
    if not requests.current and (requests.previous or 0) > 0:
        items.append(
            _item(
                report,
                "critical",
                "traffic_drop",
                f"{model} served no requests this week ({requests.previous:,.0f} the week before)",
            )
        )
        return items
    if (
        requests.change is not None
        and requests.change <= TRAFFIC_DROP
        and (requests.previous or 0) >= MIN_PREVIOUS_REQUESTS
    ):
        items.append(
            _item(
                report,
                "warning",
                "traffic_drop",
                f"traffic of {model} fell {-requests.change:.0%} week over week "
                f"({requests.previous:,.0f} to {requests.current:,.0f} requests)",
            )
        )
    rate = traffic.error_rate
    if (
        rate.current is not None
        and rate.previous is not None
        and rate.current >= ERROR_RATE_FACTOR * rate.previous
        and rate.current - rate.previous >= MIN_ERROR_RATE_RISE
    ):
        items.append(
            _item(
                report,
                "warning",
                "error_rate",
                f"error rate of {model} rose from {rate.previous:.2%} to {rate.current:.2%} "
                "week over week",
            )
        )
    p95 = traffic.p95
    if p95.change is not None and p95.change >= LATENCY_CHANGE:
        items.append(
            _item(
                report,
                "warning",
                "latency_change",
                f"p95 of {model} rose {p95.change:.0%} week over week "
                f"({p95.previous:,.1f} ms to {p95.current:,.1f} ms)",
            )
        )
    return items


def _drift(report: ModelReport) -> list[AttentionItem]:
    items = []
    for drift in report.drift:
        if drift.dataset_drifted:
            features = ", ".join(f.feature for f in drift.top_features if f.drifted)
            summary = (
                f"{report.model} {drift.model_version}: {drift.num_drifted} of "
                f"{drift.num_features} features drifted against {drift.baseline} ({features})"
            )
        elif drift.days_drifted:
            summary = (
                f"{report.model} {drift.model_version}: data set drift on {drift.days_drifted} "
                f"day{'s' if drift.days_drifted > 1 else ''} of the week"
            )
        else:
            continue
        items.append(_item(report, "warning", "drift", summary, report.links.get("triage")))
    return items


def _skew(report: ModelReport) -> list[AttentionItem]:
    items = []
    for skew in report.skew:
        problems = []
        if skew.missing_features:
            problems.append(f"missing {', '.join(skew.missing_features)}")
        if skew.retyped_features:
            problems.append(f"retyped {', '.join(skew.retyped_features)}")
        if skew.dataset_drifted:
            problems.append(
                f"{skew.num_drifted} of {skew.num_features} features differ from training"
            )
        if problems:
            items.append(
                _item(
                    report,
                    "warning",
                    "skew",
                    f"{report.model} {skew.model_version} against reference {skew.reference}: "
                    + "; ".join(problems),
                )
            )
    return items


def _gpus(report: ModelReport, base_url: str) -> list[AttentionItem]:
    items = []
    window: dict[str, Any] = {"start": report.window.start, "end": report.window.end}
    for device in report.gpu.devices:
        link = ui_url(base_url, "infra", host=device.host, **window)
        name = f"{device.host}/{device.resource}"
        headroom = device.memory_headroom_pct
        if headroom is not None and headroom < LOW_MEMORY_HEADROOM_PCT:
            items.append(
                _item(
                    report,
                    "warning",
                    "gpu_memory",
                    f"GPU {name} peaked at {device.max_memory_used_mb:,.0f} of "
                    f"{device.memory_total_mb:,.0f} MB ({headroom:.1f}% headroom)",
                    link,
                )
            )
        utilization = device.mean_utilization_pct
        if utilization is not None and utilization >= HIGH_UTILIZATION_PCT:
            items.append(
                _item(
                    report,
                    "warning",
                    "gpu_saturation",
                    f"GPU {name} averaged {utilization:.0f}% utilization over the week",
                    link,
                )
            )
    return items


def _rollbacks(report: ModelReport) -> list[AttentionItem]:
    rollbacks = [e for e in report.events if e.kind == "rollback"]
    if not rollbacks:
        return []
    versions = ", ".join(sorted({e.model_version for e in rollbacks if e.model_version}))
    count = len(rollbacks)
    return [
        _item(
            report,
            "warning",
            "rollback",
            f"{report.model} was rolled back {count} time{'s' if count > 1 else ''}"
            + (f" (to {versions})" if versions else ""),
        )
    ]
