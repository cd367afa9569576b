"""The weekly report as HTML: one self-contained file per report, rendered from its JSON.

The file holds everything it needs: the styles inline and plotly.js itself (from the installed
plotly package) in a script tag, so it opens offline, from a mail attachment or a file share,
with no request to any other site. The charts are the UI's own (`dashboards.figures`), drawn
from the hourly series the JSON carries, so the HTML and the JSON show the same numbers.

`render_email_html` is the summary for a mail body: the same tables with no scripts, which
mail clients strip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from pydantic import TypeAdapter

from dashboards import data, figures
from dashboards.formats import format_ms, format_rate
from observe.pipeline.latency import percentile_column
from observe.pipeline.report_content import table_frame
from observe.schemas.reports import (
    AttentionItem,
    Change,
    ModelReport,
    SummaryReport,
)
from observe.storage.models import Slo

Report = ModelReport | SummaryReport
_REPORT = TypeAdapter(ModelReport | SummaryReport)
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}
SUMMARY_STEM = "summary"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;
background:#f9fafb;font-size:14px;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px}
header{border-bottom:2px solid #2563eb;margin-bottom:16px;padding-bottom:8px}
h1{font-size:24px;margin:0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;
padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.meta,.muted{color:#6b7280}.small{font-size:12px}
table{border-collapse:collapse;margin:8px 0;background:#fff;width:100%}
th,td{border:1px solid #e5e7eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:9px;padding:1px 8px;font-size:12px;font-weight:600}
.critical{background:#fee2e2;color:#991b1b}.warning{background:#fef3c7;color:#92400e}
.ok{background:#d1fae5;color:#065f46}.none{background:#e5e7eb;color:#374151}
ul.attention{list-style:none;padding:0;margin:0}ul.attention li{background:#fff;
border:1px solid #e5e7eb;border-radius:6px;padding:8px 10px;margin:6px 0}
.up{color:#b91c1c}.down{color:#047857}.figure{background:#fff;border:1px solid #e5e7eb;
border-radius:6px;margin:10px 0;padding:4px}
.causes{margin:4px 0 0 16px;padding:0}a{color:#1d4ed8}
@media print{.figure{break-inside:avoid}body{background:#fff}}
"""


def parse_report(content: Mapping[str, Any] | Report) -> Report:
    """A stored report's JSON as its type (a model report or the summary)."""
    if isinstance(content, ModelReport | SummaryReport):
        return content
    return _REPORT.validate_python(dict(content))


def render_report_html(content: Mapping[str, Any] | Report) -> str:
    """The report as one self-contained HTML document."""
    report = parse_report(content)
    if isinstance(report, ModelReport):
        title = f"{report.model} · week {report.week}"
        body = _model_body(report)
    else:
        title = f"All models · week {report.week}"
        body = _summary_body(report)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · observe</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{_plotly_js()}</script></head>'
        f"<body><main>{body}</main></body></html>\n"
    )


@cache
def _plotly_js() -> str:
    return get_plotlyjs()


def file_stem(report: Report) -> str:
    """``summary`` or the model's name made safe as a file name."""
    return stem_for(None if isinstance(report, SummaryReport) else report.model)


def stem_for(model: str | None) -> str:
    """The file name (without extension) of a model's report, or (None) of the summary: the
    name the directory channel writes and the UI serves it under, beside the week's others."""
    return SUMMARY_STEM if model is None else safe_file_name(model)


