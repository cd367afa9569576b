"""Span ingest on both databases: idempotency, trace summaries, linking traces to models (by
span attributes and by inference records, in either order), rollups and the reads over them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from analyzers.histograms import Histogram
from observe.db.engine import Database
from observe.db.models import Span, SpanRollup, Trace
from observe.pipeline import ingest
from observe.pipeline import traces as trace_reads
from observe.pipeline.writer import BatchKind, BatchWriter
from observe.schemas.spans import SpanIn
from tests.factories import T0, record_in, span_in, trace_spans

MODEL = "fraud-scorer"
NOW = T0 + dt.timedelta(hours=1)


def store(db: Database, spans: Sequence[SpanIn]) -> ingest.IngestCounts:
    with db.write_sessions.begin() as session:
        return ingest.store_spans(session, spans, now=NOW)


def store_records(db: Database, *records: object) -> None:
    with db.write_sessions.begin() as session:
        ingest.store_records(session, records, rollup_tags=(), now=NOW)  # type: ignore[arg-type]


def count(db: Database, table: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def trace_row(db: Database, trace_id: str) -> Trace:
    with db.sessions() as session:
        row = session.scalar(select(Trace).where(Trace.trace_id == trace_id))
        assert row is not None
        return row


def span_models(db: Database, trace_id: str) -> dict[str, str | None]:
    with db.sessions() as session:
        rows = session.execute(select(Span.name, Span.model).where(Span.trace_id == trace_id))
        return dict(rows.all())


def rollup_counts(db: Database, dim_key: str) -> dict[tuple[str, str], int]:
    """Spans counted per (dim_value, span name) across all minutes."""
    with db.sessions() as session:
        query = (
            select(SpanRollup.dim_value, SpanRollup.name, func.sum(SpanRollup.num_spans))
            .where(SpanRollup.dim_key == dim_key)
            .group_by(SpanRollup.dim_value, SpanRollup.name)
        )
        return {(value, name): int(total) for value, name, total in session.execute(query)}


def test_a_span_sent_again_is_stored_once_and_counted_once(db: Database) -> None:
    spans = trace_spans(0)

    first = store(db, spans)
    again = store(db, [*spans, spans[0]])

    assert (first.new, first.duplicates) == (3, 0)
    assert (again.accepted, again.new, again.duplicates) == (4, 0, 4)
    assert count(db, Span) == 3
    assert trace_row(db, spans[0].trace_id).num_spans == 3
    assert rollup_counts(db, "model") == {
        (MODEL, "predict"): 1,
        (MODEL, "feature_store.lookup"): 1,
        (MODEL, "forward"): 1,
    }
    assert rollup_counts(db, "service") == rollup_counts(db, "model")


def test_children_arriving_before_their_root_get_its_model_and_the_trace_its_root(
    db: Database,
) -> None:
    root, *children = trace_spans(0, child_ms=(("feature_store.lookup", 4.0), ("forward", 9.0)))

    store(db, children)
    before = trace_row(db, root.trace_id)
    store(db, [root])
    after = trace_row(db, root.trace_id)

    assert before.model is None
    assert before.root_name == "feature_store.lookup"  # the earliest span while the root is out
    assert before.root_span_id is None
    assert span_models(db, root.trace_id) == dict.fromkeys(
        ["predict", "feature_store.lookup", "forward"], MODEL
    )
    assert (after.model, after.root_name, after.root_span_id) == (MODEL, "predict", root.span_id)
    assert (after.start_at, after.end_at) == (root.start_at, root.end_at)
    assert after.duration_ms == pytest.approx(14.0)
    assert after.num_spans == 3
    assert rollup_counts(db, "model")[(MODEL, "forward")] == 1


def test_a_record_stored_before_the_spans_gives_them_its_model(db: Database) -> None:
    spans = trace_spans(0, model=None)
    store_records(db, record_in(trace_id=spans[0].trace_id, model="ranker"))

    store(db, spans)

    assert set(span_models(db, spans[0].trace_id).values()) == {"ranker"}
    row = trace_row(db, spans[0].trace_id)
    assert (row.model, row.num_spans, row.root_name) == ("ranker", 3, "predict")
    assert rollup_counts(db, "model") == {
        ("ranker", "predict"): 1,
        ("ranker", "feature_store.lookup"): 1,
        ("ranker", "forward"): 1,
    }


def test_a_record_stored_after_the_spans_links_them_to_its_model(db: Database) -> None:
    spans = trace_spans(0, model=None)
    store(db, spans)
    assert rollup_counts(db, "model") == {}

    store_records(db, record_in(trace_id=spans[0].trace_id.upper(), model="ranker"))
    store_records(db, record_in(trace_id=spans[0].trace_id, model="ranker", request_id="req-1"))

    assert set(span_models(db, spans[0].trace_id).values()) == {"ranker"}
    assert trace_row(db, spans[0].trace_id).model == "ranker"
    assert rollup_counts(db, "model") == {
        ("ranker", "predict"): 1,
        ("ranker", "feature_store.lookup"): 1,
        ("ranker", "forward"): 1,
    }


def test_a_span_naming_its_own_model_keeps_it(db: Database) -> None:
    root, lookup, forward = trace_spans(0)
    own = span_in(
        model="embedder",
        trace_id=root.trace_id,
        span_id="00000000000000ee",
        parent_span_id=root.span_id,
        name="embed",
    )

    store(db, [root, lookup, forward, own])

    assert span_models(db, root.trace_id)["embed"] == "embedder"
    assert span_models(db, root.trace_id)["forward"] == MODEL


def test_records_of_traces_never_sent_leave_no_visible_trace(db: Database) -> None:
    store_records(db, record_in(trace_id="ab" * 16))

    with db.sessions() as session:
        found = trace_reads.list_slowest_traces(
            session, model=MODEL, start=T0 - dt.timedelta(hours=1), end=NOW
        )
    assert found == []


def test_slowest_traces_come_longest_first_filtered_by_model_service_and_errors(
    db: Database,
) -> None:
    durations = [30.0, 80.0, 10.0, 55.0]
    for number, forward_ms in enumerate(durations):
        store(
            db,
            trace_spans(
                number,
                start=T0 + dt.timedelta(seconds=number),
                child_ms=(("forward", forward_ms),),
                error=number == 2,
            ),
        )
    store(db, trace_spans(9, model="other", service_name="gateway", child_ms=(("x", 500.0),)))
    window = {"start": T0, "end": T0 + dt.timedelta(minutes=1)}

    with db.sessions() as session:
        slowest = trace_reads.list_slowest_traces(session, model=MODEL, limit=3, **window)
        errors = trace_reads.list_slowest_traces(session, model=MODEL, has_error=True, **window)
        gateway = trace_reads.list_slowest_traces(session, service_name="gateway", **window)
        later = trace_reads.list_slowest_traces(
            session, model=MODEL, start=T0 + dt.timedelta(seconds=2), end=NOW
        )

    assert [t["duration_ms"] for t in slowest] == pytest.approx([81.0, 56.0, 31.0])
    assert [(t["root_name"], t["num_spans"], t["num_errors"]) for t in slowest] == [
        ("predict", 2, 0)
    ] * 3
    assert [t["duration_ms"] for t in errors] == pytest.approx([11.0])
    assert [t["model"] for t in gateway] == ["other"]
    assert len(later) == 2


def test_load_trace_returns_the_tree_and_the_linked_records(db: Database) -> None:
    root, lookup, forward = trace_spans(0)
    store(db, [forward, lookup, root])
    store_records(db, record_in(trace_id=root.trace_id))

    with db.sessions() as session:
        view = trace_reads.load_trace(session, root.trace_id)
        missing = trace_reads.load_trace(session, "cd" * 16)

    assert missing is None
    assert view is not None
    assert (view.model, view.root_name, view.num_spans, view.num_errors) == (
        MODEL,
        "predict",
        3,
        0,
    )
    assert [(s["name"], s["depth"]) for s in view.spans] == [
        ("predict", 0),
        ("feature_store.lookup", 1),
        ("forward", 1),
    ]
    assert [s["offset_ms"] for s in view.spans] == pytest.approx([0.0, 0.5, 4.5])
    assert view.spans[0]["children"] == [lookup.span_id, forward.span_id]
    assert view.duration_ms == pytest.approx(14.0)
    assert [r["request_id"] for r in view.records] == ["req-0"]


def lookup_traces(start: dt.datetime, lookup_ms: Sequence[float], first: int) -> list[SpanIn]:
    """One trace per lookup duration, a second apart, with a constant 10 ms forward."""
    spans = []
    for offset, ms in enumerate(lookup_ms):
        spans += trace_spans(
            first + offset,
            start=start + dt.timedelta(seconds=offset),
            child_ms=(("feature_store.lookup", ms), ("forward", 10.0)),
        )
    return spans


def test_compare_span_durations_finds_the_span_that_grew(db: Database) -> None:
    rng = np.random.default_rng(3)
    baseline_ms = np.round(rng.gamma(4.0, 1.0, 120) + 1, 3)
    current_ms = np.round(rng.gamma(4.0, 1.0, 120) * 8 + 1, 3)
    store(db, lookup_traces(T0, baseline_ms, 0))
    later = T0 + dt.timedelta(hours=1)
    store(db, lookup_traces(later, current_ms, 1000))

    with db.sessions() as session:
        compared = trace_reads.compare_span_durations(
            session,
            model=MODEL,
            baseline_start=T0,
            baseline_end=T0 + dt.timedelta(minutes=5),
            start=later,
            end=later + dt.timedelta(minutes=5),
        )

    # The lookup grew, and with it the root span around it; forward stayed as it was.
    assert set(compared["name"][:2]) == {"predict", "feature_store.lookup"}
    assert compared["name"].iloc[2] == "forward"
    lookup = compared.set_index("name").loc["feature_store.lookup"]
    assert lookup["baseline_num_spans"] == lookup["current_num_spans"] == 120
    for window, values in (("baseline", baseline_ms), ("current", current_ms)):
        assert lookup[f"{window}_mean_ms"] == pytest.approx(values.mean())
        for percentile in (50, 95):
            expected = np.quantile(values, percentile / 100, method="lower")
            assert lookup[f"{window}_p{percentile}_ms"] == pytest.approx(expected, rel=0.01)
    forward = compared.set_index("name").loc["forward"]
    assert forward["p95_change_ms"] == pytest.approx(0.0, abs=0.2)


def test_span_latency_series_reads_percentiles_per_name_and_bucket(db: Database) -> None:
    lookup_ms = np.arange(1.0, 121.0)  # two minutes of one trace a second
    store(db, lookup_traces(T0, lookup_ms, 0))

    with db.sessions() as session:
        series = trace_reads.span_latency_series(
            session,
            model=MODEL,
            names=["feature_store.lookup"],
            start=T0,
            end=T0 + dt.timedelta(minutes=2),
            percentiles=[50, 99],
        )
        by_service = trace_reads.span_latency_series(
            session, service_name=MODEL, start=T0, end=T0 + dt.timedelta(minutes=2)
        )

    frame = series.frame
    assert list(frame["series"]) == ["feature_store.lookup"] * 2
    assert list(frame["num_spans"]) == [60, 60]
    for minute, values in enumerate((lookup_ms[:60], lookup_ms[60:])):
        expected = np.quantile(values, 0.5, method="lower")
        assert frame["p50"].iloc[minute] == pytest.approx(expected, rel=0.01)
    assert sorted(set(by_service.frame["series"])) == ["feature_store.lookup", "forward", "predict"]


@pytest.mark.parametrize("num_threads", [2])
def test_concurrent_batches_of_the_same_traces_add_up(db: Database, num_threads: int) -> None:
    """Batches split across writer threads, each holding parts of the same traces, leave every
    summary and rollup counting each span exactly once."""
    spans = [s for number in range(40) for s in trace_spans(number, model=None)]
    store_records(db, *(record_in(trace_id=s.trace_id, request_id=s.trace_id) for s in spans[::3]))
    writer = BatchWriter(db.write_sessions, rollup_tags=(), num_threads=num_threads)
    writer.start()
    try:
        futures = [writer.submit(BatchKind.SPANS, spans[i::7]) for i in range(7)]
        futures += [writer.submit(BatchKind.SPANS, spans[i::5]) for i in range(5)]
        new = sum(future.result(timeout=60).new for future in futures)
    finally:
        writer.stop()

    assert new == len(spans) == count(db, Span)
    with db.sessions() as session:
        rows = session.scalars(select(Trace)).all()
        blobs = session.scalars(select(SpanRollup.histogram)).all()
    histograms = [Histogram.from_bytes(blob) for blob in blobs]
    assert {row.num_spans for row in rows} == {3}
    assert {row.model for row in rows} == {MODEL}
    assert sum(rollup_counts(db, "model").values()) == len(spans)
    assert sum(rollup_counts(db, "service").values()) == len(spans)
    assert sum(h.total for h in histograms) == 2 * len(spans)


def test_a_trace_created_by_a_concurrent_batch_still_links_its_spans(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch B names the model while batch A, which created the trace without one, was not
    yet visible to B's first look: B merges into A's row and links A's spans too."""
    from observe.pipeline import spans as span_pipeline

    root, *children = trace_spans(0)
    store(db, children)  # batch A: no model known
    real_lock = span_pipeline.trace_store.lock_traces
    calls = []

    def lock_unseen_first(session: Any, trace_ids: Any) -> Any:
        calls.append(list(trace_ids))
        return {} if len(calls) == 1 else real_lock(session, trace_ids)

    monkeypatch.setattr(span_pipeline.trace_store, "lock_traces", lock_unseen_first)
    store(db, [root])  # batch B

    assert calls == [[root.trace_id], [root.trace_id]]  # looked, then merged into the raced row
    assert set(span_models(db, root.trace_id).values()) == {MODEL}
    assert trace_row(db, root.trace_id).num_spans == 3
    assert sum(rollup_counts(db, "model").values()) == 3


