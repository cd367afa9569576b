"""dashboards.data.profiler: the pure parts (ids from the URL, the default diff pair)."""

from __future__ import annotations

import pytest

from dashboards.data import InputError
from dashboards.data import profiler as profiler_data
from tests.unit.dashboards.builders import profile


def test_profile_ids_and_steps_from_the_url() -> None:
    assert profiler_data.parse_profile_id("12", "base") == 12
    assert profiler_data.parse_profile_id("", "base") is None
    assert profiler_data.parse_step("3") == 3
    with pytest.raises(InputError, match="base: 'v6' is not a profile id"):
        profiler_data.parse_profile_id("v6", "base")
    with pytest.raises(InputError, match="target: '0' is not a profile id"):
        profiler_data.parse_profile_id("0", "target")
    with pytest.raises(InputError, match="step: 'first' is not a step number"):
        profiler_data.parse_step("first")


def test_the_default_diff_is_the_newest_trace_against_the_newest_of_another_version() -> None:
    newest_first = [profile(5, "v7"), profile(4, "v7"), profile(3, "v6"), profile(2, "v6")]

    base, target = profiler_data.default_pair(newest_first)  # type: ignore[misc]

    assert (base.id, target.id) == (3, 5)


def test_no_default_diff_with_one_version() -> None:
    assert profiler_data.default_pair([profile(2, "v6"), profile(1, "v6")]) is None
    assert profiler_data.default_pair([]) is None


def test_a_profile_is_described_by_id_version_host_and_time() -> None:
    assert profiler_data.describe_profile(profile(3, "v6")) == "#3 v6 on gpu-1, 2026-11-16 12:03"
