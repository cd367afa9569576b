"""Profiler: a model's PyTorch profiler traces, one trace's top operators and the timeline of
one profiler step, and the operator diff of two traces (by default the newest trace against
the newest of another version), through observe's profile storage and pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from analyzers.profiles import EXCLUDED_CATEGORIES
from dashboards.data import InputError
from observe.pipeline import profiles as profile_pipeline
from observe.schemas.profiles import (
    OperatorOut,
    ProfileDiffOut,
    ProfileOut,
    StepOut,
    TimelineOut,
)
from observe.storage import profiles as profile_store

NUM_PROFILES = 100
NUM_OPERATORS = 25
NUM_DIFF_OPERATORS = 50
NUM_TIMELINE_EVENTS = 1_500


@dataclass(frozen=True)
class ProfilerView:
    """`profile` is the trace whose operators and timeline are shown (the newest by default;
    without a category filter its operators leave out the profiler's own envelope, as the
    diff does);
    `diff` compares `diff.base` with `diff.target` when the model has two versions profiled."""

    model: str
    profiles: list[ProfileOut]
    profile: ProfileOut | None
    categories: list[str]
    operators: list[OperatorOut]
    steps: list[StepOut]
    step: int | None
    timeline: TimelineOut | None
    diff: ProfileDiffOut | None


def parse_profile_id(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise InputError(f"{name}: {value!r} is not a profile id") from None
    if number < 1:
        raise InputError(f"{name}: {value!r} is not a profile id")
    return number


def parse_step(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise InputError(f"step: {value!r} is not a step number") from None


def load_profiler(
    sessions: sessionmaker[Session],
    *,
    model: str,
    profile_id: int | None = None,
    base_id: int | None = None,
    target_id: int | None = None,
    categories: Sequence[str] = (),
    step: int | None = None,
) -> ProfilerView:
    with sessions() as session:
        profiles = profile_store.list_profiles(session, model=model, limit=NUM_PROFILES)
        profile = _profile(session, profile_id, "profile") if profile_id else None
        profile = profile or (profiles[0] if profiles else None)
        if profile is None:
            return ProfilerView(model, [], None, [], [], [], None, None, None)
        frame = profile_store.load_operator_frame(session, profile.id)
        categories_seen = sorted(str(c) for c in frame["category"].unique())
        shown = list(categories) or [c for c in categories_seen if c not in EXCLUDED_CATEGORIES]
        operators = profile_store.load_operators(
            session, profile.id, categories=shown, limit=NUM_OPERATORS
        )
        _, origin = profile_store.load_threads(session, profile.id)
        steps = profile_store.load_steps(session, profile.id, origin_us=origin)
        step = step if step is not None else (steps[0].step if steps else None)
        timeline = profile_pipeline.load_timeline(
            session, profile, step=step, limit=NUM_TIMELINE_EVENTS
        )
        if timeline is None:
            raise InputError(f"step: trace {profile.id} has no profiler step {step}")
        diff = _diff(session, profiles, base_id, target_id)
    return ProfilerView(
        model, profiles, profile, categories_seen, operators, steps, step, timeline, diff
    )


def _profile(session: Session, profile_id: int, name: str) -> ProfileOut:
    found = profile_store.get_profile(session, profile_id)
    if found is None:
        raise InputError(f"{name}: no profiler trace {profile_id}")
    return found


def _diff(
    session: Session, profiles: list[ProfileOut], base_id: int | None, target_id: int | None
) -> ProfileDiffOut | None:
    if (base_id is None) != (target_id is None):
        raise InputError("give both base and target to compare two traces, or neither")
    if base_id is not None and target_id is not None:
        pair = (_profile(session, base_id, "base"), _profile(session, target_id, "target"))
    else:
        found = default_pair(profiles)
        if found is None:
            return None
        pair = found
    return profile_pipeline.diff_profiles(session, *pair, limit=NUM_DIFF_OPERATORS)


def default_pair(profiles: Sequence[ProfileOut]) -> tuple[ProfileOut, ProfileOut] | None:
    """(base, target): the newest trace as target against the newest trace of another
    version; None when only one version was profiled. `profiles` are newest first."""
    if not profiles:
        return None
    target = profiles[0]
    base = next((p for p in profiles if p.model_version != target.model_version), None)
    return None if base is None else (base, target)


def describe_profile(profile: ProfileOut) -> str:
    """``#12 v7 on gpu-1, 2026-11-20 16:10`` for pickers and titles."""
    return (
        f"#{profile.id} {profile.model_version} on {profile.host}, "
        f"{profile.captured_at:%Y-%m-%d %H:%M}"
    )
