"""Drift: per-feature drift of a window against a baseline window or a training reference
(test, statistic, p-value, threshold, verdict), one feature's distribution on both sides, and
drift over time as a features x time heatmap."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash
from dash import Dash, Input, Output, dcc, html

from dashboards import data, links
from dashboards.components import (
    baseline_picker,
    choice,
    controls,
    data_attributes,
    error_message,
    first,
    format_number,
    graph,
    loading,
    model_options,
    model_picker,
    no_data_yet,
    page_header,
    param_id,
    rendered_params,
    status_line,
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
TABLE_COLUMNS = ("Feature", "Type", "Test", "Statistic", "p-value", "Threshold", "Verdict")

dash.register_page(__name__, path="/drift", name="Drift", title="Drift · observe", order=30)


def layout(**url_params: Any) -> html.Div:
    params = {name: first(url_params.get(name)) for name in PARAMS}
    return html.Div(
        [
            rendered_params(PAGE, params),
            page_header(
                "Drift",
                "Each feature's distribution in the window against a baseline: the version's "
                "newest training reference, a reference you pick, or a baseline window (by "
                "default the window just before).",
            ),
            controls(
                model_picker(PAGE, params["model"]),
                choice(PAGE, "version", "Version", params["version"], "all versions"),
                window_picker(PAGE, params["start"], params["end"]),
                baseline_picker(PAGE, params["baseline_start"], params["baseline_end"]),
                choice(PAGE, "reference", "Reference", params["reference"], "newest, if any"),
                choice(PAGE, "feature", "Feature", params["feature"], "most drifted"),
            ),
            loading(
                PAGE,
                "body",
                html.Div(
                    [
                        status_line(PAGE),
                        html.Div(id="drift-summary"),
                        html.Div(id="drift-table"),
                        html.Div(id="drift-distribution"),
                        html.Div(id="drift-timeline-note"),
                        html.Div(id="drift-heatmap"),
                    ]
                ),
            ),
        ],
        className="page page-drift",
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output(param_id(PAGE, "model"), "options"),
        Output(param_id(PAGE, "model"), "value"),
        Output(param_id(PAGE, "version"), "options"),
        Output(param_id(PAGE, "reference"), "options"),
        Input(param_id(PAGE, "model"), "id"),
        Input(param_id(PAGE, "model"), "value"),
    )
    def fill_choices(_id: Any, model: str | None) -> tuple[Any, Any, Any, Any]:
        options, value = model_options(data.list_model_names(context.sessions), model)
        chosen = model or (options[0]["value"] if options else None)
        if not chosen:
            return options, value, [], []
        return options, value, *version_and_reference_options(context.sessions, chosen)

    @app.callback(
        Output("drift-status", "children"),
        Output("drift-summary", "children"),
        Output("drift-table", "children"),
        Output("drift-distribution", "children"),
        Output("drift-timeline-note", "children"),
        Output("drift-heatmap", "children"),
        Output(param_id(PAGE, "feature"), "options"),
        *[Input(param_id(PAGE, name), "value") for name in PARAMS],
    )
    def show_drift(*values: str | None) -> tuple[Any, ...]:
        params = dict(zip(PARAMS, values, strict=True))
        if not params["model"]:
            return no_data_yet("drift-empty"), None, None, None, None, None, []
        try:
            view, feature = _load(context, params)
        except data.InputError as error:
            return error_message(str(error), "drift-error"), None, None, None, None, None, []
        return drift_outputs(view, feature, params)


def version_and_reference_options(sessions: Any, model: str) -> tuple[list[Any], list[Any]]:
    try:
        versions = drift_data.list_versions(sessions, model)
    except data.InputError:
        return [], []
    names = sorted({ref.name for ref in drift_data.list_references(sessions, model)})
    return (
        [{"label": v, "value": v} for v in versions],
        [{"label": n, "value": n} for n in names],
    )


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
        [{"label": f.feature, "value": f.feature} for f in result.features],
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
    verdict = data.Verdict(
        "breached" if result.dataset_drifted else "ok",
        "data set drifted" if result.dataset_drifted else "no data set drift",
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
    header = html.Thead(html.Tr([html.Th(name) for name in TABLE_COLUMNS]))
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
        verdict = data.Verdict(
            "breached" if record["drifted"] else "ok",
            "drifted" if record["drifted"] else "no drift",
        )
        cells = [
            dcc.Link(name, href=href, className="feature-link"),
            record["kind"],
            record["test"],
            format_number(record["statistic"]),
            format_number(record["p_value"]),
            format_number(record["threshold"]),
            verdict_badge(verdict),
        ]
        rows.append(
            html.Tr(
                [html.Td(cell) for cell in cells],
                className="selected" if name == selected else None,
                **data_attributes(feature=name),
            )
        )
    return html.Table([header, html.Tbody(rows)], className="data-table", id="drift-feature-table")
