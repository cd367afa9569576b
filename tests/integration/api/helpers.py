"""Helpers shared by the API tests: custom apps, row counts, bodies, reference percentiles."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, routing
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from observe.app import create_app
from observe.db.engine import Database
from observe.db.models import (
    Event,
    InferenceRecord,
    Label,
    LatencyRollup,
    MetricSample,
    Model,
    ModelVersion,
)
from observe.pipeline.writer import Writer
from tests.conftest import database_url, make_settings

#: Tables an ingest request writes to; a refused batch must leave every one of them as it was.
INGEST_TABLES = {
    "inference_records": InferenceRecord,
    "labels": Label,
    "events": Event,
    "metric_samples": MetricSample,
    "models": Model,
    "model_versions": ModelVersion,
    "latency_rollups": LatencyRollup,
}
INGEST_PATHS = ("/api/v1/records", "/api/v1/labels", "/api/v1/events", "/api/v1/metrics")
#: Routes that need no key: probes, the API documentation, and the UI's login and logout forms
#: (the UI behind them takes a session, tested in tests/integration/dashboards/test_session.py).
OPEN_PATHS = {
    "/healthz",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/ui/login",
    "/ui/logout",
}


@contextmanager
def app_client(
    db: Database,
    data_dir: Path,
    *,
    writer: Writer | None = None,
    engine: Engine | None = None,
    **overrides: Any,
) -> Iterator[TestClient]:
    """A TestClient of the full app on `db` with the given settings overrides."""
    settings = make_settings(database_url=database_url(db), data_dir=data_dir, **overrides)
    app = create_app(settings, engine=engine or db.engine, writer=writer)
    with TestClient(app) as client:
        yield client


def row_counts(db: Database) -> dict[str, int]:
    """Rows in every table that ingest writes to."""
    with db.sessions() as session:
        return {
            name: session.scalar(select(func.count()).select_from(table)) or 0
            for name, table in INGEST_TABLES.items()
        }


def nothing_stored(db: Database) -> bool:
    return not any(row_counts(db).values())


def ndjson(items: Iterable[Any]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def json_array(items: Iterable[Any]) -> bytes:
    return orjson.dumps(list(items))


def lower_percentile(values: Sequence[float], percentile: float) -> float:
    """The reference the API's percentiles are held to: numpy's "lower" quantile."""
    return float(
        np.quantile(np.asarray(values, dtype=np.float64), percentile / 100, method="lower")
    )


def protected_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route of `app` except the open ones; HEAD left out."""
    found = set()
    for route in routing.iter_route_contexts(app.routes):
        if route.path in OPEN_PATHS or route.path is None:
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return sorted(found)


def concrete_path(template: str) -> str:
    """A requestable path for a route template: every path parameter becomes a model name."""
    return re.sub(r"\{[^}]+\}", "fraud-scorer", template)
