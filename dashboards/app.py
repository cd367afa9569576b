"""The Dash UI: a multi-page app served at /ui/ by the API's own server.

`mount_ui(api, settings)`, called by `observe.app.create_app`, builds the Dash app and mounts
it under /ui behind `SessionGate`, with the login form beside it. Dash runs on its Flask
backend behind a WSGI-to-ASGI bridge (a2wsgi): page callbacks are blocking database reads, and
the bridge runs them on its own threads, so a slow chart never stalls the event loop that
serves ingest.

Pages are the modules of `dashboards.pages`; each calls `dash.register_page(__name__, ...)`,
has a `layout(**url_params)` function and a `register_callbacks(app, context)` function.
Adding a page is adding a module. Callbacks are registered on each Dash instance (never with
the global `dash.callback`), so several apps can live in one process, as tests make them.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import dash
from a2wsgi import WSGIMiddleware
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp

from dashboards import components, pages, session
from observe.config import Settings
from observe.db.engine import Database

PAGES_PACKAGE = pages.__name__
ASSETS_FOLDER = Path(__file__).with_name("assets")
LOCATION_ID = "_pages_location"  # the dcc.Location inside dash.page_container
#: URL parameters that follow the user from page to page through the navigation links.
SHARED_PARAMS = ("model", "start", "end")
WSGI_THREADS = 8


@dataclass(frozen=True)
class UiContext:
    """What page callbacks need from the server, read when a callback runs (the database is
    opened by the API's lifespan, after the UI is built)."""

    api: FastAPI

    @property
    def settings(self) -> Settings:
        settings: Settings = self.api.state.settings
        return settings

    @property
    def db(self) -> Database:
        """The database, for the analyses that open their own sessions (drift, skew)."""
        db: Database = self.api.state.db
        return db

    @property
    def sessions(self) -> sessionmaker[Session]:
        sessions: sessionmaker[Session] = self.api.state.db.sessions
        return sessions


class UiMount:
    """The mounted UI: the Dash app and the bridge threads that run its callbacks."""

    def __init__(self, dash_app: Dash) -> None:
        self.dash_app = dash_app
        self.wsgi = WSGIMiddleware(dash_app.server, workers=WSGI_THREADS)

    def close(self) -> None:
        self.wsgi.executor.shutdown(wait=False, cancel_futures=True)


def mount_ui(api: FastAPI, settings: Settings) -> UiMount:
    """Build the UI and mount it at /ui on `api`, behind the session check."""
    dash_app = create_dash_app(UiContext(api), show_logout=settings.auth_enabled)
    ui = UiMount(dash_app)
    api.include_router(session.router)
    compressed = GZipMiddleware(cast(ASGIApp, ui.wsgi), minimum_size=1024)
    gated = session.SessionGate(compressed, api.state)
    api.mount(session.UI_PREFIX, gated, name="ui")
    return ui


def create_dash_app(context: UiContext, *, show_logout: bool = True) -> Dash:
    """A Dash app with every page of `dashboards.pages` and their callbacks."""
    dash_app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        requests_pathname_prefix=f"{session.UI_PREFIX}/",
        routes_pathname_prefix="/",
        assets_folder=str(ASSETS_FOLDER),
        title="observe",
        update_title="observe · loading",
        serve_locally=True,
    )
    page_modules = load_pages()
    dash_app.layout = shell(show_logout=show_logout)
    components.register_callbacks(dash_app)
    register_shell_callbacks(dash_app)
    for module in page_modules:
        module.register_callbacks(dash_app, context)
    return dash_app


def load_pages() -> list[ModuleType]:
    """Import every page module (registering it with Dash on first import), in page order."""
    modules = [
        importlib.import_module(f"{PAGES_PACKAGE}.{info.name}")
        for info in pkgutil.iter_modules(pages.__path__)
        if not info.name.startswith("_")
    ]
    for module in modules:
        page = dash.page_registry[module.__name__]
        if not page.get("layout"):  # as Dash does for modules it finds in a pages folder
            page["layout"] = module.layout
    order = {name: index for index, name in enumerate(dash.page_registry)}
    return sorted(modules, key=lambda module: order.get(module.__name__, len(order)))


def shell(*, show_logout: bool) -> html.Div:
    """The frame around every page: brand, navigation, logout, and the page container."""
    links = [
        dcc.Link(
            page["name"],
            href=page["relative_path"],
            id=nav_id(page["module"]),
            className="nav-link",
        )
        for page in dash.page_registry.values()
    ]
    logout = html.Form(
        html.Button("Log out", type="submit", id="nav-logout", className="logout-button"),
        action=f"{session.UI_PREFIX}/logout",
        method="POST",
        className="logout-form",
    )
    return html.Div(
        [
            html.Header(
                [
                    dcc.Link("observe", href=f"{session.UI_PREFIX}/", className="brand"),
                    html.Nav(links, className="nav"),
                    logout if show_logout else None,
                ],
                className="topbar",
            ),
            html.Main(dash.page_container, className="content"),
        ],
        className="shell",
    )


def nav_id(module: str) -> str:
    return f"nav-{module.rsplit('.', 1)[-1]}"


def register_shell_callbacks(app: Dash) -> None:
    """The URL writer and the navigation links that carry the shared parameters."""

    @app.callback(
        Output(LOCATION_ID, "search"),
        Input({"type": components.URL_PARAM, "page": ALL, "param": ALL}, "value"),
        State({"type": components.RENDERED_PARAMS, "page": ALL}, "data"),
        State(LOCATION_ID, "search"),
        prevent_initial_call=True,
    )
    def write_url(values: list[Any], rendered: list[Any], search: str | None) -> Any:
        controls = [item["id"] for item in ctx.inputs_list[0]]
        changed = components.changed_params(
            {c["param"]: value for c, value in zip(controls, values, strict=True)},
            rendered[0] if rendered else {},
        )
        if not changed:  # the page's controls appeared, showing what the URL says
            return no_update
        query = components.merge_query(search, changed)
        return no_update if query == (search or "") else query

    links = [
        (nav_id(page["module"]), page["relative_path"]) for page in dash.page_registry.values()
    ]

    @app.callback(
        *[Output(link_id, "href") for link_id, _ in links],
        *[Output(link_id, "className") for link_id, _ in links],
        Input(LOCATION_ID, "pathname"),
        Input(LOCATION_ID, "search"),
    )
    def update_nav(pathname: str | None, search: str | None) -> list[Any]:
        carried = components.query_string(
            (name, value) for name, value in _parse_query(search).items() if name in SHARED_PARAMS
        )
        current = (pathname or "").rstrip("/")
        return [href + carried for _, href in links] + [
            "nav-link active" if href.rstrip("/") == current else "nav-link" for _, href in links
        ]


def _parse_query(search: str | None) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs((search or "").lstrip("?"), keep_blank_values=False)
