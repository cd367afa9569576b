"""observe.pipeline.diagnosis on both databases: inputs loaded from rollups, events and metrics
match what was stored, and the diagnosis finds the injected cause (or none)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from observe.db.engine import Database
from observe.pipeline.diagnosis import Windows, load_inputs, run_diagnosis
from observe.pipeline.writer import BatchKind, ImmediateWriter
from observe.schemas.records import EventIn, InferenceRecordIn, MetricSampleIn
from tests.factories import T0, trace_spans

HOSTS = ("gpu-1", "gpu-2", "gpu-3", "gpu-4")
WINDOW = Windows.resolve(T0, T0 + dt.timedelta(hours=1))
TAGS = ("host",)


def serve(
    db: Database,
    *,
    seed: int = 0,
    canary_share: float = 0.0,
    canary_slowdown: float = 1.0,
    slow_host: str | None = None,
    lookup_ms: tuple[float, float] | None = None,
    amount_shift: float = 1.0,
    link_traces: bool = True,
) -> None:
    """Two hours of fraud-scorer traffic (baseline hour, window hour) with GPU metrics; with
    `lookup_ms` (baseline, window), every tenth request is traced with a feature store lookup
    that takes that long, and every request waits for it; the window's `amount` feature is
    `amount_shift` times the baseline's."""
    rng = np.random.default_rng(seed)
    records, spans = [], []
    for i in range(4800):
        minute = i / 40.0
        in_window = minute >= 60
        host = str(rng.choice(HOSTS))
        version = "v7" if in_window and rng.random() < canary_share else "v6"
        latency = 20.0 * rng.lognormal(0, 0.2)
        latency *= canary_slowdown if version == "v7" else 1.0
        latency *= 3.0 if in_window and host == slow_host else 1.0
        at = T0 - dt.timedelta(hours=1) + dt.timedelta(minutes=minute)
        trace_id = None
        if lookup_ms is not None:
            lookup = lookup_ms[1 if in_window else 0] * rng.lognormal(0, 0.1)
            latency += lookup
            if i % 10 == 0:
                trace = trace_spans(
                    i, start=at, model=None, child_ms=(("feature_store.get", lookup),)
                )
                spans += trace
                trace_id = trace[0].trace_id if link_traces else None
        records.append(
            InferenceRecordIn(
                model="fraud-scorer",
                model_version=version,
                timestamp=T0 - dt.timedelta(hours=1) + dt.timedelta(minutes=minute),
                request_id=f"r{i}",
                latency_ms=round(latency, 3),
                input_size=float(rng.integers(50, 150)),
                tags={"host": host},
                trace_id=trace_id,
                features={
                    "amount": round(rng.lognormal(3, 0.5) * (amount_shift if in_window else 1), 2),
                    "country": str(rng.choice(["DE", "FR", "US"])),
                },
            )
        )
    writer = ImmediateWriter(db.write_sessions, rollup_tags=TAGS)
    writer.submit(BatchKind.RECORDS, records).result()
    writer.submit(BatchKind.METRICS, _metrics(slow_host)).result()
    if spans:
        writer.submit(BatchKind.SPANS, spans).result()
    if canary_share:
        event = EventIn(
            timestamp=T0 + dt.timedelta(minutes=-1),
            model="fraud-scorer",
            kind="canary",
            model_version="v7",
            traffic_pct=100 * canary_share,
        )
        writer.submit(BatchKind.EVENTS, [event]).result()


def _metrics(hot_host: str | None) -> list[MetricSampleIn]:
    samples = []
    for minute in range(0, 120, 2):
        at = T0 - dt.timedelta(hours=1) + dt.timedelta(minutes=minute)
        for host in HOSTS:
            hot = host == hot_host and minute >= 60
            values = {
                "gpu_utilization_pct": 55.0,
                "gpu_temperature_c": 92.0 if hot else 63.0,
                "gpu_sm_clock_mhz": 1100.0 if hot else 1980.0,
            }
            samples += [
                MetricSampleIn(timestamp=at, host=host, resource="gpu0", name=name, value=value)
                for name, value in values.items()
            ]
    return samples


def diagnose(db: Database) -> Any:
    with db.sessions() as session:
        return run_diagnosis(session, model="fraud-scorer", windows=WINDOW, rollup_tags=TAGS)


def test_inputs_hold_what_was_stored(db: Database) -> None:
    serve(db, canary_share=0.25)

    with db.sessions() as session:
        inputs = load_inputs(session, model="fraud-scorer", windows=WINDOW, rollup_tags=TAGS)

    assert inputs.overall.baseline.num_requests == 2400
    assert inputs.overall.window.num_requests == 2400
    versions = inputs.slices["model_version"]
    assert set(versions) == {"v6", "v7"}
    assert versions["v7"].baseline.num_requests == 0
    assert 450 < versions["v7"].window.num_requests < 750
    # Host slices leave the new version out, so only v6 traffic is counted there.
    assert sum(c.window.num_requests for c in inputs.slices["host"].values()) == (
        versions["v6"].window.num_requests
    )
    assert inputs.overall.window.mean_input_size == pytest.approx(100, rel=0.05)
    assert list(inputs.events["kind"]) == ["canary"]
    assert set(inputs.metrics["period"]) == {"baseline", "window"}
    assert len(inputs.minute_series) == 120


def test_a_quiet_window_has_no_causes(db: Database) -> None:
    serve(db)

    diagnosis = diagnose(db)

    assert diagnosis.causes == ()
    assert not diagnosis.symptom.is_regression