def test_span_duration_periods_is_the_diagnosis_input(db: Database) -> None:
    store(db, lookup_traces(T0, [2.0, 4.0, 6.0], 0))
    later = T0 + dt.timedelta(hours=1)
    store(db, lookup_traces(later, [40.0, 60.0], 100))

    with db.sessions() as session:
        periods = trace_reads.span_duration_periods(
            session,
            model=MODEL,
            baseline_start=T0,
            baseline_end=T0 + dt.timedelta(minutes=5),
            start=later,
            end=later + dt.timedelta(minutes=5),
        )
        nothing = trace_reads.span_duration_periods(
            session, model="other", baseline_start=T0, baseline_end=later, start=later, end=NOW
        )

    assert list(periods.columns) == list(trace_reads.PERIOD_COLUMNS)
    rows = periods.set_index(["period", "name"])
    assert rows.loc[("baseline", "feature_store.lookup"), "count"] == 3
    assert rows.loc[("window", "feature_store.lookup"), "mean_ms"] == pytest.approx(50.0)
    # p95 of two values is the lower one (the "lower" quantile every percentile here uses).
    assert rows.loc[("window", "feature_store.lookup"), "p95_ms"] == pytest.approx(40.0, rel=0.01)
    assert rows["is_root"].to_dict() == {
        (period, name): name == "predict"
        for period in ("baseline", "window")
        for name in ("feature_store.lookup", "forward", "predict")
    }
    assert set(rows.index[rows["is_dependency"]]) == {
        ("baseline", "feature_store.lookup"),
        ("window", "feature_store.lookup"),
    }
    assert rows.groupby("period")["num_traces"].first().to_dict() == {"baseline": 3, "window": 2}
    assert nothing.empty
    assert list(nothing.columns) == list(trace_reads.PERIOD_COLUMNS)
