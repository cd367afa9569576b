"""What the UI pages show, loaded through observe's pipeline and storage functions.

No SQL here: every read goes through `observe.pipeline` or `observe.storage`, which read the
latency rollups (not raw records) and aggregate metric samples per time bucket in the database,
so a page costs the same at a million records as at a billion. Functions take a sessionmaker,
open one read session, and return plain dataclasses and DataFrames that `figures.py` draws.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from observe.api.errors import ApiError
from observe.api.params import resolve_window as resolve_api_window
from observe.pipeline import latency as latency_pipeline
from observe.pipeline.overview import list_model_overviews
from observe.pipeline.weeks import Week
from observe.schemas.findings import FindingOut
from observe.schemas.reads import ModelOut, SloOut
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage import findings as finding_store
from observe.storage import metrics as metric_store
from observe.storage import models as model_store
from observe.storage import reports as report_store
from observe.storage import signals as signal_store
from observe.storage.alerts import AlertRow as StoredAlert
from observe.storage.deliveries import DeliveryRow
from observe.storage.models import Slo
from observe.storage.reports import StoredReport

DEFAULT_WINDOW_SECONDS = 86_400
#: Bucket lengths the charts choose from, shortest first: the shortest that keeps a chart
#: under MAX_CHART_POINTS points per series.
BUCKET_CHOICES_SECONDS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400)
MAX_CHART_POINTS = 600
PERCENTILE_CHOICES = (50.0, 90.0, 95.0, 99.0, 99.9)
DEFAULT_PERCENTILE = 95.0
BY_VERSION = latency_pipeline.VERSION
BY_ALL = latency_pipeline.ALL
FINDINGS_LIMIT = 1000


class InputError(ValueError):
    """A page parameter that cannot be used; the message is shown to the user as it is."""


# --- windows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC"


def resolve_window(
    start: str | None, end: str | None, *, default_seconds: int = DEFAULT_WINDOW_SECONDS
) -> Window:
    """A window from URL values as the API takes them: RFC 3339, epoch seconds or ``-24h``;
    end defaults to now and start to `default_seconds` before end."""
    try:
        start_at, end_at = resolve_api_window(
            start or None, end or None, default_seconds=default_seconds
        )
    except ApiError as error:
        raise InputError(error.detail) from None
    return Window(start_at, end_at)


def auto_bucket_seconds(window: Window, *, max_points: int = MAX_CHART_POINTS) -> int:
    """The shortest bucket in BUCKET_CHOICES_SECONDS giving at most `max_points` buckets."""
    for seconds in BUCKET_CHOICES_SECONDS:
        if window.seconds / seconds <= max_points:
            return seconds
    return BUCKET_CHOICES_SECONDS[-1]


# --- overview ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A status shown as a badge: `kind` picks its colour (ok, breached, warn, none)."""

    kind: str
    text: str

    @classmethod
    def breached_if(cls, is_breached: bool, breached: str, ok: str) -> Verdict:
        """Breached (red) saying `breached` where `is_breached`, else ok (green) saying `ok`."""
        return cls("breached" if is_breached else "ok", breached if is_breached else ok)


@dataclass(frozen=True)
class ModelRow:
    model: ModelOut
    slo: Verdict
    drift: Verdict
    num_open_regressions: int
    open_findings: dict[str, int] = field(default_factory=dict)
    #: The most recently updated open latency regression, to diagnose from the overview.
    latest_regression: FindingOut | None = None

    @property
    def num_open_findings(self) -> int:
        return sum(self.open_findings.values())


@dataclass(frozen=True)
class Overview:
    window: Window
    rows: list[ModelRow]


