"""Alerts: a short notice when the hourly analysis finds a new latency regression, SLO breach or
data set drift, and one when it clears; never one per hour while it lasts.

After each scheduled analysis run the open findings of those kinds are compared with the alert
log. An incident is about a subject: a latency regression (its finding), one SLO objective of a
model, or one model version's data drifting (whose findings are per day, so a drift lasting a
week stays one incident). A subject with an open finding and no open incident opens one, keyed
by that finding's dedupe key; an open incident whose subject has no open finding any more is
resolved. Each notice is a row of the alert log, unique per (incident, state), inserted before
it is sent: whoever inserts it queues its delivery, nobody else does, on any server.

An opened notice names the model, what happened and since when, the top cause (for latency,
the first cause of a diagnosis of the incident's first hour; for drift, the most drifted
feature) and links to the triage page of the incident's window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline.delivery import Deliverer, DeliveryListener
from observe.pipeline.diagnosis import Windows
from observe.pipeline.incidents import (
    DIAGNOSIS_WINDOW,
    MIN_DIAGNOSIS_WINDOW,
    diagnose_briefly,
    diagnosis_windows,
    onset_of,
    triage_url,
)
from observe.pipeline.latency_analysis import REGRESSION_KIND, SLO_KIND
from observe.pipeline.report_content import drift_strength
from observe.schemas.findings import FindingOut
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage import findings as finding_store
from observe.storage.alerts import AlertRow, NewAlert

log = logging.getLogger(__name__)

DRIFT_KIND = "drift"
ALERT_KINDS = (REGRESSION_KIND, SLO_KIND, DRIFT_KIND)
MAX_OPEN_FINDINGS = 5000
DRIFT_ACTION = (
    "compare the serving inputs with the training data on the drift page; if the change is "
    "not expected, fix the upstream data, else retrain on recent data"
)


@dataclass
class AlertRun:
    """The alerts one run logged (their ids)."""

    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)


def subject_of(finding: FindingOut) -> str:
    """What an incident is about, as a fixed-length key."""
    if finding.kind == SLO_KIND:
        parts = [finding.kind, finding.model, str((finding.details or {}).get("objective"))]
    elif finding.kind == DRIFT_KIND:
        parts = [finding.kind, finding.model, finding.model_version or "all"]
    else:
        parts = [finding.kind, finding.dedupe_key]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def notify_incidents(
    db: Database,
    *,
    settings: Settings,
    now: dt.datetime,
    deliverer: Deliverer,
    listener: DeliveryListener | None = None,
) -> AlertRun:
    """Log and send the opened and resolved notices the latest findings call for."""
    with db.sessions() as session:
        findings = finding_store.load_findings(
            session, kinds=ALERT_KINDS, statuses=["open"], limit=MAX_OPEN_FINDINGS
        )
        incidents = alert_store.load_open_incidents(session)
    open_now: dict[str, FindingOut] = {}
    for finding in sorted(findings, key=onset_of):  # the earliest onset speaks for a subject
        open_now.setdefault(subject_of(finding), finding)
    known = {incident.subject for incident in incidents}
    run = AlertRun()
    for subject, finding in open_now.items():
        if subject not in known:
            alert = opened_alert(db, finding, subject, settings=settings, now=now)
            _log(db, alert, deliverer, now, run.opened, listener)
    for incident in incidents:
        if incident.subject not in open_now:
            _log(db, resolved_alert(incident, now=now), deliverer, now, run.resolved, listener)
    if run.opened or run.resolved:
        log.info("alerts: %d opened, %d resolved", len(run.opened), len(run.resolved))
        deliverer.deliver_due(now=now)
    return run


def _log(
    db: Database,
    alert: NewAlert,
    deliverer: Deliverer,
    now: dt.datetime,
    ids: list[int],
    listener: DeliveryListener | None,
) -> None:
    with db.write_sessions.begin() as session:
        alert_id = alert_store.insert_alert(session, alert, now=now)
        if alert_id is None:  # logged already, by another run or server
            return
        delivery_store.enqueue_deliveries(
            session, channels=deliverer.channel_names, now=now, alert_id=alert_id
        )
    ids.append(alert_id)
    if listener is not None:
        listener.on_alert(alert.kind, alert.state)


# --- opened ------------------------------------------------------------------------------------


def opened_alert(
    db: Database, finding: FindingOut, subject: str, *, settings: Settings, now: dt.datetime
) -> NewAlert:
    """The notice that an incident began, with its top cause and triage link."""
    since = onset_of(finding)
    if finding.kind == DRIFT_KIND:
        cause = _drift_cause(finding)
        window = (finding.window_start, finding.window_end)
    else:
        windows = _latency_windows(finding, since, now)
        cause = _latency_cause(db, finding, windows, settings) if windows else None
        window = (windows.start, windows.end) if windows else (since, now)
    return NewAlert(
        incident_key=finding.dedupe_key,
        subject=subject,
        state="opened",
        kind=finding.kind,
        model=finding.model,
        model_version=finding.model_version,
        finding_id=finding.id,
        summary=finding.summary,
        details={
            "since": since.isoformat(),
            "severity": finding.severity,
            "top_cause": cause,
            "link": triage_url(settings.base_url, finding.model, *window),
            "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
        },
    )


def _latency_windows(finding: FindingOut, since: dt.datetime, now: dt.datetime) -> Windows | None:
    """A regression's first hour; for an SLO breach, its latest hour against the hour
    before it began."""
    if finding.kind == REGRESSION_KIND:
        return diagnosis_windows(since, now=now)
    start = max(since, now - DIAGNOSIS_WINDOW)
    if now - start < MIN_DIAGNOSIS_WINDOW:
        return None
    return Windows.resolve(start, now, since - (now - start), since)


def _latency_cause(
    db: Database, finding: FindingOut, windows: Windows, settings: Settings
) -> dict[str, Any] | None:
    try:
        with db.sessions() as session:
            brief = diagnose_briefly(
                session,
                model=finding.model,
                windows=windows,
                rollup_tags=settings.rollup_tags,
                num_causes=1,
            )
    except Exception:  # the alert goes out without a cause rather than not at all
        log.exception("diagnosis for the alert about finding %s failed", finding.id)
        return None
    return brief.causes[0].model_dump() if brief.causes else None


def _drift_cause(finding: FindingOut) -> dict[str, Any] | None:
    features = [f for f in (finding.details or {}).get("features", []) if f.get("drifted")]
    if not features:
        return None

    def strength(item: dict[str, Any]) -> float:
        value = drift_strength(
            float(item.get("statistic") or 0.0), item.get("p_value"), float(item["threshold"])
        )
        return value or 0.0

    top = max(features, key=strength)
    names = ", ".join(f["feature"] for f in sorted(features, key=strength, reverse=True)[:5])
    return {
        "kind": "data_drift",
        "score": min(1.0, float(finding.severity or 0.0)),
        "scope": {"feature": top["feature"]},
        "summary": (
            f"{top['feature']} drifted most ({top['test']} {top.get('statistic') or 0:.3g}, "
            f"threshold {top['threshold']:g}); drifted: {names}"
        ),
        "action": DRIFT_ACTION,
    }


# --- resolved ----------------------------------------------------------------------------------


def resolved_alert(incident: AlertRow, *, now: dt.datetime) -> NewAlert:
    """The notice that an incident cleared."""
    recorded = incident.details.get("since")
    since = dt.datetime.fromisoformat(recorded) if recorded else incident.created_at
    lasted = _duration(now - since)
    return NewAlert(
        incident_key=incident.incident_key,
        subject=incident.subject,
        state="resolved",
        kind=incident.kind,
        model=incident.model,
        model_version=incident.model_version,
        finding_id=incident.finding_id,
        summary=f"Resolved after {lasted}: {incident.summary}",
        details={
            "since": since.isoformat(),
            "resolved_at": now.isoformat(),
            "duration_seconds": (now - since).total_seconds(),
            "opened_alert_id": incident.id,
            "link": incident.details.get("link"),
        },
    )


def _duration(length: dt.timedelta) -> str:
    """``2 d 3 h 5 min``, ``45 min``."""
    minutes = max(int(length.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)
