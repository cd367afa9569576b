"""In-memory doubles of the sources the pull collectors read: NVML (pynvml) and psutil.

`FakeNvml` behaves like the pynvml module of nvidia-ml-py: the same function names and
constants, the same return types (pynvml's own ctypes structures, str names), and pynvml's own
NVMLError for a field a GPU does not support or for a library that is missing.
"""

# The method names are pynvml's own (camelCase), which the double must match.
# ruff: noqa: N802

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

import pynvml

MIB = 1024 * 1024


@dataclass
class FakeGpu:
    """One GPU's readings; a field set to None raises NVML_ERROR_NOT_SUPPORTED."""

    uuid: str = "GPU-5d3f1b7e-93c4-2a8e-6f0d-41b2c9e87a10"
    name: str = "NVIDIA H100 80GB HBM3"
    bus_id: bytes = b"00000000:18:00.0"
    utilization: tuple[int, int] | None = (87, 41)  # gpu %, memory %
    memory_mib: tuple[int, int] | None = (63_537, 81_559)  # used, total
    temperature_c: int | None = 71
    power_mw: int | None = 612_437
    power_limit_mw: int | None = 700_000
    sm_clock_mhz: int | None = 1_980
    memory_clock_mhz: int | None = 2_619
    clock_event_reasons: int | None = 0
    is_lost: bool = False  # every call on it fails with NVML_ERROR_GPU_IS_LOST


@dataclass
class FakeNvml:
    """A module-like NVML double; `gpus` can be changed between readings."""

    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu()])
    init_error: int | None = None  # an NVML_ERROR_* code nvmlInit raises
    num_inits: int = 0
    num_shutdowns: int = 0
    num_reads: int = 0

    NVMLError = pynvml.NVMLError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    NVML_CLOCK_MEM = pynvml.NVML_CLOCK_MEM

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.num_inits += 1

    def nvmlShutdown(self) -> None:
        self.num_shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        self._gpu(index)  # a lost GPU has no handle either
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetPciInfo(self, handle: int) -> Any:
        info = pynvml.nvmlPciInfo_t()
        info.busId = self._gpu(handle).bus_id
        return info

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        self.num_reads += 1
        gpu, memory = self._field(handle, "utilization")
        return pynvml.c_nvmlUtilization_t(gpu=gpu, memory=memory)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        used, total = self._field(handle, "memory_mib")
        return pynvml.c_nvmlMemory_t(total=total * MIB, free=(total - used) * MIB, used=used * MIB)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return int(self._field(handle, "temperature_c"))

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return int(self._field(handle, "power_mw"))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return int(self._field(handle, "power_limit_mw"))

    def nvmlDeviceGetClockInfo(self, handle: int, clock_type: int) -> int:
        names = {pynvml.NVML_CLOCK_SM: "sm_clock_mhz", pynvml.NVML_CLOCK_MEM: "memory_clock_mhz"}
        return int(self._field(handle, names[clock_type]))

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return int(self._field(handle, "clock_event_reasons"))

    def _gpu(self, handle: int) -> FakeGpu:
        gpu = self.gpus[handle]
        if gpu.is_lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    def _field(self, handle: int, name: str) -> Any:
        value = getattr(self._gpu(handle), name)
        if value is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value


CpuTimes = namedtuple(
    "CpuTimes",
    "user nice system idle iowait irq softirq steal guest guest_nice",
)
VirtualMemory = namedtuple("VirtualMemory", "total available percent used free")


@dataclass
class FakePsutil:
    """psutil's cpu_times() (cumulative seconds over all cores) and virtual_memory()."""

    cpu_seconds: dict[str, float] = field(
        default_factory=lambda: {
            "user": 1000.0,
            "nice": 0.0,
            "system": 200.0,
            "idle": 8000.0,
            "iowait": 50.0,
            "irq": 0.0,
            "softirq": 10.0,
            "steal": 0.0,
            "guest": 0.0,
            "guest_nice": 0.0,
        }
    )
    total_bytes: int = 64 * 1024 * MIB
    available_bytes: int = 40 * 1024 * MIB

    def cpu_times(self) -> CpuTimes:
        return CpuTimes(**self.cpu_seconds)

    def virtual_memory(self) -> VirtualMemory:
        used = self.total_bytes - self.available_bytes
        return VirtualMemory(
            self.total_bytes, self.available_bytes, 100.0 * used / self.total_bytes, used, 0
        )

    def advance(self, **seconds: float) -> None:
        for mode, delta in seconds.items():
            self.cpu_seconds[mode] += delta
