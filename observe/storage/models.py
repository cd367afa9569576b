"""The model registry: models, their versions as seen in records, and their SLOs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from observe.db.models import (
    Event,
    FeatureProfileDayRollup,
    FeatureProfileRollup,
    Finding,
    InferenceRecord,
    Label,
    LatencyRollup,
    MetricSample,
    Model,
    ModelVersion,
    ProfilerTrace,
    ReferenceDataset,
    Span,
    SpanRollup,
    Trace,
)
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage import reports as report_store
from observe.storage._sql import dialect_of, upsert


@dataclass(frozen=True)
class VersionSeen:
    """First and last record timestamps of a model version within one batch."""

    model: str
    model_version: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime


@dataclass(frozen=True)
class Slo:
    """A latency objective (percentile under a bound) and an error-rate objective."""

    latency_percentile: float | None
    latency_ms: float | None
    error_rate_pct: float | None
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    created_at: dt.datetime
    slo: Slo
    versions: list[VersionSeen]


def record_versions_seen(
    session: Session, seen: Iterable[VersionSeen], *, now: dt.datetime
) -> None:
    """Register models and versions, widening each version's first/last seen times."""
    rows = sorted(seen, key=lambda v: (v.model, v.model_version))
    if not rows:
        return
    models = sorted({row.model for row in rows})
    session.execute(
        upsert(session, Model.__table__).on_conflict_do_nothing(),
        [{"name": name, "created_at": now} for name in models],
    )
    values = [
        {
            "model": row.model,
            "model_version": row.model_version,
            "first_seen_at": row.first_seen_at,
            "last_seen_at": row.last_seen_at,
        }
        for row in rows
    ]
    statement = upsert(session, ModelVersion.__table__)
    least, greatest = (
        (func.least, func.greatest) if dialect_of(session) == "postgresql" else (func.min, func.max)
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["model", "model_version"],
        set_={
            "first_seen_at": least(ModelVersion.first_seen_at, excluded.first_seen_at),
            "last_seen_at": greatest(ModelVersion.last_seen_at, excluded.last_seen_at),
        },
        where=(ModelVersion.first_seen_at > excluded.first_seen_at)
        | (ModelVersion.last_seen_at < excluded.last_seen_at),
    )
    session.execute(statement, values)


def list_models(session: Session) -> list[ModelInfo]:
    """Every known model with its SLO and versions (oldest version first)."""
    versions: dict[str, list[VersionSeen]] = {}
    query = select(ModelVersion).order_by(ModelVersion.model, ModelVersion.first_seen_at)
    for version in session.scalars(query):
        versions.setdefault(version.model, []).append(
            VersionSeen(
                version.model, version.model_version, version.first_seen_at, version.last_seen_at
            )
        )
    return [
        ModelInfo(model.name, model.created_at, _slo(model), versions.get(model.name, []))
        for model in session.scalars(select(Model).order_by(Model.name))
    ]


def get_model(session: Session, name: str) -> ModelInfo | None:
    model = session.get(Model, name)
    if model is None:
        return None
    query = (
        select(ModelVersion).where(ModelVersion.model == name).order_by(ModelVersion.first_seen_at)
    )
    versions = [
        VersionSeen(v.model, v.model_version, v.first_seen_at, v.last_seen_at)
        for v in session.scalars(query)
    ]
    return ModelInfo(model.name, model.created_at, _slo(model), versions)


def set_slo(
    session: Session,
    name: str,
    *,
    latency_percentile: float | None,
    latency_ms: float | None,
    error_rate_pct: float | None,
    now: dt.datetime,
) -> Slo:
    """Set (or clear, with None) a model's SLO; the model is registered if it is new."""
    model = session.get(Model, name)
    if model is None:
        model = Model(name=name, created_at=now)
        session.add(model)
    model.slo_latency_percentile = latency_percentile
    model.slo_latency_ms = latency_ms
    model.slo_error_rate_pct = error_rate_pct
    model.slo_updated_at = now
    session.flush()
    return _slo(model)


def _slo(model: Model) -> Slo:
    return Slo(
        latency_percentile=model.slo_latency_percentile,
        latency_ms=model.slo_latency_ms,
        error_rate_pct=model.slo_error_rate_pct,
        updated_at=model.slo_updated_at,
    )


def delete_models(session: Session, names: Sequence[str], *, hosts: Sequence[str] = ()) -> None:
    """Delete everything stored about these models, and the metric samples of `hosts`."""
    names = list(names)
    for table in (
        InferenceRecord,
        Label,
        Event,
        LatencyRollup,
        ModelVersion,
        Finding,
        Span,
        Trace,
        ProfilerTrace,
        ReferenceDataset,
        FeatureProfileRollup,
        FeatureProfileDayRollup,
    ):
        session.execute(delete(table).where(table.model.in_(names)))
    session.execute(
        delete(SpanRollup).where(SpanRollup.dim_key == "model", SpanRollup.dim_value.in_(names))
    )
    session.execute(delete(Model).where(Model.name.in_(names)))
    _delete_reports_and_alerts(session, names)
    if hosts:
        session.execute(delete(MetricSample).where(MetricSample.host.in_(list(hosts))))


def _delete_reports_and_alerts(session: Session, names: list[str]) -> None:
    """Their weekly reports (summaries, which cover every model, stay) and alerts."""
    report_store.delete_model_reports(session, names)
    delivery_store.delete_alert_deliveries(session, names)
    alert_store.delete_model_alerts(session, names)


def list_active_models(session: Session, *, since: dt.datetime) -> list[str]:
    """Models with a version whose latest record is at or after `since`, by name."""
    query = (
        select(ModelVersion.model)
        .where(ModelVersion.last_seen_at >= since)
        .distinct()
        .order_by(ModelVersion.model)
    )
    return list(session.scalars(query))


def first_record_time(session: Session) -> dt.datetime | None:
    """The timestamp of the oldest record of any model (as registered with its version)."""
    return session.scalar(select(func.min(ModelVersion.first_seen_at)))
