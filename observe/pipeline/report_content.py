"""The numbers of a weekly report: one model's ISO week against the week before, and the summary
across models (observe.schemas.reports).

Everything is read through the same pipeline and storage functions as the API and the UI:
traffic, errors and percentiles from the latency rollups (`model_overview`, the numbers of GET
/api/v1/models for the same window), regressions and SLO breaches from the stored findings
with a diagnosis of each regression, drift of the week from the hourly feature profiles, skew
from the newest records against the training reference, GPU use from metric aggregates, and
the model's events. The "needs attention" list is derived from those numbers alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import attention, latency
from observe.pipeline.drift import DriftInputError, DriftQuery, analyze_drift
from observe.pipeline.incidents import (
    DIAGNOSIS_WINDOW,
    diagnose_briefly,
    diagnosis_windows,
    onset_of,
    triage_url,
    ui_url,
)
from observe.pipeline.latency_analysis import REGRESSION_KIND, SLO_KIND
from observe.pipeline.overview import model_overview
from observe.pipeline.skew import SkewQuery, analyze_skew
from observe.pipeline.weeks import Week
from observe.schemas.diagnosis import Period
from observe.schemas.findings import FindingOut
from observe.schemas.reads import ModelOut
from observe.schemas.reports import (
    Change,
    DriftFeatureReport,
    DriftWeek,
    EventReport,
    GpuDevice,
    GpuWeek,
    ModelReport,
    ModelSeries,
    RegressionReport,
    SeriesTable,
    SkewWeek,
    SloBreachReport,
    SloReport,
    SummaryModel,
    SummaryReport,
    Traffic,
    VersionWeek,
)
from observe.storage import findings as finding_store
from observe.storage import metrics as metric_store
from observe.storage import models as model_store
from observe.storage import references as reference_store
from observe.storage import rollups as rollup_store
from observe.storage import signals as signal_store
from observe.storage.models import ModelInfo

log = logging.getLogger(__name__)

HOUR_SECONDS = 3600
TOP_FEATURES = 5
#: Regressions diagnosed per report, the strongest first; the others are listed without one.
MAX_DIAGNOSED = 10
GPU_METRICS = (
    "gpu_utilization_pct",
    "gpu_memory_used_mb",
    "gpu_memory_total_mb",
    "gpu_temperature_c",
)
#: Hourly series of these metrics are kept for the report's charts ...
GPU_CHART_METRICS = ("gpu_utilization_pct", "gpu_memory_used_mb")
#: ... for at most this many devices (the busiest by peak memory).
MAX_CHART_DEVICES = 32
#: A p-value of 0 would make a drift's strength infinite; it is capped here.
MAX_STRENGTH = 1000.0
HOST_TAG = "host"


@dataclass(frozen=True)
class ReportContext:
    """What every report of one week shares."""

    week: Week
    settings: Settings
    now: dt.datetime

    @property
    def previous(self) -> Week:
        return self.week.previous()

    @property
    def base_url(self) -> str:
        return self.settings.base_url


def models_of_week(db: Database, week: Week) -> list[str]:
    """Models with traffic in the week or the week before (so a model that went quiet shows)."""
    with db.sessions() as session:
        return rollup_store.list_rollup_models(session, start=week.previous().start, end=week.end)


# --- a model's week ----------------------------------------------------------------------------


def build_model_report(db: Database, model: str, context: ReportContext) -> ModelReport:
    """One model's week.

    Raises:
        LookupError: no model of that name.
    """
    week = context.week
    with db.sessions() as session:
        info = model_store.get_model(session, model)
        if info is None:
            raise LookupError(f"no model named {model!r}")
        current = model_overview(session, info, start=week.start, end=week.end)
        previous = model_overview(
            session, info, start=context.previous.start, end=context.previous.end
        )
        series = _series(session, info, context)
        findings = finding_store.load_findings(
            session,
            model=model,
            kinds=[REGRESSION_KIND, SLO_KIND, "drift"],
            start=week.start,
            end=week.end,
            limit=1000,
        )
        events = signal_store.load_events(session, model=model, start=week.start, end=week.end)
        gpu = _gpu_week(session, context, _model_hosts(session, model, context))
        gpu_hourly = _gpu_hourly(session, context, gpu)
    regressions = _regressions(db, model, findings, context)
    drift = _drift(db, model, current, findings, context)
    skew = _skew(db, model, current, context)
    report = ModelReport(
        model=model,
        week=week.name,
        window=Period(start=week.start, end=week.end),
        previous_window=Period(start=context.previous.start, end=context.previous.end),
        generated_at=context.now,
        links=_model_links(model, context),
        needs_attention=[],
        overview=current,
        slo=_slo_report(info, current, series),
        traffic=traffic_change(current, previous),
        versions=_versions(current),
        regressions=regressions,
        slo_breaches=_slo_breaches(findings, context),
        drift=drift,
        skew=skew,
        gpu=gpu,
        events=[_event(e) for e in events],
        event_counts=dict(sorted(Counter(e.kind for e in events).items())),
        series=series.model_copy(update={"gpu_hourly": gpu_hourly}),
    )
    return report.model_copy(
        update={"needs_attention": attention.model_attention(report, context.base_url)}
    )


def traffic_change(current: ModelOut, previous: ModelOut) -> Traffic:
    """The week against the week before."""
    return Traffic(
        num_requests=change(current.num_requests, previous.num_requests),
        num_errors=change(current.num_errors, previous.num_errors),
        error_rate=change(current.error_rate, previous.error_rate),
        mean_ms=change(current.mean_ms, previous.mean_ms),
        p50=change(current.p50, previous.p50),
        p95=change(current.p95, previous.p95),
        p99=change(current.p99, previous.p99),
    )


def change(current: float | None, previous: float | None) -> Change:
    """`current` against `previous`; the relative change is None without a non-zero base."""
    relative = None
    if current is not None and previous:
        relative = (float(current) - float(previous)) / float(previous)
    return Change(
        current=None if current is None else float(current),
        previous=None if previous is None else float(previous),
        change=relative,
    )


def _versions(current: ModelOut) -> list[VersionWeek]:
    total = current.num_requests
    return [
        VersionWeek(
            model_version=v.model_version,
            num_requests=v.num_requests,
            share_of_requests=v.num_requests / total if total else None,
            error_rate=v.error_rate,
            p50=v.p50,
            p95=v.p95,
            p99=v.p99,
        )
        for v in current.versions
        if v.num_requests
    ]


def _model_links(model: str, context: ReportContext) -> dict[str, str]:
    week = context.week
    return {
        "latency": ui_url(context.base_url, "latency", model=model, start=week.start, end=week.end),
        "triage": triage_url(context.base_url, model, week.start, week.end),
        "infra": ui_url(context.base_url, "infra", start=week.start, end=week.end),
    }


def _event(event: Any) -> EventReport:
    return EventReport(
        timestamp=event.timestamp,
        kind=event.kind,
        model_version=event.model_version,
        traffic_pct=event.traffic_pct,
        description=event.description,
    )


# --- latency series and the SLO ----------------------------------------------------------------


def figure_percentile(info: ModelInfo) -> float:
    """The percentile the report's charts show: the SLO's, else p95."""
    return info.slo.latency_percentile or 95.0


def _percentiles(info: ModelInfo) -> list[float]:
    return sorted({*latency.DEFAULT_PERCENTILES, figure_percentile(info)})


def _series(session: Any, info: ModelInfo, context: ReportContext) -> ModelSeries:
    percentiles = _percentiles(info)
    frames = {
        name: latency.latency_series(
            session,
            model=info.name,
            start=week.start,
            end=week.end,
            bucket_seconds=HOUR_SECONDS,
            by=by,
            percentiles=percentiles,
        ).frame
        for name, week, by in (
            ("hourly", context.week, latency.VERSION),
            ("hourly_all", context.week, latency.ALL),
            ("previous_hourly_all", context.previous, latency.ALL),
        )
    }
    return ModelSeries(
        percentile_columns=[latency.percentile_column(p) for p in percentiles],
        gpu_hourly=SeriesTable(columns=[], rows=[]),
        **{name: frame_table(frame) for name, frame in frames.items()},
    )


def _slo_report(info: ModelInfo, current: ModelOut, series: ModelSeries) -> SloReport:
    slo, status = current.slo, current.slo_status
    hourly = table_frame(series.hourly_all)
    with_traffic = hourly[hourly["num_requests"] > 0] if not hourly.empty else hourly
    latency_hours = error_hours = None
    if slo.latency_ms is not None and slo.latency_percentile is not None and len(with_traffic):
        column = latency.percentile_column(slo.latency_percentile)
        latency_hours = int((with_traffic[column].astype(float) > slo.latency_ms).sum())
    if slo.error_rate_pct is not None and len(with_traffic):
        rates = with_traffic["error_rate"].astype(float) * 100
        error_hours = int((rates > slo.error_rate_pct).sum())
    return SloReport(
        latency_percentile=slo.latency_percentile,
        latency_ms=slo.latency_ms,
        error_rate_pct=slo.error_rate_pct,
        observed_latency_ms=status.latency_ms,
        latency_ok=status.latency_ok,
        observed_error_rate_pct=status.error_rate_pct,
        error_rate_ok=status.error_rate_ok,
        hours_with_traffic=len(with_traffic),
        hours_latency_breached=latency_hours,
        hours_error_rate_breached=error_hours,
    )


def frame_table(frame: pd.DataFrame) -> SeriesTable:
    """A DataFrame as a JSON-ready table: timestamps in RFC 3339, NaN as null."""
    columns = [str(c) for c in frame.columns]
    rows = [[_json_value(value) for value in row] for row in frame.itertuples(index=False)]
    return SeriesTable(columns=columns, rows=rows)


def table_frame(table: SeriesTable) -> pd.DataFrame:
    """A stored table back as a DataFrame, with `bucket_start` as UTC timestamps."""
    frame = pd.DataFrame(table.rows, columns=table.columns)
    if "bucket_start" in frame.columns:
        frame["bucket_start"] = pd.to_datetime(frame["bucket_start"], utc=True)
    return frame


def _json_value(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- regressions and SLO breaches --------------------------------------------------------------


def _regressions(
    db: Database, model: str, findings: Sequence[FindingOut], context: ReportContext
) -> list[RegressionReport]:
    week = context.week
    found = [
        f
        for f in findings
        if f.kind == REGRESSION_KIND and f.status != "ok" and onset_of(f) < week.end
    ]
    found.sort(key=lambda f: -(f.severity or 0.0))
    reports = [
        _regression(db, f, context, diagnose=rank < MAX_DIAGNOSED) for rank, f in enumerate(found)
    ]
    return sorted(reports, key=lambda r: r.onset_at)


def _regression(
    db: Database, finding: FindingOut, context: ReportContext, *, diagnose: bool
) -> RegressionReport:
    onset = onset_of(finding)
    details = finding.details or {}
    parts = details.get("regressions") or [{}]
    worst = max(parts, key=lambda r: r.get("ratio") or 0.0)
    windows = diagnosis_windows(onset, now=min(context.now, context.week.end))
    diagnosis = None
    if diagnose and windows is not None:
        try:
            with db.sessions() as session:
                diagnosis = diagnose_briefly(
                    session,
                    model=finding.model,
                    windows=windows,
                    rollup_tags=context.settings.rollup_tags,
                )
        except Exception:  # a report without one diagnosis beats no report
            log.exception("diagnosis of regression finding %s failed", finding.id)
    cleared = worst.get("cleared_at")
    triage_end = windows.end if windows else onset + DIAGNOSIS_WINDOW
    return RegressionReport(
        finding_id=finding.id,
        status=finding.status,
        model_version=finding.model_version,
        onset_at=onset,
        cleared_at=dt.datetime.fromisoformat(cleared) if isinstance(cleared, str) else None,
        percentile=worst.get("percentile"),
        before_ms=worst.get("before_ms"),
        after_ms=worst.get("after_ms"),
        ratio=worst.get("ratio"),
        summary=finding.summary,
        event=worst.get("event"),
        diagnosis=diagnosis,
        triage_url=triage_url(context.base_url, finding.model, onset, triage_end),
    )


def _slo_breaches(findings: Sequence[FindingOut], context: ReportContext) -> list[SloBreachReport]:
    breaches = [
        SloBreachReport(
            finding_id=f.id,
            objective=str((f.details or {}).get("objective", "")),
            status=f.status,
            since=onset_of(f),
            until=f.window_end,
            bound=(f.details or {}).get("bound"),
            observed=(f.details or {}).get("observed"),
            summary=f.summary,
        )
        for f in findings
        if f.kind == SLO_KIND and f.status != "ok"
    ]
    return sorted(breaches, key=lambda b: b.since)


# --- drift and skew ----------------------------------------------------------------------------


def _active_versions(current: ModelOut) -> list[str]:
    return [v.model_version for v in current.versions if v.num_requests]


def _drift(
    db: Database,
    model: str,
    current: ModelOut,
    findings: Sequence[FindingOut],
    context: ReportContext,
) -> list[DriftWeek]:
    week = context.week
    days = _drifted_days(findings, week)
    results = []
    for version in _active_versions(current):
        query = DriftQuery(model=model, start=week.start, end=week.end, model_version=version)
        try:
            report = analyze_drift(db, query, settings=context.settings, now=context.now)
        except Exception as error:  # the week's report goes out with the reason instead
            results.append(_drift_error(version, _reason(error, model), days.get(version, 0)))
            continue
        result = report.result
        baseline = report.baseline
        described = (
            f"reference {baseline.reference.name}"
            if baseline.reference is not None
            else "the week before"
        )
        results.append(
            DriftWeek(
                model_version=version,
                baseline=described,
                num_rows_current=report.num_rows_current,
                num_rows_baseline=report.num_rows_baseline,
                dataset_drifted=result.dataset_drifted,
                num_features=len(result.features),
                num_drifted=result.num_drifted,
                share_drifted=result.share_drifted,
                top_features=top_features(result.features),
                days_drifted=days.get(version, 0),
            )
        )
    return results


def _reason(error: Exception, model: str) -> str:
    """What to say in place of a result: an input problem as it is; anything else is logged
    and named."""
    if isinstance(error, DriftInputError):
        return str(error)
    log.exception("weekly report of %s: analysis failed", model)
    return f"the analysis failed: {type(error).__name__}: {error}"


def _drift_error(version: str, error: str, days: int) -> DriftWeek:
    return DriftWeek(
        model_version=version,
        baseline="",
        num_rows_current=0,
        num_rows_baseline=0,
        dataset_drifted=None,
        num_features=0,
        num_drifted=0,
        share_drifted=None,
        top_features=[],
        days_drifted=days,
        error=error,
    )


def _drifted_days(findings: Sequence[FindingOut], week: Week) -> dict[str, int]:
    """Per version, the days of the week with a drift finding that saw the data set drift."""
    days: dict[str, set[dt.date]] = {}
    for finding in findings:
        if finding.kind != "drift" or finding.status == "ok":
            continue
        if not week.start <= finding.window_start < week.end:
            continue
        version = finding.model_version or "all"
        days.setdefault(version, set()).add(finding.window_start.date())
    return {version: len(dates) for version, dates in days.items()}


def top_features(features: Sequence[Any], *, limit: int = TOP_FEATURES) -> list[DriftFeatureReport]:
    """The features furthest past their thresholds, strongest first."""
    reports = [
        DriftFeatureReport(
            feature=f.feature,
            test=f.test,
            statistic=_finite(f.statistic),
            p_value=_finite(f.p_value),
            threshold=f.threshold,
            drifted=bool(f.drifted),
            strength=drift_strength(f.statistic, f.p_value, f.threshold),
        )
        for f in features
    ]
    reports.sort(key=lambda r: (-(r.strength or 0.0), r.feature))
    return reports[:limit]


def drift_strength(statistic: float, p_value: float | None, threshold: float) -> float | None:
    """How far a test is past its threshold: distance / threshold for distances, threshold /
    p-value for tests with a p-value; 1 or more means drift (capped at `MAX_STRENGTH`)."""
    if p_value is None:
        if threshold <= 0 or not math.isfinite(statistic):
            return None
        return min(statistic / threshold, MAX_STRENGTH)
    if not math.isfinite(p_value):
        return None
    return MAX_STRENGTH if p_value <= 0 else min(threshold / p_value, MAX_STRENGTH)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _skew(db: Database, model: str, current: ModelOut, context: ReportContext) -> list[SkewWeek]:
    week = context.week
    results = []
    for version in _active_versions(current):
        with db.sessions() as session:
            reference = reference_store.find_reference_dataset(
                session, model=model, model_version=version
            )
        if reference is None:
            continue
        query = SkewQuery(model=model, start=week.start, end=week.end, model_version=version)
        try:
            report = analyze_skew(db, query, settings=context.settings)
        except Exception as error:  # the week's report goes out with the reason instead
            results.append(_skew_error(version, reference.name, _reason(error, model)))
            continue
        schema, distribution = report.result.schema, report.result.distribution
        results.append(
            SkewWeek(
                model_version=version,
                reference=reference.name,
                num_rows_serving=report.num_rows_serving,
                missing_features=list(schema.missing),
                extra_features=list(schema.extra),
                retyped_features=sorted(schema.retyped),
                num_features=len(distribution.features),
                num_drifted=distribution.num_drifted,
                dataset_drifted=distribution.dataset_drifted,
                top_features=top_features(distribution.features),
            )
        )
    return results


def _skew_error(version: str, reference: str, error: str) -> SkewWeek:
    return SkewWeek(
        model_version=version,
        reference=reference,
        num_rows_serving=0,
        missing_features=[],
        extra_features=[],
        retyped_features=[],
        num_features=0,
        num_drifted=0,
        dataset_drifted=None,
        top_features=[],
        error=error,
    )


# --- GPUs --------------------------------------------------------------------------------------


def _model_hosts(session: Any, model: str, context: ReportContext) -> list[str] | None:
    """The hosts that served the model in the week (from the host tag's rollups); None when
    hosts are not rolled up, so every host is reported."""
    if HOST_TAG not in context.settings.rollup_tags:
        return None
    week = context.week
    return rollup_store.list_rollup_dim_values(
        session, model=model, dim_key=HOST_TAG, start=week.start, end=week.end
    )


def _gpu_week(session: Any, context: ReportContext, hosts: list[str] | None) -> GpuWeek:
    if hosts is not None and not hosts:
        return GpuWeek(hosts="model", devices=[])
    week = context.week
    frame = signal_store.summarize_metric_samples(
        session, start=week.start, end=week.end, hosts=hosts
    )
    frame = frame[frame["name"].isin(GPU_METRICS)]
    return GpuWeek(hosts="all" if hosts is None else "model", devices=gpu_devices(frame))


def gpu_devices(frame: pd.DataFrame) -> list[GpuDevice]:
    """Per (host, resource): mean and peak utilization, peak memory against the device's
    memory, and peak temperature, from `summarize_metric_samples` rows."""
    devices = []
    for (host, resource), group in frame.groupby(["host", "resource"], sort=True):
        stats = {row.name: row for row in group.itertuples(index=False)}
        used = _stat(stats, "gpu_memory_used_mb", "max")
        total = _stat(stats, "gpu_memory_total_mb", "max")
        headroom = 100.0 * (1.0 - used / total) if used is not None and total else None
        devices.append(
            GpuDevice(
                host=str(host),
                resource=str(resource),
                mean_utilization_pct=_stat(stats, "gpu_utilization_pct", "mean"),
                max_utilization_pct=_stat(stats, "gpu_utilization_pct", "max"),
                max_memory_used_mb=used,
                memory_total_mb=total,
                memory_headroom_pct=headroom,
                max_temperature_c=_stat(stats, "gpu_temperature_c", "max"),
            )
        )
    return devices


def _stat(stats: dict[str, Any], name: str, column: str) -> float | None:
    row = stats.get(name)
    return None if row is None else _finite(float(getattr(row, column)))


def _gpu_hourly(session: Any, context: ReportContext, gpu: GpuWeek) -> SeriesTable:
    devices = sorted(gpu.devices, key=lambda d: -(d.max_memory_used_mb or 0.0))
    devices = devices[:MAX_CHART_DEVICES]
    if not devices:
        return frame_table(pd.DataFrame(columns=list(metric_store.SERIES_COLUMNS)))
    week = context.week
    frame = metric_store.load_metric_series(
        session,
        start=week.start,
        end=week.end,
        bucket_seconds=HOUR_SECONDS,
        names=list(GPU_CHART_METRICS),
        hosts=sorted({d.host for d in devices}),
    )
    keep = {(d.host, d.resource) for d in devices}
    pairs = list(zip(frame["host"], frame["resource"], strict=True))
    return frame_table(frame[[pair in keep for pair in pairs]])


# --- the summary -------------------------------------------------------------------------------


def build_summary_report(
    db: Database, reports: Sequence[ModelReport], context: ReportContext
) -> SummaryReport:
    """Every model's week, from the models' reports, and every host's GPUs."""
    week = context.week
    with db.sessions() as session:
        gpu = _gpu_week(session, context, None)
    items = [item for report in reports for item in report.needs_attention]
    counts: Counter[str] = Counter()
    for report in reports:
        counts.update(report.event_counts)
    return SummaryReport(
        week=week.name,
        window=Period(start=week.start, end=week.end),
        previous_window=Period(start=context.previous.start, end=context.previous.end),
        generated_at=context.now,
        links={
            "overview": ui_url(context.base_url, "", start=week.start, end=week.end),
            "reports": ui_url(context.base_url, "reports", week=week.name),
        },
        needs_attention=attention.ordered(items),
        num_requests=_total(reports, "num_requests"),
        num_errors=_total(reports, "num_errors"),
        models=[_summary_model(report) for report in reports],
        gpu=gpu,
        event_counts=dict(sorted(counts.items())),
    )


def _total(reports: Sequence[ModelReport], name: str) -> Change:
    current = sum(getattr(r.traffic, name).current or 0.0 for r in reports)
    previous = sum(getattr(r.traffic, name).previous or 0.0 for r in reports)
    return change(current, previous)


def _summary_model(report: ModelReport) -> SummaryModel:
    return SummaryModel(
        overview=report.overview,
        traffic=report.traffic,
        num_needs_attention=len(report.needs_attention),
        num_regressions=len(report.regressions),
        num_slo_breaches=len(report.slo_breaches),
        num_drifted_versions=sum(1 for d in report.drift if d.dataset_drifted),
        num_deploys=report.event_counts.get("deploy", 0),
        num_rollbacks=report.event_counts.get("rollback", 0),
    )
