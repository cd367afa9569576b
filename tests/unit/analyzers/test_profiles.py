"""Operator diff: ranking by added self time, new and vanished operators, per-step scaling."""

from __future__ import annotations

import pandas as pd
import pytest

from analyzers.profiles import diff_operators


def ops(*rows: tuple[str, str, int, float, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "category", "count", "total_us", "self_us"])


BASE = ops(
    ("aten::linear", "cpu_op", 4, 500.0, 20.0),
    ("aten::addmm", "cpu_op", 4, 480.0, 480.0),
    ("aten::relu", "cpu_op", 2, 30.0, 30.0),
    ("aten::dropout", "cpu_op", 2, 10.0, 10.0),
    ("ProfilerStep*", "user_annotation", 2, 1000.0, 40.0),
    ("PyTorch Profiler (0)", "Trace", 1, 2000.0, 2000.0),
)
TARGET = ops(
    ("aten::linear", "cpu_op", 4, 1300.0, 20.0),
    ("aten::addmm", "cpu_op", 4, 1280.0, 1280.0),
    ("aten::relu", "cpu_op", 2, 30.0, 30.0),
    ("aten::layer_norm", "cpu_op", 2, 100.0, 100.0),
    ("ProfilerStep*", "user_annotation", 2, 3000.0, 60.0),
    ("PyTorch Profiler (0)", "Trace", 1, 5000.0, 5000.0),
)


def test_operators_are_ranked_by_added_self_time() -> None:
    diff = diff_operators(BASE, TARGET, base_steps=2, target_steps=2)
    rows = diff.operators.set_index("name")

    assert diff.operators["name"].tolist() == [
        "aten::addmm",
        "aten::layer_norm",
        "aten::relu",  # unchanged ones by their time in the target
        "aten::linear",
        "aten::dropout",
    ]
    assert rows.loc["aten::addmm", "delta_self_us"] == 800.0
    assert rows.loc["aten::addmm", "delta_total_us"] == 800.0
    assert rows.loc["aten::addmm", "delta_self_pct"] == pytest.approx(800 / 480 * 100)
    assert rows["status"].to_dict() == {
        "aten::addmm": "changed",
        "aten::layer_norm": "new",
        "aten::linear": "unchanged",
        "aten::relu": "unchanged",
        "aten::dropout": "vanished",
    }
    assert pd.isna(rows.loc["aten::layer_norm", "delta_self_pct"])
    assert not diff.per_step
    assert (diff.base_self_us, diff.target_self_us) == (540.0, 1430.0)


def test_new_and_vanished_operators_are_listed() -> None:
    diff = diff_operators(BASE, TARGET)

    assert diff.new_operators == ["aten::layer_norm"]
    assert diff.vanished_operators == ["aten::dropout"]


def test_the_profiler_own_spans_are_left_out() -> None:
    names = set(diff_operators(BASE, TARGET).operators["name"])

    assert "ProfilerStep*" not in names
    assert "PyTorch Profiler (0)" not in names


def test_different_step_counts_compare_per_step() -> None:
    # The target ran twice as many steps of the same model: per step nothing changed.
    doubled = BASE.assign(
        count=BASE["count"] * 2, total_us=BASE["total_us"] * 2, self_us=BASE["self_us"] * 2
    )
    diff = diff_operators(BASE, doubled, base_steps=2, target_steps=4)

    assert diff.per_step
    assert (diff.operators["delta_self_us"] == 0).all()
    assert set(diff.operators["status"]) == {"unchanged"}
    addmm = diff.operators.set_index("name").loc["aten::addmm"]
    assert (addmm["base_count"], addmm["base_self_us"]) == (2.0, 240.0)


def test_equal_or_missing_step_counts_compare_totals() -> None:
    assert not diff_operators(BASE, TARGET, base_steps=3, target_steps=3).per_step
    assert not diff_operators(BASE, TARGET, base_steps=0, target_steps=5).per_step


def test_same_name_in_two_categories_are_two_operators() -> None:
    base = ops(("volta_sgemm", "kernel", 1, 10.0, 10.0), ("volta_sgemm", "cpu_op", 1, 5.0, 5.0))
    target = ops(("volta_sgemm", "kernel", 1, 50.0, 50.0), ("volta_sgemm", "cpu_op", 1, 5.0, 5.0))
    diff = diff_operators(base, target)

    assert diff.operators[["category", "delta_self_us"]].values.tolist() == [
        ["kernel", 40.0],
        ["cpu_op", 0.0],
    ]


def test_missing_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        diff_operators(BASE.drop(columns=["self_us"]), TARGET)
