"""Widgets the pages share: pickers that write the URL, badges, loading wrappers, empty states,
the frame of a page, and the callbacks every model page has.

The URL's query string is the state of every page, so any view can be shared by copying its
address. A control whose value belongs in the URL gets `param_id(page, name)` as its id; the
shell's one callback (`dashboards.app`) writes the values of all such controls of the current
page into the query string, and Dash's page router renders the page again from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from dash import MATCH, Dash, Input, Output, dcc, html, no_update

from dashboards import data
from dashboards.data import Verdict
from dashboards.figures import empty_figure
from dashboards.formats import format_number

#: dcc.Graph options shared by every chart.
GRAPH_CONFIG: Any = {"displaylogo": False, "responsive": True}
URL_PARAM = "url-param"
RENDERED_PARAMS = "url-rendered"
WINDOW_PRESET = "window-preset"
WINDOW_PRESETS = (("1h", "-1h"), ("6h", "-6h"), ("24h", "-24h"), ("7d", "-7d"), ("30d", "-30d"))
DEFAULT_START = "-24h"


def rendered_params(page: str, params: Mapping[str, Any]) -> dcc.Store:
    """What the page's URL controls were rendered with; only a control that differs from this
    is written to the URL (Dash reports every control of a page as changed when they appear).
    """
    return dcc.Store(
        id={"type": RENDERED_PARAMS, "page": page},
        data={name: as_list(value) for name, value in params.items()},
    )


def changed_params(values: Mapping[str, Any], rendered: Mapping[str, Any]) -> dict[str, Any]:
    """The controls whose value differs from what the page was rendered with."""
    return {
        name: value
        for name, value in values.items()
        if as_list(value) != as_list(rendered.get(name))
    }


def param_id(page: str, name: str) -> dict[str, str]:
    """The id of a control whose value is the URL parameter `name` of `page`."""
    return {"type": URL_PARAM, "page": page, "param": name}


def query_string(params: Iterable[tuple[str, Any]]) -> str:
    """``?a=1&b=x&b=y`` from (name, value) pairs; empty values are left out, lists repeat."""
    pairs: list[tuple[str, str]] = []
    for name, value in params:
        for item in as_list(value):
            pairs.append((name, item))
    return f"?{urlencode(pairs)}" if pairs else ""


def merge_query(search: str | None, changed: Mapping[str, Any]) -> str:
    """The query string `search` with the parameters in `changed` replaced (an empty value
    removes one); the others keep their values and order."""
    pairs = parse_qsl((search or "").lstrip("?"), keep_blank_values=False)
    kept = [(name, value) for name, value in pairs if name not in changed]
    order = list(dict.fromkeys(name for name, _ in pairs))
    merged: dict[str, Any] = {}
    for name in order:
        merged[name] = changed[name] if name in changed else [v for n, v in kept if n == name]
    for name, value in changed.items():
        merged.setdefault(name, value)
    return query_string(merged.items())


def as_list(value: Any) -> list[str]:
    """A URL parameter as a list: Dash gives a string for one value and a list for several."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value if item not in (None, "")]
    return [str(value)]


def first(value: Any) -> str | None:
    """A single-valued URL parameter (the first, should it be repeated)."""
    values = as_list(value)
    return values[0] if values else None


def url_values(url_params: Mapping[str, Any], names: Iterable[str]) -> dict[str, str | None]:
    """The single-valued URL parameters `names` a page's layout is called with (None where
    the URL has none)."""
    return {name: first(url_params.get(name)) for name in names}


