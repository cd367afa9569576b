"""A demo data set: a week of serving three models, with incidents worth finding, analysed and
explained the way a real deployment would be.

Everything goes through the same pipeline as real traffic (validation, idempotent insert,
rollups); the week ends at the current minute, so the read API's default windows show it.
`build_demo` stores the traffic (see `observe.demo.traffic` for the models and their
incidents), OpenTelemetry spans of traced requests, a training reference per model version,
real torch profiler traces of fraud-scorer v6 and v7, then runs the analysis `observe serve`
runs every hour (latency regressions, SLO breaches, drift) and diagnoses each regression.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from observe.config import Settings
from observe.db.engine import Database
from observe.demo.profiles import record_demo_profiles
from observe.demo.references import store_training_references
from observe.demo.traffic import (
    CPU_HOSTS,
    DEMO_MODELS,
    GPU_HOSTS,
    SLOS,
    Timeline,
    all_items,
)
from observe.pipeline.analysis import analyze_models
from observe.pipeline.diagnosis import Windows, run_diagnosis
from observe.pipeline.ingest import IngestCounts
from observe.pipeline.writer import BatchKind, ImmediateWriter
from observe.storage import findings as finding_store
from observe.storage import models as model_store
from observe.storage import signals as signal_store

#: A regression is diagnosed over this long after its onset, against as long before.
DIAGNOSIS_WINDOW = dt.timedelta(hours=1)


@dataclass
class DemoReport:
    counts: dict[str, IngestCounts] = field(default_factory=dict)
    skipped: bool = False
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    num_references: int = 0
    num_profiles: int = 0
    incidents: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.skipped:
            return "Demo data is already loaded (use --fresh to rebuild it)."
        lines = [f"Demo data {self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC:"]
        for name, counts in self.counts.items():
            lines.append(f"  {name:<10} {counts.new:>9,} stored")
        lines.append(f"  references {self.num_references:>9,} training sets")
        profiles = (
            f"{self.num_profiles:>9,} traces" if self.num_profiles else "        - (no torch)"
        )
        lines.append(f"  profiles   {profiles}")
        lines.append("Found by the analysis:" if self.incidents else "The analysis found nothing.")
        lines += [f"  - {line}" for line in self.incidents]
        return "\n".join(lines)


def build_demo(
    db: Database,
    *,
    settings: Settings,
    days: int = 7,
    seed: int = 7,
    fresh: bool = False,
    now: dt.datetime | None = None,
    log: Callable[[str], object] = print,
) -> DemoReport:
    """Generate, store and analyse the demo data set; skip if it is already there (unless
    `fresh`, which deletes the demo's models first)."""
    with db.write_sessions.begin() as session:
        existing = {m.name for m in model_store.list_models(session)} & set(DEMO_MODELS)
        if existing and not fresh:
            return DemoReport(skipped=True)
        if existing:
            model_store.delete_models(session, DEMO_MODELS, hosts=GPU_HOSTS + CPU_HOSTS)
    end = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    timeline = Timeline(end - dt.timedelta(days=days), end)
    rng = np.random.default_rng(seed)
    report = DemoReport(start=timeline.start, end=end)
    _store_traffic(db, timeline, rng, settings, report, log)
    report.num_references = len(
        store_training_references(db, rng=rng, now=end, max_rows=settings.reference_max_rows)
    )
    log("  recording profiler traces of fraud-scorer v6 and v7 ...")
    report.num_profiles = len(
        record_demo_profiles(db, captured_at=timeline.at(2) + dt.timedelta(hours=13))
    )
    log("  analysing the week ...")
    analyze_models(db, now=end, settings=settings, models=list(DEMO_MODELS))
    report.incidents = describe_findings(db, settings, since=timeline.start)
    return report


def _store_traffic(
    db: Database,
    timeline: Timeline,
    rng: np.random.Generator,
    settings: Settings,
    report: DemoReport,
    log: Callable[[str], object],
) -> None:
    writer = ImmediateWriter(db.write_sessions, rollup_tags=settings.rollup_tags)
    for kind, items in all_items(timeline, rng):
        counts = writer.submit(kind, items).result()
        report.counts[kind.value] = report.counts.get(kind.value, IngestCounts(0, 0, 0)) + counts
        if kind is BatchKind.RECORDS:
            log(f"  stored {report.counts[kind.value].new:,} records ...")
    with db.write_sessions.begin() as session:
        for model, (percentile, latency_ms, error_rate) in SLOS.items():
            model_store.set_slo(
                session,
                model,
                latency_percentile=percentile,
                latency_ms=latency_ms,
                error_rate_pct=error_rate,
                now=timeline.end,
            )


def describe_findings(db: Database, settings: Settings, *, since: dt.datetime) -> list[str]:
    """One line per finding that is not `ok` and per incident event; regressions and incidents
    with the top cause of their diagnosis."""
    with db.sessions() as session:
        findings = finding_store.load_findings(session, start=since, limit=200)
        incidents = signal_store.load_events(session, start=since, kinds=["incident"])
    lines = []
    for finding in sorted(findings, key=lambda f: (f.model, f.window_start)):
        if finding.status == "ok":
            continue
        line = f"{finding.model}: {finding.summary}"
        if finding.kind == "latency_regression":
            onset = dt.datetime.fromisoformat((finding.details or {})["onset_at"])
            line += "\n      " + _top_cause(db, settings, finding.model, onset)
        lines.append(line)
    for event in incidents:
        line = f"{event.model}: incident reported at {event.timestamp:%Y-%m-%d %H:%M} UTC"
        line += f" ({event.description})" if event.description else ""
        lines.append(line + "\n      " + _top_cause(db, settings, event.model, event.timestamp))
    return lines


def _top_cause(db: Database, settings: Settings, model: str, onset: dt.datetime) -> str:
    windows = Windows.resolve(onset, onset + DIAGNOSIS_WINDOW)
    with db.sessions() as session:
        diagnosis = run_diagnosis(
            session, model=model, windows=windows, rollup_tags=settings.rollup_tags
        )
    if not diagnosis.causes:
        return "diagnosis: nothing stands out"
    cause = diagnosis.causes[0]
    scope = ", ".join(f"{k}={v}" for k, v in cause.scope.items())
    return f"top cause: {cause.kind} ({scope}) -> {cause.action}"
