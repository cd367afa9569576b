"""Metric sample names shared by the GPU and host collectors (DESIGN 3.1), and the decoding of
GPU clock-event (throttle) reasons that NVML and DCGM report as the same bitmask.

A metric sample is a dict in the contract's shape: ``timestamp``, ``host``, ``resource``
(``gpu0``, ``cpu``, ``memory``), ``name``, ``value`` and optional ``tags``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

# The well-known names of DESIGN 3.1.
GPU_UTILIZATION_PCT = "gpu_utilization_pct"
GPU_MEMORY_USED_MB = "gpu_memory_used_mb"
GPU_MEMORY_TOTAL_MB = "gpu_memory_total_mb"
GPU_TEMPERATURE_C = "gpu_temperature_c"
GPU_POWER_W = "gpu_power_w"
GPU_SM_CLOCK_MHZ = "gpu_sm_clock_mhz"
CPU_UTILIZATION_PCT = "cpu_utilization_pct"
MEMORY_USED_MB = "memory_used_mb"

# Further names this project's collectors write.
GPU_MEMORY_FREE_MB = "gpu_memory_free_mb"
GPU_MEMORY_UTILIZATION_PCT = "gpu_memory_utilization_pct"
GPU_MEMORY_TEMPERATURE_C = "gpu_memory_temperature_c"
GPU_MEMORY_CLOCK_MHZ = "gpu_memory_clock_mhz"
GPU_POWER_LIMIT_W = "gpu_power_limit_w"
GPU_THROTTLE_REASONS = "gpu_throttle_reasons"
GPU_THROTTLED = "gpu_throttled"
MEMORY_TOTAL_MB = "memory_total_mb"

MIB = 1024 * 1024

# Clock-event ("throttle") reason bits, identical in NVML (nvmlClocksEventReason*) and DCGM
# (DCGM_CLOCKS_EVENT_REASON_*, reported in DCGM_FI_DEV_CLOCKS_EVENT_REASONS, formerly
# DCGM_FI_DEV_CLOCK_THROTTLE_REASONS).
REASON_GPU_IDLE = 0x1
REASON_APPLICATIONS_CLOCKS_SETTING = 0x2
REASON_SW_POWER_CAP = 0x4
REASON_HW_SLOWDOWN = 0x8
REASON_SYNC_BOOST = 0x10
REASON_SW_THERMAL_SLOWDOWN = 0x20
REASON_HW_THERMAL_SLOWDOWN = 0x40
REASON_HW_POWER_BRAKE_SLOWDOWN = 0x80
REASON_DISPLAY_CLOCK_SETTING = 0x100

#: Reasons that mean the GPU runs slower than it could under load: the power cap, thermal
#: limits and hardware slowdowns. Idle, application/display clock settings and sync boost are
#: deliberate clock choices, not a loss of performance, so they do not count.
SLOWDOWN_REASONS = (
    REASON_SW_POWER_CAP
    | REASON_HW_SLOWDOWN
    | REASON_SW_THERMAL_SLOWDOWN
    | REASON_HW_THERMAL_SLOWDOWN
    | REASON_HW_POWER_BRAKE_SLOWDOWN
)


def throttle_values(reasons: int) -> dict[str, float]:
    """The two samples a clock-event bitmask becomes.

    Args:
        reasons: the bitmask NVML or DCGM reports.

    Returns:
        ``gpu_throttle_reasons`` (the bitmask itself, for drilling down) and ``gpu_throttled``:
        1 when any slowdown reason (power cap, thermal, hardware slowdown or power brake) is
        active, else 0.
    """
    return {
        GPU_THROTTLE_REASONS: float(reasons),
        GPU_THROTTLED: 1.0 if reasons & SLOWDOWN_REASONS else 0.0,
    }


#: CPU time modes that are not work. Guest time is already counted in user/nice on Linux, so
#: it is left out of the total as well (node-exporter reports it apart, psutil inside user).
IDLE_CPU_MODES = frozenset({"idle", "iowait"})
EXCLUDED_CPU_MODES = frozenset({"guest", "guest_nice"})


def cpu_busy_pct(previous: Mapping[str, float], current: Mapping[str, float]) -> float | None:
    """Share of CPU time spent working between two readings of cumulative CPU seconds.

    Args:
        previous: seconds per mode (user, system, idle, iowait, ...) at the earlier reading,
            summed over all cores.
        current: the same at the later reading.

    Returns:
        Busy time over all time, in percent; None when no time passed or a counter went
        backwards (a reboot or a counter reset), where no rate can be told.
    """
    modes = (set(previous) & set(current)) - EXCLUDED_CPU_MODES
    deltas = {mode: current[mode] - previous[mode] for mode in modes}
    total = sum(deltas.values())
    if total <= 0 or any(delta < 0 for delta in deltas.values()):
        return None
    idle = sum(delta for mode, delta in deltas.items() if mode in IDLE_CPU_MODES)
    return min(100.0, max(0.0, 100.0 * (total - idle) / total))


def sample(
    *,
    timestamp: dt.datetime,
    host: str,
    resource: str,
    name: str,
    value: float,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One metric sample in the contract's shape (tags left out when empty)."""
    item: dict[str, Any] = {
        "timestamp": timestamp,
        "host": host,
        "resource": resource,
        "name": name,
        "value": float(value),
    }
    if tags:
        item["tags"] = dict(tags)
    return item