def zoomed_window(relayout: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """The time range a user zoomed a chart to, as RFC 3339 start and end for the URL.

    Plotly reports a zoom as ``{"xaxis.range[0]": "2026-11-29 10:15:23.1", ...}`` (or as
    ``{"xaxis.range": [a, b]}``) in the axis's time zone, UTC here; anything else (a reset,
    a pan of the y axis) is None.
    """
    if not relayout:
        return None
    if "xaxis.range[0]" in relayout and "xaxis.range[1]" in relayout:
        bounds = [relayout["xaxis.range[0]"], relayout["xaxis.range[1]"]]
    elif isinstance(relayout.get("xaxis.range"), list) and len(relayout["xaxis.range"]) == 2:
        bounds = list(relayout["xaxis.range"])
    else:
        return None
    try:
        start, end = (dt.datetime.fromisoformat(str(b).replace(" ", "T")) for b in bounds)
    except ValueError:
        return None
    start, end = (_as_utc(t).replace(microsecond=0) for t in (start, end))
    if end <= start:
        return None
    return _rfc3339(start), _rfc3339(end)


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- pickers -----------------------------------------------------------------------------------


def labelled(label: str, *children: Any, class_name: str = "control") -> html.Div:
    """A control of the controls row: its label, then its inputs."""
    return html.Div([html.Span(label, className="control-label"), *children], className=class_name)


def window_picker(
    page: str, start: str | None, end: str | None, *, default_start: str = DEFAULT_START
) -> html.Div:
    """Presets (last hour ... last 30 days) and free start/end fields: RFC 3339, epoch seconds
    or a duration before now such as -24h. Both fields are URL parameters; `default_start` is
    what the page uses without a start."""
    preset = (start or default_start) if not end else None
    if preset not in {value for _, value in WINDOW_PRESETS}:
        preset = None
    return labelled(
        "Window",
        dcc.RadioItems(
            id={"type": WINDOW_PRESET, "page": page},
            options=[{"label": label, "value": value} for label, value in WINDOW_PRESETS],
            value=preset,
            inline=True,
            className="window-presets",
        ),
        time_input(page, "start", start, f"start ({default_start})"),
        html.Span("to", className="control-label"),
        time_input(page, "end", end, "end (now)"),
        class_name="control window-picker",
    )


def baseline_picker(page: str, start: str | None, end: str | None) -> html.Div:
    """Start and end of the window to compare with (URL parameters `baseline_start` and
    `baseline_end`); empty means the page's default baseline."""
    return labelled(
        "Baseline",
        time_input(page, "baseline_start", start, "baseline start"),
        html.Span("to", className="control-label"),
        time_input(page, "baseline_end", end, "baseline end"),
    )


def time_input(page: str, name: str, value: str | None, placeholder: str) -> dcc.Input:
    """A free-text time field bound to the URL parameter `name`, read once the user is done
    typing."""
    return dcc.Input(
        id=param_id(page, name),
        value=value or "",
        placeholder=placeholder,
        debounce=True,
        className="time-input",
        type="text",
    )


def model_picker(page: str, value: str | None) -> html.Div:
    """A model dropdown; its options are filled by the page's callback (layouts stay pure)."""
    return dropdown(
        page,
        "model",
        "Model",
        value,
        value_options([value] if value else []),
        placeholder="Choose a model",
        class_name="dropdown model-dropdown",
    )


def model_options(names: Sequence[str], current: str | None) -> tuple[list[dict[str, str]], Any]:
    """The model picker's options, and its value: the first model when none is chosen (Dash's
    no_update when the chosen one stays)."""
    chosen = current if current else (names[0] if names else None)
    return value_options(names), (chosen if chosen != current else no_update)


def value_options(values: Iterable[Any]) -> list[dict[str, Any]]:
    """Dropdown (or radio) options, each labelled with its value."""
    return [{"label": value, "value": value} for value in values]


def dropdown(
    page: str,
    name: str,
    label: str,
    value: Any,
    options: Sequence[Mapping[str, Any]],
    *,
    multi: bool = False,
    clearable: bool | None = None,
    placeholder: str = "",
    class_name: str = "dropdown",
) -> html.Div:
    """A labelled dropdown bound to the URL parameter `name`; one that takes several values
    can be cleared unless `clearable` says otherwise."""
    return labelled(
        label,
        dcc.Dropdown(
            id=param_id(page, name),
            value=value,
            options=list(options),
            multi=multi,
            clearable=multi if clearable is None else clearable,
            placeholder=placeholder,
            className=class_name,
        ),
    )


def choice(page: str, name: str, label: str, value: str | None, placeholder: str) -> html.Div:
    """A clearable single-choice dropdown bound to the URL parameter `name` (its options
    come from the page's callback)."""
    options = value_options([value] if value else [])
    return dropdown(page, name, label, value, options, clearable=True, placeholder=placeholder)


def radio(
    page: str, name: str, label: str, value: Any, options: Sequence[Mapping[str, Any]]
) -> html.Div:
    """Labelled inline radio buttons bound to the URL parameter `name`."""
    return labelled(
        label,
        dcc.RadioItems(
            id=param_id(page, name),
            value=value,
            options=list(options),
            inline=True,
            className="radio",
        ),
    )


def controls(*children: Any) -> html.Div:
    return html.Div(list(children), className="controls")


# --- display -----------------------------------------------------------------------------------


def verdict_badge(verdict: Verdict, *, badge_id: str | None = None) -> html.Span:
    """A coloured badge: ok (green), breached (red), warn (amber), none (grey)."""
    extra: dict[str, Any] = {"id": badge_id} if badge_id else {}
    return html.Span(
        verdict.text, className=f"badge badge-{verdict.kind}", title=verdict.text, **extra
    )


def loading(page: str, name: str, children: Any) -> dcc.Loading:
    """Shows a spinner over `children` while a callback that updates them runs."""
    return dcc.Loading(
        children, id=f"{page}-{name}-loading", type="default", delay_show=200, color="#2563eb"
    )


def empty_state(title: str, *lines: Any, element_id: str | None = None) -> html.Div:
    """What to do when there is nothing to show yet."""
    extra: dict[str, Any] = {"id": element_id} if element_id else {}
    return html.Div(
        [html.H3(title), *[html.P(line) for line in lines]], className="empty-state", **extra
    )


def no_data_yet(element_id: str | None = None) -> html.Div:
    """The empty state of a server that has received no inference records."""
    return empty_state(
        "No data yet",
        [
            "Send inference records with the Python SDK (",
            html.Code("Client(url, api_key).log_prediction(...)"),
            "), POST them to ",
            html.Code("/api/v1/records"),
            ", or load a file with ",
            html.Code("observe import records FILE"),
            ".",
        ],
        ["To look around first, ", html.Code("observe demo"), " loads a week of example traffic."],
        element_id=element_id,
    )


def error_message(message: str, element_id: str | None = None) -> html.Div:
    extra: dict[str, Any] = {"id": element_id} if element_id else {}
    return html.Div(message, className="error-message", role="alert", **extra)


def status_line(page: str) -> html.Div:
    """What the page shows (window, counts) or why it cannot; its data callback fills it, and
    the browser tests wait for it before they look at a page."""
    return html.Div(id=f"{page}-status", className="status-line")


def page_header(title: str, subtitle: str = "") -> html.Div:
    return html.Div(
        [html.H2(title), html.P(subtitle, className="subtitle") if subtitle else None],
        className="page-header",
    )


def page_layout(
    page: str,
    params: Mapping[str, Any],
    *,
    title: str,
    subtitle: str,
    pickers: Sequence[Any],
    body: Sequence[Any],
    before_body: Sequence[Any] = (),
) -> html.Div:
    """A page as every page is laid out: its header, a row of `pickers`, then `body` below the
    status line, under one spinner while the page's callbacks run; `before_body` sits between
    the pickers and the spinner. `params` are the values the URL controls are rendered with
    (see `rendered_params`)."""
    return html.Div(
        [
            rendered_params(page, params),
            page_header(title, subtitle),
            controls(*pickers),
            *before_body,
            loading(page, "body", html.Div([status_line(page), *body])),
        ],
        className=f"page page-{page}",
    )


def graph(element_id: str, figure: Any) -> dcc.Graph:
    """A chart a callback builds: its box is as tall as the figure says (where it says), so
    what follows is laid out below it instead of under an overflowing plot."""
    return dcc.Graph(id=element_id, figure=figure, config=GRAPH_CONFIG, style=graph_style(figure))


def graph_style(figure: Any) -> dict[str, str]:
    """The style of a chart in a page's layout that a callback fills: as tall as the figure."""
    height = figure.layout.height
    return {"height": f"{height}px"} if height else {}


def placeholder_graph(element_id: str) -> dcc.Graph:
    """A chart in a page's layout whose figure a callback replaces; until then it says it is
    loading."""
    return dcc.Graph(id=element_id, config=GRAPH_CONFIG, figure=empty_figure("Loading…"))


def data_table(
    columns: Sequence[str], rows: Sequence[Any], *, table_id: str | None = None
) -> html.Table:
    """A table in the UI's style: a header of `columns` above `rows` (`html.Tr`s)."""
    extra: dict[str, Any] = {"id": table_id} if table_id else {}
    header = html.Thead(html.Tr([html.Th(name) for name in columns]))
    return html.Table([header, html.Tbody(list(rows))], className="data-table", **extra)


#: The columns of a per-feature test table (drift, skew), as `feature_test_cells` fills them.
FEATURE_TEST_COLUMNS = ("Feature", "Type", "Test", "Statistic", "p-value", "Threshold", "Verdict")


def feature_test_cells(record: Mapping[str, Any], *, breached: str, ok: str) -> list[Any]:
    """The cells after the feature's own of a row of `dashboards.data.drift.feature_table`:
    type, test, statistic, p-value, threshold, and a badge saying `breached` or `ok`."""
    verdict = Verdict.breached_if(bool(record["drifted"]), breached, ok)
    return [
        record["kind"],
        record["test"],
        format_number(record["statistic"]),
        format_number(record["p_value"]),
        format_number(record["threshold"]),
        verdict_badge(verdict),
    ]


def data_attributes(**values: Any) -> dict[str, Any]:
    """``data-*`` attributes for an element (``data_attributes(model="m")`` gives
    ``data-model="m"``): how tests and scripts find a row."""
    return {f"data-{name}": str(value) for name, value in values.items()}


def link(text: str, href: str, **kwargs: Any) -> dcc.Link:
    return dcc.Link(text, href=href, **kwargs)


# --- callbacks ---------------------------------------------------------------------------------


def register_callbacks(app: Dash) -> None:
    """Callbacks of the shared widgets (the app calls this once per Dash instance)."""

    @app.callback(
        Output(param_id(MATCH, "start"), "value"),  # type: ignore[arg-type]
        Output(param_id(MATCH, "end"), "value"),  # type: ignore[arg-type]
        Input({"type": WINDOW_PRESET, "page": MATCH}, "value"),
        prevent_initial_call=True,
    )
    def apply_window_preset(preset: str | None) -> tuple[Any, Any]:
        if not preset:
            return no_update, no_update
        return preset, ""


def register_model_choices(
    app: Dash,
    page: str,
    context: Any,
    *,
    pickers: Sequence[str] = (),
    outputs: Sequence[Output] = (),
    choices: Callable[[str | None], Sequence[Any]] | None = None,
) -> None:
    """The callback of a model page's model picker: the models with data as its options, the
    first one chosen where the URL names none. `choices(model)`, called with the chosen model
    (None without models), gives the options of the page's other `pickers` (by URL parameter)
    and then the values of its other `outputs`, such as a panel. `context` is the app's
    `UiContext`, read when the callback runs."""

    @app.callback(
        Output(param_id(page, "model"), "options"),
        Output(param_id(page, "model"), "value"),
        *[Output(param_id(page, name), "options") for name in pickers],
        *outputs,
        Input(param_id(page, "model"), "id"),  # so that it runs when the page appears
        Input(param_id(page, "model"), "value"),
    )
    def fill_model_choices(_id: Any, model: str | None) -> tuple[Any, ...]:
        options, value = model_options(data.list_model_names(context.sessions), model)
        if choices is None:
            return options, value
        chosen = model or (options[0]["value"] if options else None)
        return options, value, *choices(chosen)


def register_model_view(
    app: Dash,
    page: str,
    params: Sequence[str],
    outputs: Sequence[Output],
    show: Callable[[dict[str, Any]], Sequence[Any]],
    *,
    pickers: Sequence[str] = (),
    blank: Sequence[Any],
    problem: Callable[[str], Any] | None = None,
) -> None:
    """The callback that draws a model page from its URL parameters `params` (the first being
    `model`) into its status line, its `outputs`, then the options of its `pickers` (by URL
    parameter): `show(params)` gives the values of all of them.

    Without a model (nothing sent yet) the status line says how to send data; a bad
    parameter, a `data.InputError` from `show`, is said there (as `problem(message)` where
    given, else as an error message); either way the other outputs get `blank`.
    """

    @app.callback(
        Output(f"{page}-status", "children"),
        *outputs,
        *[Output(param_id(page, name), "options") for name in pickers],
        *[Input(param_id(page, name), "value") for name in params],
    )
    def show_page(*values: Any) -> tuple[Any, ...]:
        chosen = dict(zip(params, values, strict=True))
        if not chosen["model"]:
            return no_data_yet(f"{page}-empty"), *blank
        try:
            return tuple(show(chosen))
        except data.InputError as error:
            message = str(error)
            shown = problem(message) if problem else error_message(message, f"{page}-error")
            return shown, *blank
