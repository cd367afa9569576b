"""Host CPU and memory metrics through psutil.

`HostCollector` is a pull collector: it receives the psutil module (`fetch=`) and its clock
(`now=`). CPU utilization is a rate: each `collect()` compares cumulative CPU seconds with the
previous reading, so the first reading after `open()` compares with the one `open()` took.

| source | sample | resource | unit |
|---|---|---|---|
| psutil.cpu_times() (busy time over all time between readings) | cpu_utilization_pct | cpu | % |
| psutil.virtual_memory(): total - available | memory_used_mb | memory | MiB |
| psutil.virtual_memory().total | memory_total_mb | memory | MiB |

"Used" is total minus available, the memory that applications hold and the kernel cannot
reclaim; it is what node-exporter users compute as MemTotal - MemAvailable, so both collectors
agree on a host.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from collectors import metric_names as names

Clock = Callable[[], dt.datetime]


def import_psutil() -> Any:
    import psutil

    return psutil


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class HostCollector:
    """Reads this host's CPU utilization and memory.

    Args:
        host: the ``host`` of every sample.
        fetch: returns the psutil module (or a double).
        now: the clock that stamps each reading.
    """

    def __init__(
        self, *, host: str, fetch: Callable[[], Any] = import_psutil, now: Clock = utc_now
    ) -> None:
        self._host = host
        self._fetch = fetch
        self._now = now
        self._psutil: Any = None
        self._previous_cpu: dict[str, float] | None = None

    def open(self) -> None:
        """Take the first CPU reading, the baseline of the first utilization sample."""
        self._psutil = self._fetch()
        self._previous_cpu = self._cpu_seconds()

    def close(self) -> None:
        self._psutil = None

    def collect(self) -> list[dict[str, Any]]:
        """CPU utilization since the previous reading, and memory now."""
        if self._psutil is None:
            raise RuntimeError("call open() first")
        timestamp = self._now()
        current = self._cpu_seconds()
        busy = (
            names.cpu_busy_pct(self._previous_cpu, current)
            if self._previous_cpu is not None
            else None
        )
        self._previous_cpu = current
        memory = self._psutil.virtual_memory()
        values = [
            ("memory", names.MEMORY_USED_MB, (memory.total - memory.available) / names.MIB),
            ("memory", names.MEMORY_TOTAL_MB, memory.total / names.MIB),
        ]
        if busy is not None:
            values.insert(0, ("cpu", names.CPU_UTILIZATION_PCT, busy))
        return [
            names.sample(
                timestamp=timestamp, host=self._host, resource=resource, name=name, value=value
            )
            for resource, name, value in values
        ]

    def _cpu_seconds(self) -> dict[str, float]:
        times = self._psutil.cpu_times()
        return {mode: float(seconds) for mode, seconds in times._asdict().items()}
