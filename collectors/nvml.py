"""GPU metrics from NVML, the library under nvidia-smi, through NVIDIA's Python bindings.

`NvmlCollector` is a pull collector: it receives the NVML module (`fetch=`, by default one that
imports ``pynvml`` from the nvidia-ml-py package) and its clock (`now=`), so tests hand it a
double that behaves like pynvml. Each `collect()` reads every GPU once and returns metric
samples (DESIGN 3.1) with resource ``gpu<index>``:

- nvmlDeviceGetUtilizationRates: gpu_utilization_pct (.gpu), gpu_memory_utilization_pct
  (.memory), in %;
- nvmlDeviceGetMemoryInfo: gpu_memory_used_mb, gpu_memory_total_mb, gpu_memory_free_mb (MiB);
- nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU): gpu_temperature_c;
- nvmlDeviceGetPowerUsage, nvmlDeviceGetEnforcedPowerLimit: gpu_power_w, gpu_power_limit_w
  (NVML reports mW);
- nvmlDeviceGetClockInfo(NVML_CLOCK_SM, NVML_CLOCK_MEM): gpu_sm_clock_mhz,
  gpu_memory_clock_mhz;
- nvmlDeviceGetCurrentClocksEventReasons: gpu_throttle_reasons (the bitmask) and
  gpu_throttled (1 while power cap, thermal or hardware slowdown holds the clocks down; see
  collectors.metric_names.SLOWDOWN_REASONS).

A field the GPU does not support (NVMLError, e.g. NOT_SUPPORTED on consumer boards or inside
some VMs) is missing from the result, never reported as zero. Tags carry the same labels
dcgm-exporter puts on its series (``UUID``, ``modelName``, ``pci_bus_id``, ``device``), so a
GPU reads the same whichever collector watched it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectors import metric_names as names

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


class NvmlUnavailable(RuntimeError):
    """NVML could not be loaded or initialised (no driver, no GPU, bindings not installed)."""


def import_pynvml() -> Any:
    """The ``pynvml`` module of nvidia-ml-py; raises `NvmlUnavailable` without it."""
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailable(
            "the NVML bindings are not installed: pip install 'observe[gpu]' (nvidia-ml-py)"
        ) from None
    return pynvml


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class _Gpu:
    index: int
    handle: Any
    tags: dict[str, str]


class NvmlCollector:
    """Reads every GPU of this host through NVML.

    Args:
        host: the ``host`` of every sample.
        fetch: returns the NVML module (pynvml or a double); called once, by `open`.
        now: the clock that stamps each reading.
    """

    def __init__(
        self, *, host: str, fetch: Callable[[], Any] = import_pynvml, now: Clock = utc_now
    ) -> None:
        self._host = host
        self._fetch = fetch
        self._now = now
        self._nvml: Any = None
        self._gpus: list[_Gpu] = []

    @property
    def num_gpus(self) -> int:
        return len(self._gpus)

    def open(self) -> None:
        """Initialise NVML and find the GPUs.

        Raises:
            NvmlUnavailable: NVML cannot be initialised, with NVML's reason.
        """
        nvml = self._fetch()
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as error:
            raise NvmlUnavailable(f"NVML cannot be initialised: {error}") from None
        self._nvml = nvml
        described = (self._describe(index) for index in range(count))
        self._gpus = [gpu for gpu in described if gpu is not None]

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as error:
                log.debug("nvmlShutdown failed: %s", error)
            self._nvml = None

    def __enter__(self) -> NvmlCollector:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def collect(self) -> list[dict[str, Any]]:
        """One reading of every GPU: a list of metric samples, all with the same timestamp."""
        if self._nvml is None:
            raise RuntimeError("call open() first")
        timestamp = self._now()
        samples = []
        for gpu in self._gpus:
            for name, value in self._read(gpu.handle).items():
                samples.append(
                    names.sample(
                        timestamp=timestamp,
                        host=self._host,
                        resource=f"gpu{gpu.index}",
                        name=name,
                        value=value,
                        tags=gpu.tags,
                    )
                )
        return samples

    # --- reading ------------------------------------------------------------------------------

    def _describe(self, index: int) -> _Gpu | None:
        nvml = self._nvml
        handle = self._call(nvml.nvmlDeviceGetHandleByIndex, index)
        if handle is None:
            log.warning("GPU %d cannot be read through NVML and is left out", index)
            return None
        tags = {"gpu": str(index), "device": f"nvidia{index}"}
        found = {
            "UUID": self._call(nvml.nvmlDeviceGetUUID, handle),
            "modelName": self._call(nvml.nvmlDeviceGetName, handle),
            "pci_bus_id": self._call(lambda h: nvml.nvmlDeviceGetPciInfo(h).busId, handle),
        }
        tags.update({key: _text(value) for key, value in found.items() if value})
        return _Gpu(index, handle, tags)

    def _read(self, handle: Any) -> dict[str, float]:
        nvml = self._nvml
        values: dict[str, float] = {}
        utilization = self._call(nvml.nvmlDeviceGetUtilizationRates, handle)
        if utilization is not None:
            values[names.GPU_UTILIZATION_PCT] = utilization.gpu
            values[names.GPU_MEMORY_UTILIZATION_PCT] = utilization.memory
        memory = self._call(nvml.nvmlDeviceGetMemoryInfo, handle)
        if memory is not None:
            values[names.GPU_MEMORY_USED_MB] = memory.used / names.MIB
            values[names.GPU_MEMORY_TOTAL_MB] = memory.total / names.MIB
            values[names.GPU_MEMORY_FREE_MB] = memory.free / names.MIB
        single = {
            names.GPU_TEMPERATURE_C: (nvml.nvmlDeviceGetTemperature, (nvml.NVML_TEMPERATURE_GPU,)),
            names.GPU_POWER_W: (nvml.nvmlDeviceGetPowerUsage, ()),
            names.GPU_POWER_LIMIT_W: (nvml.nvmlDeviceGetEnforcedPowerLimit, ()),
            names.GPU_SM_CLOCK_MHZ: (nvml.nvmlDeviceGetClockInfo, (nvml.NVML_CLOCK_SM,)),
            names.GPU_MEMORY_CLOCK_MHZ: (nvml.nvmlDeviceGetClockInfo, (nvml.NVML_CLOCK_MEM,)),
        }
        for name, (function, arguments) in single.items():
            value = self._call(function, handle, *arguments)
            if value is not None:
                values[name] = value / 1000.0 if name in _MILLIWATTS else float(value)
        reasons = self._clock_event_reasons(handle)
        if reasons is not None:
            values.update(names.throttle_values(reasons))
        return values

    def _clock_event_reasons(self, handle: Any) -> int | None:
        # nvmlDeviceGetCurrentClocksEventReasons replaced ...ThrottleReasons (same bits) in
        # newer drivers and bindings; older bindings only have the latter.
        nvml = self._nvml
        function = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
        )
        if function is None:
            return None
        value = self._call(function, handle)
        return None if value is None else int(value)

    def _call(self, function: Callable[..., Any], *arguments: Any) -> Any:
        """NVML's answer, or None where it refuses (not supported, no permission, GPU lost)."""
        try:
            return function(*arguments)
        except self._nvml_error() as error:
            log.debug("%s: %s", getattr(function, "__name__", "NVML call"), error)
            return None

    def _nvml_error(self) -> type[Exception]:
        error: type[Exception] = self._nvml.NVMLError
        return error


_MILLIWATTS = frozenset({names.GPU_POWER_W, names.GPU_POWER_LIMIT_W})


def _text(value: Any) -> str:
    """NVML strings come back as bytes from older bindings and str from newer ones."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
