"""Drift: per-feature drift of a window against a baseline window or a training reference
(test, statistic, p-value, threshold, verdict), one feature's distribution on both sides, and
drift over time as a features x time heatmap."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Dash, Output, dcc, html

from dashboards import data, links
from dashboards.components import (
    FEATURE_TEST_COLUMNS,
    baseline_picker,
    choice,
    data_attributes,
    data_table,
    feature_test_cells,
    graph,
    model_picker,
    page_layout,
    register_model_choices,
    register_model_view,
    url_values,
    value_options,
    verdict_badge,
    window_picker,
)
from dashboards.data import drift as drift_data
from dashboards.figures import drift as drift_figures
from dashboards.figures import empty_figure

PAGE = "drift"
PARAMS = (
    "model",
    "version",
    "start",
    "end",
    "baseline_start",
    "baseline_end",
    "reference",
    "feature",
)

dash.register_page(__name__, path="/drift", name="Drift", title="Drift · observe", order=30)


def layout(**url_params: Any) -> html.Div:
    params = url_values(url_params, PARAMS)
    return page_layout(
        PAGE,
        params,
        title="Drift",
        subtitle="Each feature's distribution in the window against a baseline: the version's "
        "newest training reference, a reference you pick, or a baseline window (by default the "
        "window just before).",
        pickers=[
            model_picker(PAGE, params["model"]),
            choice(PAGE, "version", "Version", params["version"], "all versions"),
            window_picker(PAGE, params["start"], params["end"]),
            baseline_picker(PAGE, params["baseline_start"], params["baseline_end"]),
            choice(PAGE, "reference", "Reference", params["reference"], "newest, if any"),
            choice(PAGE, "feature", "Feature", params["feature"], "most drifted"),
        ],
        body=[
            html.Div(id="drift-summary"),
            html.Div(id="drift-table"),
            html.Div(id="drift-distribution"),
            html.Div(id="drift-timeline-note"),
            html.Div(id="drift-heatmap"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    register_model_choices(
        app,
        PAGE,
        context,
        pickers=["version", "reference"],
        choices=lambda model: version_and_reference_options(context.sessions, model),
    )
    register_model_view(
        app,
        PAGE,
        PARAMS,
        [
            Output("drift-summary", "children"),
            Output("drift-table", "children"),
            Output("drift-distribution", "children"),
            Output("drift-timeline-note", "children"),
            Output("drift-heatmap", "children"),
        ],
        lambda params: drift_outputs(*_load(context, params), params),
        pickers=["feature"],
        blank=(None, None, None, None, None, []),
    )


def version_and_reference_options(sessions: Any, model: str | None) -> tuple[list[Any], list[Any]]:
    """The model's versions and the names of its training references, as options."""
    if not model:
        return [], []
    try:
        versions = drift_data.list_versions(sessions, model)
    except data.InputError:
        return [], []
    names = sorted({ref.name for ref in drift_data.list_references(sessions, model)})
    return value_options(versions), value_options(names)


def _load(context: Any, params: dict[str, str | None]) -> tuple[drift_data.DriftView, Any]:
    view = drift_data.load_drift(
        context.db,
        context.settings,
        model=str(params["model"]),
        window=data.resolve_window(params["start"], params["end"]),
        version=params["version"] or None,
        baseline=drift_data.resolve_baseline(
            params["baseline_start"], params["baseline_end"], params["reference"]
        ),
        now=dt.datetime.now(dt.UTC),
    )
    return view, drift_data.pick_feature(view.result, params["feature"])


def drift_outputs(
    view: drift_data.DriftView, feature: Any, params: dict[str, str | None]
) -> tuple[Any, ...]:
    result = view.result
    labels = _side_labels(view)
    distribution = (
        drift_figures.distribution_figure(
            feature, reference_label=labels[0], current_label=labels[1]
        )
        if feature is not None
        else empty_figure("No feature to plot")
    )
    heatmap = drift_figures.drift_heatmap(
        drift_data.timeline_cells(view.timeline), bucket_seconds=view.bucket_seconds
    )
    note = html.P(view.timeline_error, className="muted") if view.timeline_error else None
    return (
        _status(view),
        summary_line(view),
        feature_table(view, feature.feature if feature else None, params),
        graph("drift-distribution-chart", distribution),
        note,
        graph("drift-heatmap-chart", heatmap),
        value_options(f.feature for f in result.features),
    )


def _side_labels(view: drift_data.DriftView) -> tuple[str, str]:
    baseline = view.report.baseline
    if baseline.reference is not None:
        return f"reference {baseline.reference.name}", "window"
    return "baseline window", "window"


def _status(view: drift_data.DriftView) -> str:
    report = view.report
    window = data.Window(report.start, report.end)
    return (
        f"{report.model} {report.model_version or 'all versions'} · {window.describe()} · "
        f"{report.num_rows_current:,} records against {describe_baseline(report)} "
        f"({report.num_rows_baseline:,} rows) · from {report.result.source}"
    )


def describe_baseline(report: Any) -> str:
    baseline = report.baseline
    if baseline.reference is not None:
        reference = baseline.reference
        return f"reference {reference.name} of {reference.model_version}"
    return f"the window {data.Window(baseline.start, baseline.end).describe()}"


def summary_line(view: drift_data.DriftView) -> html.Div:
    """The data set verdict and the share of drifted features."""
    result = view.result
    verdict = data.Verdict.breached_if(
        result.dataset_drifted, "data set drifted", "no data set drift"
    )
    skipped = (
        html.Span(
            "skipped: " + ", ".join(f"{k} ({v})" for k, v in result.skipped.items()),
            className="muted",
        )
        if result.skipped
        else None
    )
    return html.Div(
        [
            verdict_badge(verdict, badge_id="drift-verdict"),
            html.Span(
                f"{result.num_drifted} of {len(result.features)} features drifted",
                className="number",
                id="drift-share",
            ),
            html.Span(
                f"({100 * result.share_drifted:.0f}%; the data set drifts at "
                f"{100 * result.drift_share:.0f}%)",
                className="muted",
            ),
            skipped,
        ],
        className="panel summary-line",
    )


def feature_table(
    view: drift_data.DriftView, selected: str | None, params: dict[str, str | None]
) -> html.Table:
    """Test, statistic, p-value, threshold and verdict per feature; a feature's name shows
    its distribution."""
    frame = drift_data.feature_table(view.result)
    rows = []
    for record in frame.to_dict("records"):
        name = str(record["feature"])
        href = links.drift_url(
            str(params["model"]),
            params["start"],
            params["end"],
            version=params["version"],
            baseline_start=params["baseline_start"],
            baseline_end=params["baseline_end"],
            reference=params["reference"],
            feature=name,
        )
        cells = [
            dcc.Link(name, href=href, className="feature-link"),
            *feature_test_cells(record, breached="drifted", ok="no drift"),
        ]
        rows.append(
            html.Tr(
                [html.Td(cell) for cell in cells],
                className="selected" if name == selected else None,
                **data_attributes(feature=name),
            )
        )
    return data_table(FEATURE_TEST_COLUMNS, rows, table_id="drift-feature-table")
