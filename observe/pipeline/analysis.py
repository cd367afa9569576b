"""The scheduled analysis run: every active model, every analysis, once per interval.

`observe serve` checks every minute whether the current slot (a stretch of
`analysis_interval_seconds` counted from the Unix epoch) has run. The first process to claim
the slot in the database runs it; every other process, on this server or another one on the
same database, sees the claim and skips it. The run analyses each model with traffic in the
last day with every registered analysis, upserts the findings it reports and resolves the open
findings of each (kind, model) that it no longer reports. One model's failing analysis is
logged and the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import drift, latency_analysis
from observe.schemas.findings import FindingIn
from observe.storage import findings as finding_store
from observe.storage import jobs as job_store
from observe.storage import models as model_store

log = logging.getLogger(__name__)

JOB_NAME = "analysis"
#: Models with a record this recent are analysed.
ACTIVE_WINDOW = dt.timedelta(days=1)
#: How often each process checks whether the current slot has run.
CHECK_INTERVAL_SECONDS = 60.0


class AnalysisFunction(Protocol):
    def __call__(
        self, db: Database, model: str, *, now: dt.datetime, settings: Settings
    ) -> list[FindingIn]: ...


@dataclass(frozen=True)
class Analysis:
    """An analysis and the finding kinds it owns: the open findings of those kinds that a run
    no longer reports are resolved."""

    name: str
    kinds: tuple[str, ...]
    run: AnalysisFunction


#: Every analysis the scheduled run does.
ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        "latency",
        (latency_analysis.REGRESSION_KIND, latency_analysis.SLO_KIND),
        latency_analysis.findings_for_model,
    ),
    Analysis("drift", ("drift",), drift.findings_for_model),
)


@dataclass
class RunSummary:
    """What one run did: the slot, the models analysed, findings stored and resolved."""

    slot_start: dt.datetime
    ran: bool
    models: list[str] = field(default_factory=list)
    num_findings: int = 0
    num_resolved: int = 0
    failures: list[str] = field(default_factory=list)


def run_scheduled_analysis(
    db: Database,
    *,
    now: dt.datetime,
    settings: Settings,
    analyses: Sequence[Analysis] | None = None,
    owner: str | None = None,
    after: Callable[[dt.datetime], object] | None = None,
) -> RunSummary:
    """Run the analysis for the slot `now` falls in, unless another process claimed it.

    Args:
        analyses: what to run; None for every registered analysis (`ANALYSES`).
        owner: who claims the slot, for the record; default host:pid.
        after: called with `now` once the run is done (the alerts); its failure is logged and
            never fails the run.
    """
    slot = job_store.slot_start(now, settings.analysis_interval_seconds)
    with db.write_sessions.begin() as session:
        claimed = job_store.claim_job_slot(
            session, JOB_NAME, slot, now=now, owner=owner or process_name()
        )
    if not claimed:
        return RunSummary(slot, ran=False)
    summary = analyze_models(db, now=now, settings=settings, analyses=analyses)
    summary.slot_start = slot
    with db.write_sessions.begin() as session:
        job_store.finish_job_slot(session, JOB_NAME, slot, now=dt.datetime.now(dt.UTC))
    log.info(
        "analysis of %d models: %d findings, %d resolved, %d failed",
        len(summary.models),
        summary.num_findings,
        summary.num_resolved,
        len(summary.failures),
    )
    if after is not None:
        try:
            after(now)
        except Exception:
            log.exception("after the analysis of slot %s", slot)
    return summary


def analyze_models(
    db: Database,
    *,
    now: dt.datetime,
    settings: Settings,
    analyses: Sequence[Analysis] | None = None,
    models: Sequence[str] | None = None,
) -> RunSummary:
    """Analyse `models` (default: every model with traffic in the last day) and store the
    findings, with no claim: what the scheduled run does once it holds the slot."""
    if models is None:
        with db.sessions() as session:
            models = model_store.list_active_models(session, since=now - ACTIVE_WINDOW)
    summary = RunSummary(now, ran=True, models=list(models))
    for model in models:
        for analysis in ANALYSES if analyses is None else analyses:
            try:
                stored, resolved = _analyze(db, model, analysis, now=now, settings=settings)
            except Exception:
                log.exception("%s analysis of model %s failed", analysis.name, model)
                summary.failures.append(f"{analysis.name}:{model}")
                continue
            summary.num_findings += stored
            summary.num_resolved += resolved
    return summary


def _analyze(
    db: Database, model: str, analysis: Analysis, *, now: dt.datetime, settings: Settings
) -> tuple[int, int]:
    findings = analysis.run(db, model, now=now, settings=settings)
    with db.write_sessions.begin() as session:
        finding_store.upsert_findings(session, findings, now=now)
        resolved = sum(
            finding_store.resolve_findings(
                session,
                kind=kind,
                model=model,
                keep_keys=[f.dedupe_key for f in findings if f.kind == kind],
                now=now,
            )
            for kind in analysis.kinds
        )
    return len(findings), resolved


def process_name() -> str:
    """host:pid, recorded with a claim so an operator can tell who ran a slot."""
    return f"{socket.gethostname()}:{os.getpid()}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def analysis_job(
    db: Database,
    settings: Settings,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    after: Callable[[dt.datetime], object] | None = None,
) -> Callable[[], RunSummary]:
    """The scheduler's callable: run the current slot if nobody has, then `after` (the
    alerts) when it ran."""

    def run() -> RunSummary:
        now = clock() if clock else utc_now()
        return run_scheduled_analysis(db, now=now, settings=settings, after=after)

    return run
