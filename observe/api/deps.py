"""Request-scoped dependencies: settings, read sessions, the writer, parameter checks."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from observe.api.errors import ApiError
from observe.config import Settings
from observe.pipeline.writer import Writer


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """A read session for one request; routes that write go through the writer instead."""
    with request.app.state.db.sessions() as session:
        yield session


def get_writer(request: Request) -> Writer:
    writer: Writer = request.app.state.writer
    return writer


def get_write_sessions(request: Request) -> sessionmaker[Session]:
    """For small writes done in the route itself; commit inside the route, before answering."""
    sessions: sessionmaker[Session] = request.app.state.db.write_sessions
    return sessions


def refuse_nul_parameters(request: Request) -> None:
    """Refuse NUL characters in path and query parameters with 422.

    Neither database can compare text holding NUL (Postgres refuses it, SQLite's JSON paths
    fail on it), so such a parameter would otherwise surface as a database error.
    """
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in str(value):
            raise ApiError(422, f"{name}: contains a NUL character (\\u0000)")
