"""The chrome-trace summarizer: known answers on hand-written traces, agreement with torch's own
`prof.key_averages()` on real torch 2.13 traces, and clear errors on bad files."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from collectors.profiler import (
    STEP_OPERATOR,
    TraceFormatError,
    TraceSummary,
    open_trace,
    summarize_trace,
)

DATA = Path(__file__).parents[2] / "data"
VERSIONS = ("v1", "v2")


def x(name: str, ts: float, dur: float, *, cat: str = "cpu_op", tid: int = 1, **args: Any) -> dict:
    event: dict[str, Any] = {"ph": "X", "cat": cat, "name": name, "pid": 7, "tid": tid}
    event.update(ts=ts, dur=dur)
    if args:
        event["args"] = args
    return event


def summarize(document: Any) -> TraceSummary:
    return summarize_trace(io.BytesIO(json.dumps(document).encode()))


def summarize_file(path: Path) -> TraceSummary:
    with path.open("rb") as handle:
        return summarize_trace(open_trace(handle))


def by_name(summary: TraceSummary) -> dict[str, Any]:
    return {op.name: op for op in summary.operators}


#: Thread 1: outer [0, 100) holds a [10, 40) (which holds b [15, 25)) and b [50, 70);
#: thread 2 runs b [0, 30) alone. Self: outer 100 - 30 - 20 = 50; a 30 - 10 = 20; b all self.
NESTED = {
    "traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 7, "tid": 1, "args": {"name": "main"}},
        x("outer", 0, 100),
        x("a", 10, 30, **{"Input Dims": [[2, 3]]}),
        x("b", 15, 10, **{"Input Dims": [[4]]}),
        x("b", 50, 20, **{"Input Dims": [[4]]}),
        x("b", 0, 30, tid=2, **{"Input Dims": [[8, 8]]}),
        {"ph": "i", "name": "marker", "pid": 7, "tid": 1, "ts": 5},
    ]
}


def test_self_time_subtracts_only_direct_children_on_the_same_thread() -> None:
    ops = by_name(summarize(NESTED))

    assert (ops["outer"].count, ops["outer"].total_us, ops["outer"].self_us) == (1, 100, 50)
    assert (ops["a"].count, ops["a"].total_us, ops["a"].self_us) == (1, 30, 20)
    assert (ops["b"].count, ops["b"].total_us, ops["b"].self_us) == (3, 60, 60)


def test_counts_events_shapes_threads_and_span() -> None:
    summary = summarize(NESTED)

    assert (summary.num_events, summary.num_complete_events) == (7, 5)
    assert (summary.start_us, summary.end_us) == (0, 100)
    assert by_name(summary)["b"].input_shapes == [
        {"shapes": [[4]], "count": 2},
        {"shapes": [[8, 8]], "count": 1},
    ]
    assert [(t.tid, t.name) for t in summary.threads] == [("1", "main"), ("2", None)]


def test_depth_and_order_of_the_timeline() -> None:
    summary = summarize(NESTED)
    names = [op.name for op in summary.operators]
    main = summary.timeline[0]

    assert [names[op] for op in main["op"]] == ["outer", "a", "b", "b"]
    assert main["depth"].tolist() == [0, 1, 2, 1]


def test_a_child_that_overhangs_its_parent_counts_only_up_to_the_parent_end() -> None:
    ops = by_name(summarize({"traceEvents": [x("p", 0, 10), x("c", 5, 20)]}))

    assert ops["p"].self_us == 5
    assert ops["c"].self_us == 20


def test_equal_intervals_nest_and_siblings_do_not() -> None:
    events = [x("p", 0, 10), x("q", 0, 10), x("s1", 10, 5), x("s2", 15, 5)]
    ops = by_name(summarize({"traceEvents": events}))

    assert ops["p"].self_us + ops["q"].self_us == 10  # one of the two holds the other
    assert (ops["s1"].self_us, ops["s2"].self_us) == (5, 5)


def test_steps_split_the_trace_at_each_profiler_step_annotation() -> None:
    events = [
        x("ProfilerStep#3", 0, 40, cat="user_annotation"),
        x("mm", 5, 30),
        x("ProfilerStep#4", 50, 40, cat="user_annotation"),
        x("mm", 55, 10),
        x("relu", 70, 10),
        x("kernel_a", 95, 5, cat="kernel", tid=99),  # GPU work after the CPU step ended
    ]
    summary = summarize({"traceEvents": events})

    assert [(s.step, s.start_us, s.duration_us, s.num_events) for s in summary.steps] == [
        (3, 0, 40, 2),
        (4, 50, 40, 4),
    ]
    assert summary.steps[0].self_us_by_category == {"cpu_op": 30, "user_annotation": 10}
    assert summary.steps[1].self_us_by_category == {
        "cpu_op": 20,
        "kernel": 5,
        "user_annotation": 20,
    }
    step_ops = [op for op in summary.operators if op.category == "user_annotation"]
    assert [(op.name, op.count) for op in step_ops] == [(STEP_OPERATOR, 2)]


def test_kineto_categories_are_kept_apart() -> None:
    events = [
        x("cudaLaunchKernel", 0, 5, cat="cuda_runtime"),
        x("volta_sgemm", 3, 40, cat="kernel", tid=7),
        x("Memcpy HtoD", 50, 8, cat="gpu_memcpy", tid=7),
        x("volta_sgemm", 60, 40, cat="cpu_op"),
    ]
    summary = summarize({"traceEvents": events})

    assert sorted((op.name, op.category, op.count) for op in summary.operators) == [
        ("Memcpy HtoD", "gpu_memcpy", 1),
        ("cudaLaunchKernel", "cuda_runtime", 1),
        ("volta_sgemm", "cpu_op", 1),
        ("volta_sgemm", "kernel", 1),
    ]


def test_a_top_level_array_of_events_is_a_trace_too() -> None:
    ops = by_name(summarize(NESTED["traceEvents"]))

    assert ops["outer"].self_us == 50


def test_capture_time_comes_from_base_time_and_the_first_event() -> None:
    document = {"baseTimeNanoseconds": 1_790_000_000_000_000_000, **NESTED}
    document["traceEvents"] = [x("op", 2_500_000, 10)]
    summary = summarize(document)

    assert summary.captured_at == dt.datetime.fromtimestamp(1_790_000_002.5, dt.UTC)
    assert summary.metadata["baseTimeNanoseconds"] == 1_790_000_000_000_000_000


def test_metadata_after_the_events_is_read_too() -> None:
    text = json.dumps({"traceEvents": [x("op", 0, 1)], "traceName": "t.json", "host_name": "gpu-3"})
    summary = summarize_trace(io.BytesIO(text.encode()))

    assert summary.metadata == {"traceName": "t.json", "host_name": "gpu-3"}
    assert summary.captured_at is None


def test_names_with_nul_and_overlong_names_are_stored_safely() -> None:
    summary = summarize({"traceEvents": [x("a\x00b", 0, 1), x("n" * 5000, 0, 1, tid=2)]})
    names = {op.name for op in summary.operators}

    assert "a\ufffdb" in names
    assert max(len(name) for name in names) == 1000


# --- real traces from torch 2.13 -------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_real_traces_agree_with_torch_key_averages(version: str) -> None:
    expected = json.loads((DATA / f"profile_{version}.key_averages.json").read_text())
    ops = {op.name: op for op in summarize_file(DATA / f"profile_{version}.json.gz").operators}

    for name, row in expected.items():
        assert ops[name].count == row["count"], name
        assert ops[name].total_us == pytest.approx(row["cpu_time_total_us"], abs=0.01), name
        assert ops[name].self_us == pytest.approx(row["self_cpu_time_total_us"], abs=0.01), name
    extra = {name for name in ops if name not in expected}
    assert extra == {"PyTorch Profiler (0)"}  # the capture's own span, category Trace


def test_real_trace_steps_shapes_and_capture_time() -> None:
    summary = summarize_file(DATA / "profile_v2.json.gz")
    ops = by_name(summary)

    assert [step.step for step in summary.steps] == [1, 2, 3, 4]
    assert all(step.num_events == 30 for step in summary.steps)
    assert {"shapes": [[64, 1024], [], [1024], [1024], []], "count": 4} in ops[
        "aten::native_layer_norm"
    ].input_shapes
    assert summary.metadata["schemaVersion"] == 1
    assert summary.captured_at is not None
    assert summary.captured_at.year >= 2026


def test_plain_and_gzipped_give_the_same_summary() -> None:
    plain = gzip.decompress((DATA / "profile_v1.json.gz").read_bytes())

    from_plain = summarize_trace(open_trace(io.BytesIO(plain)))
    from_gzip = summarize_file(DATA / "profile_v1.json.gz")

    assert from_plain.operators == from_gzip.operators
    assert from_plain.steps == from_gzip.steps


# --- bad files -------------------------------------------------------------------------------


def fails(data: bytes, message: str) -> None:
    with pytest.raises(TraceFormatError) as raised:
        summarize_trace(open_trace(io.BytesIO(data)))
    assert message in str(raised.value)


def test_empty_and_blank_files() -> None:
    fails(b"", "the file is empty")
    fails(b"  \n\t", "the file is empty")


def test_files_that_are_not_json() -> None:
    fails(b"hello world", "not JSON")
    fails(b"PK\x03\x04 zip", "not JSON")
    fails(b'{"traceEvents": [{"ph": "X",, "name": "op"}]}', "not valid JSON")


def test_truncated_files() -> None:
    whole = gzip.decompress((DATA / "profile_v1.json.gz").read_bytes())

    fails(whole[: len(whole) // 2], "truncated")
    fails(whole[:-3], "truncated")
    fails(gzip.compress(whole)[:-200], "gzip stream is damaged or truncated")


def test_damaged_gzip() -> None:
    compressed = bytearray(gzip.compress(b'{"traceEvents": []}' * 100))
    compressed[20:30] = b"\xff" * 10

    fails(bytes(compressed), "gzip stream is damaged")


def test_wrong_shapes() -> None:
    fails(b'{"events": [{"ph": "X"}]}', "no events")
    fails(b'{"traceEvents": []}', "no events")
    fails(b"[]", "no events")
    fails(b'{"traceEvents": [1, 2]}', "event 0 is a int, not a JSON object")
    fails(b'{"traceEvents": [{"ph": "M", "name": "x"}]}', "no complete ('X') event")


def test_bad_complete_events_are_named() -> None:
    fails(json.dumps([x("op", "soon", 1)]).encode(), "'ts' is not a number")
    fails(json.dumps([{"ph": "X", "name": "op", "ts": 1}]).encode(), "'dur' is missing")
    fails(json.dumps([x("op", 1, -5)]).encode(), "negative 'dur'")
    fails(json.dumps([{"ph": "X", "name": 3, "ts": 1, "dur": 1}]).encode(), "string 'name'")
    fails(json.dumps([{**x("op", 1, 1), "tid": [1]}]).encode(), "event 0 ('X') is malformed")
