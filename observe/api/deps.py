"""Request-scoped dependencies: settings, read sessions, the writer."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

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