def load_overview(sessions: sessionmaker[Session], window: Window) -> Overview:
    """Every model with traffic, errors, percentiles and SLO verdict in the window, and the
    findings (drift, regressions, ...) whose window overlaps it."""
    with sessions() as session:
        models = list_model_overviews(session, start=window.start, end=window.end)
        open_findings = finding_store.load_findings(
            session, statuses=["open"], start=window.start, end=window.end, limit=FINDINGS_LIMIT
        )
        drift_findings = finding_store.load_findings(
            session, kinds=["drift"], start=window.start, end=window.end, limit=FINDINGS_LIMIT
        )
    counts = Counter((f.model, f.kind) for f in open_findings)
    latest_drift: dict[str, FindingOut] = {}
    for finding in drift_findings:  # most recently updated first
        latest_drift.setdefault(finding.model, finding)
    latest_regression: dict[str, FindingOut] = {}
    for finding in open_findings:
        if finding.kind == "latency_regression":
            latest_regression.setdefault(finding.model, finding)
    rows = [
        ModelRow(
            model=model,
            slo=slo_verdict(model),
            drift=drift_verdict(latest_drift.get(model.name)),
            num_open_regressions=counts.get((model.name, "latency_regression"), 0),
            open_findings={k: n for (m, k), n in sorted(counts.items()) if m == model.name},
            latest_regression=latest_regression.get(model.name),
        )
        for model in models
    ]
    return Overview(window, rows)


def slo_verdict(model: ModelOut) -> Verdict:
    """Whether the window meets the model's SLO, as a badge."""
    status, slo = model.slo_status, model.slo
    if slo.latency_ms is None and slo.error_rate_pct is None:
        return Verdict("none", "no SLO")
    if model.num_requests == 0:
        return Verdict("none", "no traffic")
    breaches = []
    if status.latency_ok is False:
        breaches.append(
            f"p{slo.latency_percentile:g} {status.latency_ms:,.1f} > {slo.latency_ms:g} ms"
        )
    if status.error_rate_ok is False:
        breaches.append(f"errors {status.error_rate_pct:.2f}% > {slo.error_rate_pct:g}%")
    if breaches:
        return Verdict("breached", "breached: " + "; ".join(breaches))
    return Verdict("ok", "meets SLO")


def drift_verdict(finding: FindingOut | None) -> Verdict:
    """The latest drift finding of a model as a badge."""
    if finding is None:
        return Verdict("none", "not analysed")
    if finding.status == "open":
        return Verdict("breached", "drifting")
    if finding.status == "resolved":
        return Verdict("warn", "drift resolved")
    return Verdict("ok", "no drift")


def describe_slo(slo: SloOut | Slo) -> str:
    """``p95 ≤ 60 ms, errors ≤ 0.5%`` or ``-``."""
    parts = []
    if slo.latency_ms is not None and slo.latency_percentile is not None:
        parts.append(f"p{slo.latency_percentile:g} ≤ {slo.latency_ms:g} ms")
    if slo.error_rate_pct is not None:
        parts.append(f"errors ≤ {slo.error_rate_pct:g}%")
    return ", ".join(parts) or "-"


# --- latency -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventMarker:
    """A deploy, rollback, config change ... drawn as a vertical line."""

    at: dt.datetime
    kind: str
    model_version: str | None
    description: str | None

    @property
    def label(self) -> str:
        version = f" {self.model_version}" if self.model_version else ""
        return f"{self.kind}{version}" + (f": {self.description}" if self.description else "")


@dataclass(frozen=True)
class ChangePoint:
    """A stored latency regression finding, drawn where the regression began;
    `last_seen_at` is the end of the finding's window."""

    at: dt.datetime
    model_version: str | None
    status: str
    summary: str
    finding_id: int
    last_seen_at: dt.datetime | None = None


@dataclass(frozen=True)
class LatencyView:
    """A model's percentile series. `frame` columns: series, bucket_start, num_requests,
    num_errors, error_rate, mean_ms and `percentile_column`."""

    model: str
    window: Window
    bucket_seconds: int
    by: str
    percentile: float
    source: str
    frame: pd.DataFrame
    events: list[EventMarker]
    change_points: list[ChangePoint]
    slo: Slo | None

    @property
    def percentile_column(self) -> str:
        return latency_pipeline.percentile_column(self.percentile)

    @property
    def has_traffic(self) -> bool:
        return not self.frame.empty


