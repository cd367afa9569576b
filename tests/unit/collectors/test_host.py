from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collectors.host import HostCollector, import_psutil
from tests.doubles import FakePsutil

T0 = dt.datetime(2026, 11, 16, 14, 5, tzinfo=dt.UTC)


def by_name(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in samples}


def test_cpu_utilization_is_the_busy_share_since_the_previous_reading() -> None:
    psutil = FakePsutil()
    collector = HostCollector(host="gpu-node-3", fetch=lambda: psutil, now=lambda: T0)
    collector.open()
    # 100 s of CPU time: 25 user + 5 system of work, 60 idle + 10 iowait; guest is inside user
    psutil.advance(user=25.0, system=5.0, idle=60.0, iowait=10.0, guest=20.0)

    samples = by_name(collector.collect())

    cpu = samples["cpu_utilization_pct"]
    assert cpu["value"] == pytest.approx(30.0)
    assert (cpu["resource"], cpu["host"], cpu["timestamp"]) == ("cpu", "gpu-node-3", T0)


def test_memory_used_is_total_minus_available() -> None:
    psutil = FakePsutil(total_bytes=64 * 1024**3, available_bytes=40 * 1024**3)
    collector = HostCollector(host="h", fetch=lambda: psutil, now=lambda: T0)
    collector.open()

    samples = by_name(collector.collect())

    assert samples["memory_used_mb"]["value"] == 24 * 1024
    assert samples["memory_total_mb"]["value"] == 64 * 1024
    assert samples["memory_used_mb"]["resource"] == "memory"


def test_no_cpu_sample_when_no_cpu_time_passed() -> None:
    collector = HostCollector(host="h", fetch=FakePsutil, now=lambda: T0)
    collector.open()

    assert "cpu_utilization_pct" not in by_name(collector.collect())


def test_each_reading_is_against_the_one_before() -> None:
    psutil = FakePsutil()
    collector = HostCollector(host="h", fetch=lambda: psutil, now=lambda: T0)
    collector.open()
    psutil.advance(user=90.0, idle=10.0)
    first = by_name(collector.collect())["cpu_utilization_pct"]["value"]
    psutil.advance(user=10.0, idle=90.0)
    second = by_name(collector.collect())["cpu_utilization_pct"]["value"]

    assert (first, second) == (pytest.approx(90.0), pytest.approx(10.0))


def test_the_real_psutil_reads_this_machine() -> None:
    collector = HostCollector(host="h", fetch=import_psutil)
    collector.open()
    sum(i * i for i in range(200_000))  # let some CPU time pass
    samples = by_name(collector.collect())

    assert 0 < samples["memory_used_mb"]["value"] < samples["memory_total_mb"]["value"]
    if "cpu_utilization_pct" in samples:
        assert 0 <= samples["cpu_utilization_pct"]["value"] <= 100
