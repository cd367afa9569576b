"""Model overviews: registry, SLOs and rolled-up traffic, errors and percentiles together."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from observe.pipeline import latency
from observe.schemas.reads import ModelOut, SloOut, SloStatus, VersionStats
from observe.storage import models as model_store
from observe.storage.models import ModelInfo, Slo, VersionSeen


def list_model_overviews(
    session: Session, *, start: dt.datetime, end: dt.datetime
) -> list[ModelOut]:
    """Every model with its traffic, errors, percentiles and SLO status in [start, end)."""
    return [
        model_overview(session, info, start=start, end=end)
        for info in model_store.list_models(session)
    ]


def get_model_overview(
    session: Session, name: str, *, start: dt.datetime, end: dt.datetime
) -> ModelOut | None:
    info = model_store.get_model(session, name)
    return None if info is None else model_overview(session, info, start=start, end=end)


def model_overview(
    session: Session, info: ModelInfo, *, start: dt.datetime, end: dt.datetime
) -> ModelOut:
    """One model over [start, end) (whole minutes), every known version included."""
    percentiles = list(latency.DEFAULT_PERCENTILES)
    if info.slo.latency_percentile is not None and info.slo.latency_percentile not in percentiles:
        percentiles.append(info.slo.latency_percentile)
    total, versions = latency.latency_summary(
        session, model=info.name, start=start, end=end, percentiles=percentiles
    )
    window_start, window_end = latency.align_window(start, end, latency.BUCKET_SECONDS)
    seen = {v.model_version: v for v in info.versions}
    stats = [_version_stats(v, seen.get(v.model_version)) for v in versions]
    reported = {v.model_version for v in versions}
    idle = latency.VersionSummary
    stats += [
        _version_stats(idle(v.model_version, 0, 0, None, None, {}), v)
        for v in info.versions
        if v.model_version not in reported
    ]
    return ModelOut(
        name=info.name,
        created_at=info.created_at,
        start=window_start,
        end=window_end,
        num_requests=total.num_requests,
        num_errors=total.num_errors,
        error_rate=total.error_rate,
        mean_ms=total.mean_ms,
        p50=total.percentiles.get("p50"),
        p95=total.percentiles.get("p95"),
        p99=total.percentiles.get("p99"),
        slo=slo_out(info.slo),
        slo_status=_slo_status(info.slo, total),
        versions=stats,
    )


def slo_out(slo: Slo) -> SloOut:
    return SloOut(
        latency_percentile=slo.latency_percentile,
        latency_ms=slo.latency_ms,
        error_rate_pct=slo.error_rate_pct,
        updated_at=slo.updated_at,
    )


def _version_stats(summary: latency.VersionSummary, seen: VersionSeen | None) -> VersionStats:
    return VersionStats(
        model_version=summary.model_version,
        first_seen_at=seen.first_seen_at if seen else None,
        last_seen_at=seen.last_seen_at if seen else None,
        num_requests=summary.num_requests,
        num_errors=summary.num_errors,
        error_rate=summary.error_rate,
        mean_ms=summary.mean_ms,
        p50=summary.percentiles.get("p50"),
        p95=summary.percentiles.get("p95"),
        p99=summary.percentiles.get("p99"),
    )


def _slo_status(slo: Slo, total: latency.VersionSummary) -> SloStatus:
    observed = None
    if slo.latency_percentile is not None:
        observed = total.percentiles.get(latency.percentile_column(slo.latency_percentile))
    error_rate_pct = None if total.error_rate is None else total.error_rate * 100
    latency_ok = None if observed is None or slo.latency_ms is None else observed <= slo.latency_ms
    error_ok = (
        None
        if error_rate_pct is None or slo.error_rate_pct is None
        else error_rate_pct <= slo.error_rate_pct
    )
    return SloStatus(
        latency_ms=observed,
        latency_ok=latency_ok,
        error_rate_pct=error_rate_pct,
        error_rate_ok=error_ok,
    )