def list_model_names(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return [info.name for info in model_store.list_models(session)]


def group_choices(rollup_tags: Sequence[str]) -> list[str]:
    """What latency can be split by from rollups: versions, everything, each rolled-up tag."""
    return [BY_VERSION, BY_ALL, *rollup_tags]


def parse_percentile(value: str | None) -> float:
    if value in (None, ""):
        return DEFAULT_PERCENTILE
    try:
        percentile = float(str(value).removeprefix("p"))
    except ValueError:
        raise InputError(f"percentile: {value!r} is not a number such as 95") from None
    if not 0 < percentile < 100:
        raise InputError("percentile: must be between 0 and 100")
    return percentile


def load_latency(
    sessions: sessionmaker[Session],
    *,
    model: str,
    window: Window,
    by: str = BY_VERSION,
    percentile: float = DEFAULT_PERCENTILE,
    rollup_tags: Sequence[str] = (),
    bucket_seconds: int | None = None,
) -> LatencyView:
    """Percentile series of a model per version (or tag value), from rollups, with its events,
    its latency-regression findings as change points, and its SLO."""
    choices = group_choices(rollup_tags)
    if by not in choices:
        raise InputError(f"by: {by!r} is not one of {', '.join(choices)}")
    bucket = bucket_seconds or auto_bucket_seconds(window)
    percentiles = sorted({50.0, percentile})
    with sessions() as session:
        info = model_store.get_model(session, model)
        if info is None:
            raise InputError(f"no model named {model!r}")
        series = latency_pipeline.latency_series(
            session,
            model=model,
            start=window.start,
            end=window.end,
            bucket_seconds=bucket,
            by=by,
            percentiles=percentiles,
            rollup_tags=rollup_tags,
        )
        events = signal_store.load_events(session, model=model, start=window.start, end=window.end)
        findings = finding_store.load_findings(
            session,
            model=model,
            kinds=["latency_regression"],
            start=window.start,
            end=window.end,
            limit=FINDINGS_LIMIT,
        )
    return LatencyView(
        model=model,
        window=Window(series.start, series.end),
        bucket_seconds=series.bucket_seconds,
        by=by,
        percentile=percentile,
        source=series.source,
        frame=series.frame,
        events=[EventMarker(e.timestamp, e.kind, e.model_version, e.description) for e in events],
        change_points=sorted(
            (
                ChangePoint(onset_of(f), f.model_version, f.status, f.summary, f.id, f.window_end)
                for f in findings
            ),
            key=lambda point: point.at,
        ),
        slo=info.slo if info.slo.latency_ms is not None else None,
    )


def onset_of(finding: FindingOut) -> dt.datetime:
    """When a regression began: its `details.onset_at` as the latency analysis stores it (the
    finding's window starts earlier, with the baseline it was compared against); the window's
    start for a finding without one."""
    onset = (finding.details or {}).get("onset_at")
    if isinstance(onset, str):
        try:
            parsed = dt.datetime.fromisoformat(onset)
        except ValueError:
            return finding.window_start
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return finding.window_start


# --- infra -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricChart:
    """One chart of the infra page: a well-known metric name, its title and unit."""

    name: str
    title: str
    unit: str
    y_max: float | None = None


INFRA_CHARTS = (
    MetricChart("gpu_utilization_pct", "GPU utilization", "%", 100.0),
    MetricChart("gpu_memory_used_mb", "GPU memory used", "MB"),
    MetricChart("gpu_temperature_c", "GPU temperature", "°C"),
    MetricChart("gpu_power_w", "GPU power", "W"),
    MetricChart("gpu_sm_clock_mhz", "GPU SM clock", "MHz"),
    MetricChart("cpu_utilization_pct", "Host CPU utilization", "%", 100.0),
    MetricChart("memory_used_mb", "Host memory used", "MB"),
    MetricChart("queue_length", "Queue length", "requests"),
)


@dataclass(frozen=True)
class InfraView:
    """Metric series per (host, resource) and bucket. `frame` columns: bucket_start, host,
    resource, name, mean, max, min, num_samples."""

    window: Window
    bucket_seconds: int
    hosts: list[str]
    available_hosts: list[str]
    frame: pd.DataFrame

    def chart_frame(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["name"] == name]


def load_infra(
    sessions: sessionmaker[Session],
    *,
    window: Window,
    hosts: Sequence[str] = (),
    bucket_seconds: int | None = None,
) -> InfraView:
    """GPU and host metrics per host and resource over the window, averaged per bucket by the
    database (max and min kept, so a short spike still shows)."""
    bucket = bucket_seconds or auto_bucket_seconds(window)
    names = [chart.name for chart in INFRA_CHARTS]
    with sessions() as session:
        frame = metric_store.load_metric_series(
            session,
            start=window.start,
            end=window.end,
            bucket_seconds=bucket,
            names=names,
            hosts=list(hosts) or None,
        )
        if hosts:  # the picker offers every host, not only the chosen ones
            available = metric_store.list_metric_hosts(
                session, start=window.start, end=window.end, names=names
            )
        else:
            available = sorted(frame["host"].unique())
    return InfraView(window, bucket, list(hosts), available, frame)


def summarize_resources(view: InfraView) -> pd.DataFrame:
    """Per (host, resource): mean and peak GPU utilization, peak temperature, lowest SM clock
    and peak memory, the numbers that single out a saturated or throttling GPU."""
    frame = view.frame
    columns = ["host", "resource"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    aggregations = {
        "gpu_utilization_pct": ("mean", "mean_utilization_pct"),
        "gpu_temperature_c": ("max", "max_temperature_c"),
        "gpu_sm_clock_mhz": ("min", "min_sm_clock_mhz"),
        "gpu_memory_used_mb": ("max", "max_memory_used_mb"),
        "cpu_utilization_pct": ("mean", "mean_cpu_utilization_pct"),
    }
    parts = []
    for name, (how, label) in aggregations.items():
        rows = frame[frame["name"] == name]
        if rows.empty:
            continue
        grouped = rows.groupby(columns)
        if how == "mean":  # weighted by samples, not by buckets
            weighted = (rows["mean"] * rows["num_samples"]).groupby(
                [rows["host"], rows["resource"]]
            )
            value = weighted.sum() / grouped["num_samples"].sum()
        else:
            value = grouped[how].agg(how)
        parts.append(value.rename(label))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, axis=1).reset_index().sort_values(columns, ignore_index=True)


# --- reports -----------------------------------------------------------------------------------

REPORTS_LIMIT = 500
ALERTS_LIMIT = 200


@dataclass(frozen=True)
class ReportRow:
    """A stored weekly report and its week's deliveries."""

    report: StoredReport
    deliveries: list[DeliveryRow]


@dataclass(frozen=True)
class AlertRow:
    """An alert and its deliveries."""

    alert: StoredAlert
    deliveries: list[DeliveryRow]


@dataclass(frozen=True)
class ReportsView:
    weeks: list[str]
    models: list[str]
    reports: list[ReportRow]
    alerts: list[AlertRow]


def load_reports(
    sessions: sessionmaker[Session], *, week: str | None = None, model: str | None = None
) -> ReportsView:
    """The stored weekly reports (newest week first), of one week or one model's if given,
    with their deliveries, and the latest alerts (about that model)."""
    if week:
        try:
            week = Week.parse(week).name
        except ValueError as error:
            raise InputError(f"week: {error}") from None
    with sessions() as session:
        every = report_store.list_reports(session, limit=REPORTS_LIMIT)
        stored = report_store.list_reports(
            session, week=week or None, model=model or None, limit=REPORTS_LIMIT
        )
        deliveries = delivery_store.load_deliveries(session, weeks=sorted({r.week for r in stored}))
        alerts = alert_store.load_alerts(session, model=model or None, limit=ALERTS_LIMIT)
        alert_deliveries = delivery_store.load_deliveries(session, alert_ids=[a.id for a in alerts])
    return ReportsView(
        weeks=sorted({r.week for r in every}, reverse=True),
        models=sorted({r.model for r in every if r.model}),
        reports=[ReportRow(r, [d for d in deliveries if d.week == r.week]) for r in stored],
        alerts=[AlertRow(a, [d for d in alert_deliveries if d.alert_id == a.id]) for a in alerts],
    )


def load_report_file(sessions: sessionmaker[Session], week: str, stem: str) -> StoredReport | None:
    """The report of `week` whose file name (without extension) is `stem`, with its content;
    None when there is none (or the week is no week)."""
    from dashboards.report import stem_for

    try:
        name = Week.parse(week).name
    except ValueError:
        return None
    with sessions() as session:
        for report in report_store.list_reports(session, week=name, limit=100_000):
            if stem_for(report.model) == stem:
                return report_store.get_report(session, report.id)
    return None
