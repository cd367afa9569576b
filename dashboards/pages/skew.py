"""Skew: a serving window against the training reference: schema skew (missing, extra and
retyped features, unseen categories), distribution skew per feature, and, joined on an entity
key, the features whose values differ for the same entity."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Output, html

from dashboards import data
from dashboards.components import (
    FEATURE_TEST_COLUMNS,
    choice,
    data_attributes,
    data_table,
    empty_state,
    error_message,
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
from dashboards.formats import format_number

PAGE = "skew"
PARAMS = ("model", "version", "start", "end", "reference", "join_key")
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
    params = url_values(url_params, PARAMS)
    return page_layout(
        PAGE,
        params,
        title="Training-serving skew",
        subtitle="What serving sends against the training reference of a version: the schema, "
        "each feature's distribution, and with a join key the values of the same entities.",
        pickers=[
            model_picker(PAGE, params["model"]),
            choice(PAGE, "version", "Version", params["version"], "all versions"),
            window_picker(PAGE, params["start"], params["end"]),
            choice(PAGE, "reference", "Reference", params["reference"], "newest"),
            choice(PAGE, "join_key", "Join key", params["join_key"], "none"),
        ],
        body=[
            html.Div(id="skew-schema"),
            html.Div(id="skew-distribution"),
            html.Div(id="skew-values"),
        ],
    )


def register_callbacks(app: Dash, context: Any) -> None:
    register_model_choices(
        app,
        PAGE,
        context,
        pickers=["version", "reference", "join_key"],
        choices=lambda model: reference_options(context.sessions, model),
    )
    register_model_view(
        app,
        PAGE,
        PARAMS,
        [
            Output("skew-schema", "children"),
            Output("skew-distribution", "children"),
            Output("skew-values", "children"),
        ],
        lambda params: skew_outputs(_load(context, params)),
        blank=(None, None, None),
        problem=_problem,
    )


def reference_options(sessions: Any, model: str | None) -> tuple[list[Any], ...]:
    """The versions and names of the model's training references, and the join keys they
    offer (request_id, or any of their features), as options."""
    if not model:
        return [], [], []
    references = drift_data.list_references(sessions, model)
    versions = sorted({ref.model_version for ref in references})
    names = sorted({ref.name for ref in references})
    keys = sorted({"request_id"} | {c for ref in references for c in ref.feature_types})
    return value_options(versions), value_options(names), value_options(keys)


def _load(context: Any, params: dict[str, str | None]) -> Any:
    return drift_data.load_skew(
        context.db,
        context.settings,
        model=str(params["model"]),
        window=data.resolve_window(params["start"], params["end"]),
        version=params["version"] or None,
        reference=params["reference"] or None,
        join_key=params["join_key"] or None,
    )


def skew_outputs(report: Any) -> tuple[Any, ...]:
    return (
        _status(report),
        schema_panel(report.result.schema),
        distribution_panel(report.result.distribution),
        values_panel(report.result),
    )


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
    verdict = data.Verdict.breached_if(schema.has_skew, "schema skew", "schemas match")
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
    rows = [
        html.Tr(
            [
                html.Td(cell)
                for cell in [
                    record["feature"],
                    *feature_test_cells(record, breached="skewed", ok="no skew"),
                ]
            ],
            **data_attributes(feature=str(record["feature"])),
        )
        for record in frame.to_dict("records")
    ]
    share = f"{result.num_drifted} of {len(result.features)} features skewed"
    return html.Div(
        [
            html.H3(f"Distribution skew · {share}"),
            data_table(FEATURE_TEST_COLUMNS, rows, table_id="skew-distribution-table"),
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
            data_table(VALUE_COLUMNS, rows, table_id="skew-value-table"),
            graph(
                "skew-value-chart",
                drift_figures.value_skew_figure(result.values, join_key=result.join_key),
            ),
        ]
    )