def test_a_slow_canary_is_the_top_cause(db: Database) -> None:
    serve(db, canary_share=0.25, canary_slowdown=3.0)

    diagnosis = diagnose(db)

    top = diagnosis.causes[0]
    assert (top.kind, top.scope) == ("deploy", {"model_version": "v7"})
    assert "v6" in top.action


def test_a_hot_host_is_the_top_cause(db: Database) -> None:
    serve(db, slow_host="gpu-3")

    diagnosis = diagnose(db)

    top = diagnosis.causes[0]
    assert (top.kind, top.scope) == ("host_degradation", {"host": "gpu-3"})
    assert "also" in top.evidence  # the latency slice and the host's metrics agree


def test_the_baseline_must_end_before_the_window() -> None:
    with pytest.raises(ValueError, match="before the window"):
        Windows.resolve(T0, T0 + dt.timedelta(hours=1), T0, T0 + dt.timedelta(minutes=30))


def test_profiler_traces_of_both_versions_name_the_operator(db: Database) -> None:
    from pathlib import Path

    from observe.pipeline.profiles import import_profile_file
    from observe.schemas.profiles import ProfileMeta

    data = Path(__file__).resolve().parents[2] / "data"
    serve(db, canary_share=0.25, canary_slowdown=3.0)
    for version, name in (("v6", "profile_v1.json.gz"), ("v7", "profile_v2.json.gz")):
        meta = ProfileMeta(model="fraud-scorer", model_version=version, host="gpu-1")
        import_profile_file(db.write_sessions, data / name, meta, now=T0)

    diagnosis = diagnose(db)

    operators = next(s for s in diagnosis.steps if s.check == "operators")
    assert operators.status == "fail"
    assert operators.evidence["operators"][0]["name"] == "aten::addmm"
    top, second = diagnosis.causes[:2]
    assert (top.kind, top.scope) == (
        "model_operator",
        {"operator": "aten::addmm", "model_version": "v7"},
    )
    assert (second.kind, second.scope) == ("deploy", {"model_version": "v7"})


def test_a_slower_feature_store_is_the_top_cause(db: Database) -> None:
    serve(db, lookup_ms=(4.0, 30.0))

    diagnosis = diagnose(db)

    dependencies = next(s for s in diagnosis.steps if s.check == "dependencies")
    assert dependencies.status == "fail"
    top = diagnosis.causes[0]
    assert (top.kind, top.scope) == ("dependency_latency", {"span": "feature_store.get"})


def test_the_onset_is_when_the_canary_started(db: Database) -> None:
    serve(db, canary_share=0.5, canary_slowdown=3.0)

    with db.sessions() as session:
        inputs = load_inputs(session, model="fraud-scorer", windows=WINDOW, rollup_tags=TAGS)

    assert inputs.onset_at is not None
    assert abs((inputs.onset_at - T0).total_seconds()) <= 120


def test_a_drifted_feature_is_a_data_cause(db: Database) -> None:
    serve(db, amount_shift=3.0)

    diagnosis = diagnose(db)

    drift = next(s for s in diagnosis.steps if s.check == "feature_drift")
    assert drift.status == "fail"
    assert [(c.kind, c.scope) for c in diagnosis.causes] == [("data_drift", {"feature": "amount"})]


def test_unchanged_features_do_not_drift(db: Database) -> None:
    serve(db, seed=3)

    diagnosis = diagnose(db)

    drift = next(s for s in diagnosis.steps if s.check == "feature_drift")
    assert drift.status == "pass"
    assert {f["feature"] for f in drift.evidence["features"]} == {"amount", "country"}


def test_features_are_sampled_uniformly_by_id(db: Database) -> None:
    from observe.storage import feature_profiles as feature_store

    serve(db)

    with db.sessions() as session:
        every_fourth = feature_store.load_window_features(
            session, model="fraud-scorer", start=WINDOW.start, end=WINDOW.end, sample_every=4
        )
        everything = feature_store.load_window_features(
            session, model="fraud-scorer", start=WINDOW.start, end=WINDOW.end
        )

    assert len(everything) == 2400
    assert len(every_fourth) == 600
    minutes = (every_fourth["timestamp"] - WINDOW.start).dt.total_seconds() // 600
    assert minutes.value_counts().min() >= 90  # spread over the hour, not its end


def test_skew_against_the_training_reference_is_checked(db: Database) -> None:
    import pandas as pd

    from observe.pipeline.references import store_reference

    rng = np.random.default_rng(11)
    training = pd.DataFrame(
        {
            "amount": np.round(rng.lognormal(3, 0.5, 3000), 2),
            "country": rng.choice(["DE", "FR", "US"], 3000),
        }
    )
    store_reference(
        db,
        training,
        model="fraud-scorer",
        model_version="v6",
        name="train",
        source=None,
        max_rows=10_000,
        now=T0,
    )
    serve(db, amount_shift=3.0)

    diagnosis = diagnose(db)

    skew = next(s for s in diagnosis.steps if s.check == "skew")
    assert skew.status == "fail"
    assert skew.evidence["reference"] == "train"
    assert "amount (distribution)" in skew.summary
    top = diagnosis.causes[0]
    assert (top.kind, top.scope) == ("data_drift", {"feature": "amount"})
    assert "also" in top.evidence  # drift against the baseline and skew against training


def test_spans_of_a_service_named_like_the_model_count_without_links(db: Database) -> None:
    serve(db, lookup_ms=(4.0, 30.0), link_traces=False)

    diagnosis = diagnose(db)

    top = diagnosis.causes[0]
    assert (top.kind, top.scope) == ("dependency_latency", {"span": "feature_store.get"})
