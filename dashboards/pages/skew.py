"""Skew: a serving window against the training reference: schema skew (missing, extra and
retyped features, unseen categories), distribution skew per feature, and, joined on an entity
key, the features whose values differ for the same entity."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, html

from dashboards import data
from dashboards.components import (
    choice,
    controls,
    data_attributes,
    empty_state,
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

PAGE = "skew"
PARAMS = ("model", "version", "start", "end", "reference", "join_key")
DISTRIBUTION_COLUMNS = ("Feature", "Type", "Test", "Statistic", "p-value", "Threshold", "Verdict")
VALUE_COLUMNS = (
    "Feature",
    "Joined",
    "Differ",
    "Mismatch rate",
    "Mean abs. diff.",
    "Max abs. diff.",
    "Mean rel. diff.",
)

dash.register_page(__name__, path="/skew", name="Skew", title="Skew · observe", order=40)


def layout(**url_params: Any) -> html.Div:
    params = {name: first(url_params.get(name)) for name in PARAMS}
    return html.Div(
        [
            rendered_params(PAGE, params),
            page_header(
                "Training-serving skew",
                "What serving sends against the training reference of a version: the schema, "
                "each feature's distribution, and with a join key the values of the same "
                "entities.",
            ),
            controls(
                model_picker(PAGE, params["model"]),
                choice(PAGE, "version", "Version", params["version"], "all versions"),
                window_picker(PAGE, params["start"], params["end"]),
                choice(PAGE, "reference", "Reference", params["reference"], "newest"),
                choice(PAGE, "join_key", "Join key", params["join_key"], "none"),
            ),
            loading(
                PAGE,
                "body",
                html.Div(
                    [
                        status_line(PAGE),
                        html.Div(id="skew-schema"),
                        html.Div(id="skew-distribution"),
                        html.Div(id="skew-values"),
                    ]
                ),
            ),
        ],
        className="page page-skew",
    )


def register_callbacks(app: Dash, context: Any) -> None:
    @app.callback(
        Output(param_id(PAGE, "model"), "options"),
        Output(param_id(PAGE, "model"), "value"),
        Output(param_id(PAGE, "version"), "options"),
        Output(param_id(PAGE, "reference"), "options"),
        Output(param_id(PAGE, "join_key"), "options"),
        Input(param_id(PAGE, "model"), "id"),
        Input(param_id(PAGE, "model"), "value"),
    )
    def fill_choices(_id: Any, model: str | None) -> tuple[Any, ...]:
        options, value = model_options(data.list_model_names(context.sessions), model)
        chosen = model or (options[0]["value"] if options else None)
        if not chosen:
            return options, value, [], [], []
        references = drift_data.list_references(context.sessions, chosen)
        versions = sorted({ref.model_version for ref in references})
        names = sorted({ref.name for ref in references})
        keys = sorted({"request_id"} | {c for ref in references for c in ref.feature_types})
        return options, value, _options(versions), _options(names), _options(keys)

    @app.callback(
        Output("skew-status", "children"),
        Output("skew-schema", "children"),
        Output("skew-distribution", "children"),
        Output("skew-values", "children"),
        *[Input(param_id(PAGE, name), "value") for name in PARAMS],
    )
    def show_skew(*values: str | None) -> tuple[Any, Any, Any, Any]:
        params = dict(zip(PARAMS, values, strict=True))
        if not params["model"]:
            return no_data_yet("skew-empty"), None, None, None
        try:
            report = drift_data.load_skew(
                context.db,
                context.settings,
                model=str(params["model"]),
                window=data.resolve_window(params["start"], params["end"]),
                version=params["version"] or None,
                reference=params["reference"] or None,
                join_key=params["join_key"] or None,
            )
        except data.InputError as error:
            return _problem(str(error)), None, None, None
        return (
            _status(report),
            schema_panel(report.result.schema),
            distribution_panel(report.result.distribution),
            values_panel(report.result),
        )


def _options(values: list[str]) -> list[dict[str, str]]:
    return [{"label": value, "value": value} for value in values]


def _problem(message: str) -> Any:
    if message.startswith("no reference data set"):
        return empty_state(
            "No training reference for this model",
            [
                "Upload the training features of a version with ",
                html.Code("observe import reference FILE --model M --version V"),
                " or POST a Parquet or CSV file to ",
                html.Code("/api/v1/references"),
                "; include an entity key (such as request_id) to compare values per entity.",
            ],
            element_id="skew-no-reference",
        )
    return error_message(message, "skew-error")


def _status(report: Any) -> str:
    reference = report.reference
    window = data.Window(report.start, report.end)
    newest = "the newest " if report.num_rows_serving >= drift_data.SKEW_MAX_ROWS else ""
    return (
        f"{report.model} {report.model_version or 'all versions'} · {window.describe()} · "
        f"{newest}{report.num_rows_serving:,} serving records against reference "
        f"{reference.name} of {reference.model_version} ({reference.num_rows:,} rows, "
        f"{reference.num_rows_stored:,} kept)"
    )


def schema_panel(schema: Any) -> html.Div:
    """Missing, extra and retyped features and unseen categories, each a line."""
    verdict = data.Verdict(
        "breached" if schema.has_skew else "ok",
        "schema skew" if schema.has_skew else "schemas match",
    )
    lines = [
        _schema_line("Missing in serving", ", ".join(schema.missing), "skew-missing"),
        _schema_line("Extra in serving", ", ".join(schema.extra), "skew-extra"),
        _schema_line(
            "Retyped",
            ", ".join(
                f"{name} ({types.get('reference')} → {types.get('serving')})"
                for name, types in schema.retyped.items()
            ),
            "skew-retyped",
        ),
        _schema_line(
            "Unseen categories",
            "; ".join(
                f"{name}: {', '.join(found['values'])} ({100 * found['share']:.1f}% of values)"
                for name, found in schema.unseen_categories.items()
            ),
            "skew-unseen",
        ),
    ]
    return html.Div(
        [html.H3(["Schema ", verdict_badge(verdict, badge_id="skew-schema-verdict")]), *lines],
        className="panel",
    )


def _schema_line(label: str, text: str, element_id: str) -> html.P:
    return html.P(
        [html.Strong(f"{label}: "), text or html.Span("none", className="muted")], id=element_id
    )


def distribution_panel(result: Any) -> html.Div:
    frame = drift_data.feature_table(result)
    header = html.Thead(html.Tr([html.Th(name) for name in DISTRIBUTION_COLUMNS]))
    rows = [
        html.Tr(
            [
                html.Td(record["feature"]),
                html.Td(record["kind"]),
                html.Td(record["test"]),
                html.Td(format_number(record["statistic"])),
                html.Td(format_number(record["p_value"])),
                html.Td(format_number(record["threshold"])),
                html.Td(
                    verdict_badge(
                        data.Verdict(
                            "breached" if record["drifted"] else "ok",
                            "skewed" if record["drifted"] else "no skew",
                        )
                    )
                ),
            ],
            **data_attributes(feature=str(record["feature"])),
        )
        for record in frame.to_dict("records")
    ]
    share = f"{result.num_drifted} of {len(result.features)} features skewed"
    return html.Div(
        [
            html.H3(f"Distribution skew · {share}"),
            html.Table(
                [header, html.Tbody(rows)], className="data-table", id="skew-distribution-table"
            ),
        ]
    )


def values_panel(result: Any) -> html.Div:
    """Per feature, how often the same entity's value differs (with a join key)."""
    if result.join_key is None:
        return html.Div(
            [
                html.H3("Feature-value skew"),
                html.P(
                    "Choose a join key (request_id, or a feature naming the entity on both "
                    "sides) to compare each feature's value entity by entity.",
                    className="muted",
                ),
            ]
        )
    header = html.Thead(html.Tr([html.Th(name) for name in VALUE_COLUMNS]))
    rows = [
        html.Tr(
            [
                html.Td(v.feature),
                html.Td(f"{v.num_joined:,}"),
                html.Td(f"{v.num_mismatched:,}"),
                html.Td(f"{100 * v.mismatch_rate:.1f}%"),
                html.Td(format_number(v.mean_abs_diff)),
                html.Td(format_number(v.max_abs_diff)),
                html.Td(format_number(v.mean_rel_diff)),
            ],
            **data_attributes(feature=v.feature),
        )
        for v in result.values
    ]
    return html.Div(
        [
            html.H3(
                f"Feature-value skew · {result.num_joined:,} entities joined on {result.join_key}"
            ),
            html.Table([header, html.Tbody(rows)], className="data-table", id="skew-value-table"),
            graph(
                "skew-value-chart",
                drift_figures.value_skew_figure(result.values, join_key=result.join_key),
            ),
        ]
    )
