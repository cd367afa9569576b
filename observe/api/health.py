"""GET /healthz (open, for probes) and GET /metrics (Prometheus text, read scope)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from observe.api.errors import documented
from observe.api.security import requires
from observe.auth import Scope

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness and readiness",
    responses={503: {"description": "database unreachable"}},
)
def get_health(request: Request) -> JSONResponse:
    """Open without a key so that load balancers and orchestrators can probe it; it reveals
    nothing beyond whether the database answers and how much is waiting to be written."""
    database = "ok"
    try:
        with request.app.state.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        database = "unavailable"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "queued_items": request.app.state.writer.queued_items(),
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


@router.get(
    "/metrics",
    dependencies=[requires(Scope.READ)],
    responses=documented(401, 403),
    summary="observe's own Prometheus metrics",
    response_class=Response,
)
def get_metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.telemetry.scrape_registry()),
        media_type=CONTENT_TYPE_LATEST,
    )
