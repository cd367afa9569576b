"""Root-cause diagnosis of a latency or error regression: the checklist of DESIGN 1 (isolate,
data, infra, model) as independent pure checks, and a ranker that combines their evidence.

    from analyzers.rootcause import diagnose
    diagnosis = diagnose(inputs)   # inputs: DiagnosisInputs, loaded by observe.pipeline
    diagnosis.causes[0].kind, diagnosis.causes[0].scope, diagnosis.causes[0].action
"""

from analyzers.rootcause.rank import CHECKS, Diagnosis, diagnose, rank_causes
from analyzers.rootcause.types import (
    CAUSE_KINDS,
    Cause,
    CheckResult,
    Comparison,
    DiagnosisInputs,
    SliceStats,
    Symptom,
)

__all__ = [
    "CAUSE_KINDS",
    "CHECKS",
    "Cause",
    "CheckResult",
    "Comparison",
    "Diagnosis",
    "DiagnosisInputs",
    "SliceStats",
    "Symptom",
    "diagnose",
    "rank_causes",
]
