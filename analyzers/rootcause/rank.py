"""The diagnosis: run every check of the checklist, then rank the causes they propose.

Causes proposed by several checks for the same kind and scope are one cause whose score is the
noisy-OR of the pieces (independent evidence adds up). A traffic surge explains the GPU
saturation it brings, so saturation ranks below a surge found in the same window. An operator
that profiler traces show slower in a new version refines that version's deploy cause: it
inherits the deploy's confidence and ranks just above it, as the more specific explanation.
A host that the latency isolates and whose GPUs are saturated, with no hardware fault found on
it, is slow because of the saturation: the isolation becomes evidence for that saturation.
Causes under `MIN_SCORE` are dropped: an empty list means nothing stands out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from analyzers.rootcause import data, infra, isolate, model
from analyzers.rootcause.scoring import noisy_or
from analyzers.rootcause.types import (
    SLOWDOWN_KINDS,
    Cause,
    CheckResult,
    DiagnosisInputs,
    Symptom,
)

Check = Callable[[DiagnosisInputs, Symptom], CheckResult]

#: The checklist in order: isolate, data, infra, model.
CHECKS: tuple[Check, ...] = (
    isolate.check_symptom,
    isolate.check_versions,
    isolate.check_hosts,
    isolate.check_segments,
    isolate.check_changes,
    isolate.check_traffic,
    isolate.check_errors,
    data.check_input_size,
    data.check_feature_drift,
    data.check_null_rates,
    data.check_skew,
    data.check_dependencies,
    infra.check_gpu_saturation,
    infra.check_host_health,
    model.check_version_latency,
    model.check_span_breakdown,
    model.check_operators,
)
MIN_SCORE = 0.3
MAX_CAUSES = 10
#: A surge at least this strong makes GPU saturation its consequence, not a cause of its own.
SURGE_EXPLAINS_SATURATION = 0.4
SATURATION_DISCOUNT = 0.7


@dataclass(frozen=True)
class Diagnosis:
    model: str
    window: tuple[dt.datetime, dt.datetime]
    baseline: tuple[dt.datetime, dt.datetime]
    symptom: Symptom
    steps: tuple[CheckResult, ...]
    causes: tuple[Cause, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window": {"start": self.window[0].isoformat(), "end": self.window[1].isoformat()},
            "baseline": {
                "start": self.baseline[0].isoformat(),
                "end": self.baseline[1].isoformat(),
            },
            "symptom": self.symptom.as_dict(),
            "steps": [step.as_dict() for step in self.steps],
            "causes": [cause.as_dict() for cause in self.causes],
        }


def diagnose(inputs: DiagnosisInputs, *, checks: Sequence[Check] = CHECKS) -> Diagnosis:
    """Walk the checklist over `inputs` and rank the causes found.

    Args:
        inputs: the model's data for the window and the baseline.
        checks: the checks to run, in checklist order.
    """
    symptom = isolate.describe_symptom(inputs)
    steps = tuple(check(inputs, symptom) for check in checks)
    proposed = [replace(cause, source=step.check) for step in steps for cause in step.causes]
    causes = rank_causes(proposed, symptom)
    return Diagnosis(inputs.model, inputs.window, inputs.baseline, symptom, steps, causes)


def rank_causes(causes: Sequence[Cause], symptom: Symptom) -> tuple[Cause, ...]:
    """Merge causes of the same kind and scope, weigh them against each other, drop the weak,
    and order by score."""
    merged = _merge_same(_explain_slow_hosts(causes))
    if not symptom.latency_regressed:
        merged = [c for c in merged if c.kind not in SLOWDOWN_KINDS]
    merged = _refine_deploys(_discount_consequences(merged))
    kept = [c for c in merged if c.score >= MIN_SCORE]
    kept.sort(key=lambda c: (-round(c.score, 6), _SPECIFICITY.get(c.kind, 0), c.kind))
    return tuple(kept[:MAX_CAUSES])


#: Among equal scores, the more specific explanation comes first.
_SPECIFICITY = {"model_operator": -1}


def _merge_same(causes: Sequence[Cause]) -> list[Cause]:
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[Cause]] = {}
    for cause in causes:
        groups.setdefault((cause.kind, tuple(sorted(cause.scope.items()))), []).append(cause)
    merged = []
    for pieces in groups.values():
        lead = max(pieces, key=lambda c: c.score)
        evidence = dict(lead.evidence)
        also = [c.summary for c in pieces if c is not lead and c.summary != lead.summary]
        if also:
            evidence["also"] = also
        score = noisy_or(c.score for c in pieces)
        merged.append(Cause(lead.kind, score, lead.scope, lead.summary, lead.action, evidence))
    return merged


def _explain_slow_hosts(causes: Sequence[Cause]) -> list[Cause]:
    """A slow host (from the latency slices) whose GPUs are saturated and whose hardware
    looks healthy: its slowness is evidence for the saturation, not a cause of its own."""
    saturated = {
        c.scope["host"]: c for c in causes if c.kind == "gpu_saturation" and "host" in c.scope
    }
    faulty = {
        c.scope.get("host") for c in causes if c.kind == "host_degradation" and c.source != "hosts"
    }
    explained = []
    for cause in causes:
        host = next(iter(cause.scope.values()), None)
        saturation = saturated.get(host or "")
        if cause.source == "hosts" and saturation is not None and host not in faulty:
            evidence = {**saturation.evidence, "isolated_by": cause.summary}
            cause = replace(saturation, score=cause.score, evidence=evidence, source="hosts")
        explained.append(cause)
    return explained


def _refine_deploys(causes: list[Cause]) -> list[Cause]:
    """The top operator cause of a version takes the score of that version's deploy cause."""
    deploys = {
        c.scope.get("model_version"): c.score
        for c in causes
        if c.kind == "deploy" and "model_version" in c.scope
    }
    refined, seen = [], set()
    for cause in sorted(causes, key=lambda c: -c.score):
        version = cause.scope.get("model_version")
        if cause.kind == "model_operator" and version in deploys and version not in seen:
            seen.add(version)
            score = max(cause.score, deploys[version])
            cause = Cause(
                cause.kind, score, cause.scope, cause.summary, cause.action, cause.evidence
            )
        refined.append(cause)
    return refined


def _discount_consequences(causes: list[Cause]) -> list[Cause]:
    surge = max((c.score for c in causes if c.kind == "traffic_surge"), default=0.0)
    if surge < SURGE_EXPLAINS_SATURATION:
        return causes
    return [
        Cause(
            c.kind,
            min(c.score * SATURATION_DISCOUNT, surge * 0.95),  # a consequence ranks below
            c.scope,
            c.summary,
            c.action,
            c.evidence,
        )
        if c.kind == "gpu_saturation"
        else c
        for c in causes
    ]
