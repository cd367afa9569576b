"""Operator diff of two profiler traces: which operators added time from base to target.

Method: operators are matched by (name, category). Each side's count, total and self time are
divided by its number of profiler steps when the two traces recorded different numbers of
steps (and both recorded some), so a trace of 10 steps compares fairly with one of 3; otherwise
the raw sums are compared. Operators are ranked by the change in self time (total time counts a
parent's children again, so self time is what adds up to the trace's time); new operators have
a base of 0 and vanished ones a target of 0. The profiler's own spans (the ``Trace`` category
and the ``ProfilerStep*`` annotation) are left out: they measure the capture, not the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Columns each side's frame must have.
OPERATOR_COLUMNS = ("name", "category", "count", "total_us", "self_us")
EXCLUDED_CATEGORIES = frozenset({"Trace"})
EXCLUDED_NAMES = frozenset({"ProfilerStep*"})
#: A relative change of self time below this is "unchanged".
UNCHANGED_TOLERANCE = 1e-9


@dataclass(frozen=True)
class OperatorDiff:
    """The diff. `operators` has one row per operator, ranked by `delta_self_us` (largest
    increase first), with columns name, category, status (new, vanished, changed, unchanged),
    base_/target_ count, total_us and self_us, delta_self_us, delta_total_us, delta_self_pct."""

    per_step: bool
    operators: pd.DataFrame
    base_self_us: float
    target_self_us: float

    @property
    def new_operators(self) -> list[str]:
        return self.operators.loc[self.operators["status"] == "new", "name"].tolist()

    @property
    def vanished_operators(self) -> list[str]:
        return self.operators.loc[self.operators["status"] == "vanished", "name"].tolist()


def diff_operators(
    base: pd.DataFrame, target: pd.DataFrame, *, base_steps: int = 0, target_steps: int = 0
) -> OperatorDiff:
    """Rank operators by the self time they added from `base` to `target`.

    Args:
        base: one row per operator of the base trace (`OPERATOR_COLUMNS`).
        target: the same for the target trace.
        base_steps: profiler steps in the base trace (0 when it has none).
        target_steps: profiler steps in the target trace.

    Returns:
        The ranked diff, per step when the step counts differ and both are positive.
    """
    per_step = base_steps > 0 and target_steps > 0 and base_steps != target_steps
    left = _prepare(base, base_steps if per_step else 1)
    right = _prepare(target, target_steps if per_step else 1)
    merged = left.merge(
        right, on=["name", "category"], how="outer", suffixes=("_base", "_target"), indicator=True
    )
    frame = pd.DataFrame(
        {
            "name": merged["name"],
            "category": merged["category"],
            "status": _status(merged),
        }
    )
    for column in ("count", "total_us", "self_us"):
        frame[f"base_{column}"] = merged[f"{column}_base"].fillna(0.0).astype(float)
        frame[f"target_{column}"] = merged[f"{column}_target"].fillna(0.0).astype(float)
    frame["delta_self_us"] = frame["target_self_us"] - frame["base_self_us"]
    frame["delta_total_us"] = frame["target_total_us"] - frame["base_total_us"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * frame["delta_self_us"] / frame["base_self_us"]
    frame["delta_self_pct"] = pct.where(frame["base_self_us"] > 0)
    frame = frame.sort_values(
        ["delta_self_us", "target_self_us", "name"], ascending=[False, False, True]
    ).reset_index(drop=True)
    return OperatorDiff(
        per_step=per_step,
        operators=frame,
        base_self_us=float(left["self_us"].sum()),
        target_self_us=float(right["self_us"].sum()),
    )


def _prepare(operators: pd.DataFrame, steps: int) -> pd.DataFrame:
    missing = set(OPERATOR_COLUMNS) - set(operators.columns)
    if missing:
        raise ValueError(f"operator frame lacks columns {sorted(missing)}")
    kept = operators.loc[
        ~operators["category"].isin(EXCLUDED_CATEGORIES) & ~operators["name"].isin(EXCLUDED_NAMES),
        list(OPERATOR_COLUMNS),
    ]
    grouped = kept.groupby(["name", "category"], as_index=False, sort=False).sum()
    for column in ("count", "total_us", "self_us"):
        grouped[column] = grouped[column].astype(float) / steps
    return grouped


def _status(merged: pd.DataFrame) -> pd.Series:
    source = merged["_merge"].astype(str)
    base_self = merged["self_us_base"].fillna(0.0)
    target_self = merged["self_us_target"].fillna(0.0)
    same = (target_self - base_self).abs() <= UNCHANGED_TOLERANCE * base_self.abs().clip(lower=1)
    same &= merged["count_base"].fillna(-1) == merged["count_target"].fillna(-2)
    status = np.where(
        source == "right_only",
        "new",
        np.where(source == "left_only", "vanished", np.where(same, "unchanged", "changed")),
    )
    return pd.Series(status, index=merged.index)