def safe_file_name(name: str) -> str:
    """Letters, digits, dot, dash and underscore kept, anything else replaced by an
    underscore (with a short digest of the name when that changed it, so names stay apart)."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip(".")
    if cleaned == name and cleaned:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[:80] or 'model'}-{digest}"


# --- the model report --------------------------------------------------------------------------


def _model_body(report: ModelReport) -> str:
    sections = [
        _header(f"{report.model}", report, back=f"{SUMMARY_STEM}.html"),
        _attention_section(report.needs_attention),
        _traffic_section(report),
        _regressions_section(report),
        _drift_section(report),
        _gpu_section(report.gpu.devices, report.series.gpu_hourly, report, report.gpu.hosts),
        _events_section(report),
        _footer(report),
    ]
    return "".join(sections)


def _header(subject: str, report: Report, *, back: str | None = None) -> str:
    window = report.window
    up = f' <a class="small" href="{_e(back)}">all models</a>' if back else ""
    return (
        f"<header><h1>{_e(subject)} · week {_e(report.week)}{up}</h1>"
        f'<div class="meta">{_day(window.start)} – {_day(window.end - dt.timedelta(days=1))} '
        f"(Monday 00:00 to Monday 00:00 UTC), compared with the week of "
        f"{_day(report.previous_window.start)} · written {_time(report.generated_at)}</div>"
        "</header>"
    )


def _attention_section(items: Sequence[AttentionItem], *, show_model: bool = False) -> str:
    if not items:
        return '<h2>Needs attention</h2><p class="ok badge">Nothing needs attention this week.</p>'
    rows = []
    for item in items:
        model = f"<b>{_e(item.model)}</b> · " if show_model and item.model else ""
        link = f' · <a href="{_e(item.link)}">open</a>' if item.link else ""
        rows.append(
            f'<li><span class="badge {item.severity}">{item.severity}</span> '
            f'<span class="muted small">{_e(item.kind.replace("_", " "))}</span> '
            f"{model}{_e(item.summary)}{link}</li>"
        )
    return f'<h2>Needs attention ({len(items)})</h2><ul class="attention">{"".join(rows)}</ul>'


def _traffic_section(report: ModelReport) -> str:
    traffic, slo = report.traffic, report.slo
    # (label, numbers, format, whether a rise is bad news)
    rows = [
        ("Requests", traffic.num_requests, _count, False),
        ("Errors", traffic.num_errors, _count, True),
        ("Error rate", traffic.error_rate, format_rate, True),
        ("Mean latency", traffic.mean_ms, format_ms, True),
        ("p50", traffic.p50, format_ms, True),
        ("p95", traffic.p95, format_ms, True),
        ("p99", traffic.p99, format_ms, True),
    ]
    table = _table(
        ["", "This week", "Week before", "Change"],
        [
            [name, _num(fmt(c.current)), _num(fmt(c.previous)), _change(c, higher_is_worse=bad)]
            for name, c, fmt, bad in rows
        ],
        table_id="traffic",
    )
    view = latency_view(report)
    charts = [figures.latency_figure(view), figures.traffic_figure(view), _wow_figure(report)]
    return (
        "<h2>Traffic, errors and latency</h2>"
        + table
        + _slo_block(slo)
        + _versions_table(report)
        + "".join(_figure(chart) for chart in charts)
        + _breaches_block(report)
    )


def _slo_block(slo: Any) -> str:
    parts = []
    if slo.latency_ms is not None:
        verdict = _verdict(slo.latency_ok)
        parts.append(
            f"p{slo.latency_percentile:g} ≤ {slo.latency_ms:g} ms: {verdict} "
            f"(week: {format_ms(slo.observed_latency_ms)}; breached in "
            f"{slo.hours_latency_breached or 0} of {slo.hours_with_traffic} hours)"
        )
    if slo.error_rate_pct is not None:
        verdict = _verdict(slo.error_rate_ok)
        observed = (
            "-" if slo.observed_error_rate_pct is None else f"{slo.observed_error_rate_pct:.2f}%"
        )
        parts.append(
            f"errors ≤ {slo.error_rate_pct:g}%: {verdict} (week: {observed}; breached in "
            f"{slo.hours_error_rate_breached or 0} of {slo.hours_with_traffic} hours)"
        )
    if not parts:
        return '<p class="muted">No SLO set (observe models slo MODEL ...).</p>'
    return "<h3>SLO</h3><ul>" + "".join(f"<li>{p}</li>" for p in parts) + "</ul>"


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return '<span class="badge none">no traffic</span>'
    return (
        '<span class="badge ok">met</span>' if ok else '<span class="badge critical">missed</span>'
    )


def _versions_table(report: ModelReport) -> str:
    if not report.versions:
        return ""
    rows = [
        [
            _e(v.model_version),
            _num(_count(v.num_requests)),
            _num(_share(v.share_of_requests)),
            _num(format_rate(v.error_rate)),
            _num(format_ms(v.p50)),
            _num(format_ms(v.p95)),
            _num(format_ms(v.p99)),
        ]
        for v in report.versions
    ]
    return "<h3>Versions</h3>" + _table(
        ["Version", "Requests", "Share", "Error rate", "p50", "p95", "p99"], rows
    )


def _breaches_block(report: ModelReport) -> str:
    if not report.slo_breaches:
        return ""
    rows = [
        [_e(b.objective), _e(b.status), _time(b.since), _time(b.until), _e(b.summary)]
        for b in report.slo_breaches
    ]
    return "<h3>SLO breaches</h3>" + _table(["Objective", "Status", "Since", "Until", ""], rows)


def latency_view(report: ModelReport) -> data.LatencyView:
    """The UI's latency view of the report's hourly series (per version)."""
    slo = report.slo
    percentile = slo.latency_percentile or 95.0
    frame = table_frame(report.series.hourly)
    return data.LatencyView(
        model=report.model,
        window=data.Window(report.window.start, report.window.end),
        bucket_seconds=3600,
        by=data.BY_VERSION,
        percentile=percentile,
        source="rollups",
        frame=frame,
        events=[
            data.EventMarker(e.timestamp, e.kind, e.model_version, e.description)
            for e in report.events
        ],
        change_points=[
            data.ChangePoint(r.onset_at, r.model_version, r.status, r.summary, r.finding_id)
            for r in report.regressions
        ],
        slo=Slo(slo.latency_percentile, slo.latency_ms, slo.error_rate_pct, None)
        if slo.latency_ms is not None
        else None,
    )


def _wow_figure(report: ModelReport) -> go.Figure:
    percentile = report.slo.latency_percentile or 95.0
    return figures.week_over_week_figure(
        table_frame(report.series.hourly_all),
        table_frame(report.series.previous_hourly_all),
        column=percentile_column(percentile),
        label=f"p{percentile:g} latency per hour, every version",
        week_start=report.window.start,
        bound=report.slo.latency_ms,
    )


def _regressions_section(report: ModelReport) -> str:
    if not report.regressions:
        return '<h2>Latency regressions</h2><p class="muted">None detected this week.</p>'
    blocks = []
    for regression in report.regressions:
        badge = "critical" if regression.status == "open" else "warning"
        head = (
            f'<h3><span class="badge {badge}">{_e(regression.status)}</span> '
            f"{_e(regression.summary)}</h3>"
        )
        facts = (
            f"<p>Onset {_time(regression.onset_at)}"
            + (f", cleared {_time(regression.cleared_at)}" if regression.cleared_at else "")
            + f" · version {_e(regression.model_version or 'all')}"
            + f' · <a href="{_e(regression.triage_url)}">triage</a></p>'
        )
        blocks.append(head + facts + _diagnosis_block(regression.diagnosis))
    return "<h2>Latency regressions</h2>" + "".join(blocks)


def _diagnosis_block(diagnosis: Any) -> str:
    if diagnosis is None:
        return '<p class="muted">Not diagnosed.</p>'
    window = f"{_time(diagnosis.window.start)} – {_time(diagnosis.window.end)}"
    if not diagnosis.causes:
        return f'<p class="muted">Diagnosis of {window}: nothing stands out.</p>'
    rows = [
        [
            str(rank),
            _e(cause.kind),
            _num(f"{cause.score:.2f}"),
            _e(", ".join(f"{k}={v}" for k, v in cause.scope.items())),
            _e(cause.summary),
            _e(cause.action),
        ]
        for rank, cause in enumerate(diagnosis.causes, start=1)
    ]
    return f"<p>Diagnosis of {window} against the hour before:</p>" + _table(
        ["#", "Cause", "Score", "Scope", "Evidence", "Action"], rows
    )


def _drift_section(report: ModelReport) -> str:
    parts = ["<h2>Drift and skew</h2>"]
    if report.drift:
        rows = [
            [
                _e(d.model_version or "all"),
                _e(d.baseline or "-"),
                _drift_verdict(d.dataset_drifted, d.error),
                _num(f"{d.num_drifted} of {d.num_features}"),
                _num(str(d.days_drifted)),
                _e(", ".join(f.feature for f in d.top_features if f.drifted) or "-"),
            ]
            for d in report.drift
        ]
        parts.append(
            "<h3>Drift of the week</h3>"
            + _table(
                ["Version", "Against", "Data set", "Features drifted", "Days", "Top features"],
                rows,
            )
        )
        for drift in report.drift:
            if drift.top_features:
                frame = _features_frame(drift.top_features)
                title = f"{report.model} {drift.model_version}: drift against {drift.baseline}"
                parts.append(_figure(figures.drift_strength_figure(frame, title=title)))
    else:
        parts.append('<p class="muted">No traffic to compare.</p>')
    parts.append(_skew_block(report))
    return "".join(parts)


def _drift_verdict(drifted: bool | None, error: str | None) -> str:
    if error:
        return f'<span class="muted">{_e(error)}</span>'
    if drifted:
        return '<span class="badge warning">drifted</span>'
    return '<span class="badge ok">no drift</span>'


def _features_frame(features: Sequence[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"feature": f.feature, "test": f.test, "strength": f.strength, "drifted": f.drifted}
            for f in features
        ],
        columns=["feature", "test", "strength", "drifted"],
    )


def _skew_block(report: ModelReport) -> str:
    if not report.skew:
        return '<h3>Training-serving skew</h3><p class="muted">No training reference.</p>'
    rows = [
        [
            _e(s.model_version or "all"),
            _e(s.reference or "-"),
            _e(", ".join(s.missing_features) or "-"),
            _e(", ".join(s.extra_features) or "-"),
            _e(", ".join(s.retyped_features) or "-"),
            _drift_verdict(s.dataset_drifted, s.error),
            _e(", ".join(f.feature for f in s.top_features if f.drifted) or "-"),
        ]
        for s in report.skew
    ]
    return "<h3>Training-serving skew</h3>" + _table(
        ["Version", "Reference", "Missing", "Extra", "Retyped", "Distribution", "Top features"],
        rows,
    )


def _gpu_section(devices: Sequence[Any], hourly: Any, report: Report, hosts: str) -> str:
    scope = "the hosts serving the model" if hosts == "model" else "every host"
    if not devices:
        return f'<h2>GPUs</h2><p class="muted">No GPU metrics from {scope} this week.</p>'
    rows = [
        [
            _e(f"{d.host}/{d.resource}"),
            _num(_pct(d.mean_utilization_pct)),
            _num(_pct(d.max_utilization_pct)),
            _num(_mb(d.max_memory_used_mb)),
            _num(_mb(d.memory_total_mb)),
            _num(_pct(d.memory_headroom_pct)),
            _num("-" if d.max_temperature_c is None else f"{d.max_temperature_c:.0f} °C"),
        ]
        for d in devices
    ]
    table = _table(
        [
            "GPU",
            "Mean utilization",
            "Peak utilization",
            "Peak memory",
            "Memory",
            "Headroom",
            "Peak temperature",
        ],
        rows,
        table_id="gpus",
    )
    frame = pd.DataFrame([d.model_dump() for d in devices])
    charts = [figures.gpu_headroom_figure(frame)]
    series = table_frame(hourly)
    if not series.empty:
        chart = data.INFRA_CHARTS[0]  # GPU utilization, as the infra page draws it
        charts.append(
            figures.metric_figure(
                series[series["name"] == chart.name],
                chart,
                window_start=report.window.start,
                window_end=report.window.end,
            )
        )
    return (
        f'<h2>GPUs</h2><p class="muted">Of {scope}.</p>'
        + table
        + "".join(_figure(c) for c in charts)
    )


def _events_section(report: ModelReport) -> str:
    if not report.events:
        return '<h2>Deploys and rollbacks</h2><p class="muted">No deploys or other changes.</p>'
    counts = ", ".join(f"{n} {kind}" for kind, n in report.event_counts.items())
    rows = [
        [
            _time(e.timestamp),
            _e(e.kind),
            _e(e.model_version or "-"),
            _num("-" if e.traffic_pct is None else f"{e.traffic_pct:g}%"),
            _e(e.description or ""),
        ]
        for e in report.events
    ]
    return f"<h2>Deploys and rollbacks</h2><p>{_e(counts)}</p>" + _table(
        ["Time", "Kind", "Version", "Traffic", "Description"], rows
    )


def _footer(report: Report) -> str:
    links = " · ".join(f'<a href="{_e(url)}">{_e(name)}</a>' for name, url in report.links.items())
    return (
        f'<footer class="small muted"><p>observe weekly report, schema version '
        f"{report.schema_version}; the JSON beside this file has the same numbers. "
        f"Live views: {links}</p></footer>"
    )


# --- the summary -------------------------------------------------------------------------------


def _summary_body(report: SummaryReport) -> str:
    return "".join(
        [
            _header("All models", report),
            _attention_section(report.needs_attention, show_model=True),
            _models_section(report),
            _gpu_section(report.gpu.devices, _no_series(), report, "all"),
            _footer(report),
        ]
    )


def _no_series() -> Any:
    from observe.schemas.reports import SeriesTable

    return SeriesTable(columns=[], rows=[])


def _models_section(report: SummaryReport) -> str:
    total = (
        f"<p>{_count(report.num_requests.current)} requests "
        f"({_change(report.num_requests, higher_is_worse=False)} week over week), "
        f"{_count(report.num_errors.current)} errors.</p>"
    )
    table = _models_table(report, link=lambda name: f"{stem_for(name)}.html")
    rows = [
        data.ModelRow(
            model=m.overview,
            slo=data.slo_verdict(m.overview),
            drift=data.Verdict("none", ""),
            num_open_regressions=m.num_regressions,
        )
        for m in report.models
    ]
    changes = pd.DataFrame(
        [
            {
                "model": m.overview.name,
                "requests": m.traffic.num_requests.change,
                "error_rate": m.traffic.error_rate.change,
                "p95": m.traffic.p95.change,
            }
            for m in report.models
        ],
        columns=["model", "requests", "error_rate", "p95"],
    )
    charts = [figures.slo_figure(rows), figures.week_over_week_changes_figure(changes)]
    return "<h2>Models</h2>" + total + table + "".join(_figure(c) for c in charts)


def _models_table(report: SummaryReport, *, link: Callable[[str], str] | None) -> str:
    rows = []
    for m in report.models:
        overview, traffic = m.overview, m.traffic
        name = _e(overview.name)
        if link is not None:
            name = f'<a href="{_e(link(overview.name))}">{name}</a>'
        verdict = data.slo_verdict(overview)
        rows.append(
            [
                name,
                _num(_count(overview.num_requests)),
                _change(traffic.num_requests, higher_is_worse=False),
                _num(format_rate(overview.error_rate)),
                _change(traffic.error_rate, higher_is_worse=True),
                _num(format_ms(overview.p95)),
                _change(traffic.p95, higher_is_worse=True),
                _e(data.describe_slo(overview.slo)),
                f'<span class="badge {_badge(verdict.kind)}">{_e(verdict.text)}</span>',
                _num(str(m.num_regressions)),
                _num(str(m.num_drifted_versions)),
                _num(f"{m.num_deploys} / {m.num_rollbacks}"),
                _num(str(m.num_needs_attention)),
            ]
        )
    headers = [
        "Model",
        "Requests",
        "Change",
        "Error rate",
        "Change",
        "p95",
        "Change",
        "SLO",
        "SLO status",
        "Regressions",
        "Drifting versions",
        "Deploys / rollbacks",
        "Needs attention",
    ]
    return _table(headers, rows, table_id="models")


def _badge(kind: str) -> str:
    return {"breached": "critical", "warn": "warning"}.get(kind, kind)


# --- the mail body -----------------------------------------------------------------------------


def render_email_html(report: SummaryReport, *, model_links: Mapping[str, str]) -> str:
    """The summary for a mail body: needs attention and the models table, no scripts."""
    body = "".join(
        [
            _header("All models", report),
            _attention_section(report.needs_attention, show_model=True),
            "<h2>Models</h2>",
            _models_table(report, link=lambda name: model_links.get(name, "")),
            f'<p class="small muted">The full report, with charts, is attached '
            f'(summary.html) and at <a href="{_e(report.links.get("reports", ""))}">observe</a>.'
            "</p>",
        ]
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def render_summary_text(report: SummaryReport) -> str:
    """The summary as plain text (mail, chat, logs)."""
    count = len(report.models)
    lines = [f"observe weekly report {report.week}: {count} model{'' if count == 1 else 's'}"]
    lines.append(
        f"{_count(report.num_requests.current)} requests "
        f"({_plain_change(report.num_requests)} week over week)"
    )
    if report.needs_attention:
        lines.append(f"Needs attention ({len(report.needs_attention)}):")
        lines += [f"- [{i.severity}] {i.summary}" for i in report.needs_attention]
    else:
        lines.append("Nothing needs attention this week.")
    for m in report.models:
        o = m.overview
        lines.append(
            f"{o.name}: {_count(o.num_requests)} requests, errors {format_rate(o.error_rate)}, "
            f"p95 {format_ms(o.p95)} ({_plain_change(m.traffic.p95)})"
        )
    if report.links.get("reports"):
        lines.append(f"Reports: {report.links['reports']}")
    return "\n".join(lines) + "\n"


# --- formatting --------------------------------------------------------------------------------


def _figure(figure: go.Figure) -> str:
    div = pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        config=FIGURE_CONFIG,
    )
    return f'<div class="figure">{div}</div>'


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str | None = None
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    attribute = f' id="{table_id}"' if table_id else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(text: str) -> str:
    return f'<td class="num">{_e(text)}</td>'


def _change(change: Change, *, higher_is_worse: bool) -> str:
    if change.change is None:
        return '<td class="num muted">-</td>'
    worse = change.change > 0 if higher_is_worse else change.change < 0
    css = (
        "up"
        if worse and abs(change.change) >= 0.005
        else "down"
        if abs(change.change) >= 0.005
        else ""
    )
    return f'<td class="num {css}">{change.change * 100:+.1f}%</td>'


def _plain_change(change: Change) -> str:
    return "-" if change.change is None else f"{change.change * 100:+.1f}%"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def _day(moment: dt.datetime) -> str:
    return f"{moment:%a %Y-%m-%d}"


def _time(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
