from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pynvml
import pytest

from collectors import metric_names as names
from collectors.nvml import NvmlCollector, NvmlUnavailable, import_pynvml
from tests.doubles import FakeGpu, FakeNvml

T0 = dt.datetime(2026, 11, 16, 14, 5, tzinfo=dt.UTC)
H100_TAGS = {
    "gpu": "0",
    "device": "nvidia0",
    "UUID": "GPU-5d3f1b7e-93c4-2a8e-6f0d-41b2c9e87a10",
    "modelName": "NVIDIA H100 80GB HBM3",
    "pci_bus_id": "00000000:18:00.0",
}


def collect(nvml: FakeNvml, host: str = "gpu-node-3") -> list[dict[str, Any]]:
    with NvmlCollector(host=host, fetch=lambda: nvml, now=lambda: T0) as collector:
        return collector.collect()


def values_of(samples: list[dict[str, Any]], resource: str = "gpu0") -> dict[str, float]:
    return {s["name"]: s["value"] for s in samples if s["resource"] == resource}


def test_the_double_has_pynvmls_names_and_constants() -> None:
    """Everything the collector may call on the double exists in pynvml under that name."""
    called = [name for name in dir(FakeNvml) if name.startswith("nvml")]

    assert called, "the double exposes no NVML functions"
    assert [name for name in called if not callable(getattr(pynvml, name, None))] == []
    for constant in ("NVML_TEMPERATURE_GPU", "NVML_CLOCK_SM", "NVML_CLOCK_MEM"):
        assert getattr(FakeNvml, constant) == getattr(pynvml, constant)
    assert FakeNvml.NVMLError is pynvml.NVMLError


def test_a_reading_has_every_field_in_the_contracts_units() -> None:
    samples = collect(FakeNvml())

    assert values_of(samples) == {
        "gpu_utilization_pct": 87.0,
        "gpu_memory_utilization_pct": 41.0,
        "gpu_memory_used_mb": 63_537.0,
        "gpu_memory_total_mb": 81_559.0,
        "gpu_memory_free_mb": 18_022.0,
        "gpu_temperature_c": 71.0,
        "gpu_power_w": pytest.approx(612.437),  # NVML reports milliwatts
        "gpu_power_limit_w": 700.0,
        "gpu_sm_clock_mhz": 1_980.0,
        "gpu_memory_clock_mhz": 2_619.0,
        "gpu_throttle_reasons": 0.0,
        "gpu_throttled": 0.0,
    }
    assert {s["timestamp"] for s in samples} == {T0}
    assert {s["host"] for s in samples} == {"gpu-node-3"}
    assert all(s["tags"] == H100_TAGS for s in samples)


def test_fields_the_gpu_does_not_support_are_missing_not_zero() -> None:
    gpu = FakeGpu(power_mw=None, power_limit_mw=None, temperature_c=None, clock_event_reasons=None)

    values = values_of(collect(FakeNvml([gpu])))

    for missing in ("gpu_power_w", "gpu_power_limit_w", "gpu_temperature_c", "gpu_throttled"):
        assert missing not in values
    assert values["gpu_utilization_pct"] == 87.0
    assert values["gpu_sm_clock_mhz"] == 1_980.0


@pytest.mark.parametrize(
    ("reasons", "throttled"),
    [
        (pynvml.nvmlClocksEventReasonGpuIdle, 0.0),
        (pynvml.nvmlClocksEventReasonSwPowerCap, 1.0),
        (pynvml.nvmlClocksEventReasonHwThermalSlowdown | pynvml.nvmlClocksEventReasonGpuIdle, 1.0),
        (pynvml.nvmlClocksEventReasonApplicationsClocksSetting, 0.0),
    ],
)
def test_clock_event_reasons_become_a_bitmask_and_a_throttled_flag(
    reasons: int, throttled: float
) -> None:
    values = values_of(collect(FakeNvml([FakeGpu(clock_event_reasons=reasons)])))

    assert values["gpu_throttle_reasons"] == reasons
    assert values["gpu_throttled"] == throttled


def test_each_gpu_is_its_own_resource() -> None:
    gpus = [FakeGpu(), FakeGpu(uuid="GPU-other", utilization=(3, 1), bus_id=b"00000000:2A:00.0")]

    samples = collect(FakeNvml(gpus))

    assert values_of(samples, "gpu1")["gpu_utilization_pct"] == 3.0
    tags = {s["resource"]: s["tags"] for s in samples}
    assert tags["gpu1"]["UUID"] == "GPU-other"
    assert tags["gpu1"]["device"] == "nvidia1"
    assert tags["gpu1"]["pci_bus_id"] == "00000000:2A:00.0"


def test_a_gpu_lost_between_readings_is_missing_while_the_others_are_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml = FakeNvml([FakeGpu(), FakeGpu(uuid="GPU-2")])
    with NvmlCollector(host="h", fetch=lambda: nvml, now=lambda: T0) as collector:
        nvml.gpus[0].is_lost = True
        samples = collector.collect()

    assert {s["resource"] for s in samples} == {"gpu1"}


def test_a_gpu_lost_at_start_is_left_out_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml([FakeGpu(is_lost=True), FakeGpu(uuid="GPU-2")])
    with caplog.at_level(logging.WARNING):
        samples = collect(nvml)

    assert {s["resource"] for s in samples} == {"gpu1"}
    assert "GPU 0 cannot be read" in caplog.text


def test_readings_follow_the_gpu() -> None:
    nvml = FakeNvml()
    with NvmlCollector(host="h", fetch=lambda: nvml, now=lambda: T0) as collector:
        first = values_of(collector.collect())
        nvml.gpus[0].utilization = (12, 5)
        nvml.gpus[0].clock_event_reasons = pynvml.nvmlClocksEventReasonSwThermalSlowdown
        second = values_of(collector.collect())

    assert (first["gpu_utilization_pct"], second["gpu_utilization_pct"]) == (87.0, 12.0)
    assert (first["gpu_throttled"], second["gpu_throttled"]) == (0.0, 1.0)


def test_nvml_is_initialised_once_and_shut_down() -> None:
    nvml = FakeNvml()
    collector = NvmlCollector(host="h", fetch=lambda: nvml, now=lambda: T0)
    with pytest.raises(RuntimeError, match="open"):
        collector.collect()

    collector.open()
    collector.collect()
    collector.collect()
    collector.close()

    assert (nvml.num_inits, nvml.num_reads, nvml.num_shutdowns) == (1, 2, 1)


def test_an_nvml_that_cannot_start_is_reported_with_nvmls_reason() -> None:
    nvml = FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    with pytest.raises(NvmlUnavailable, match="NVML cannot be initialised: Driver Not Loaded"):
        NvmlCollector(host="h", fetch=lambda: nvml).open()


def test_the_real_nvml_library_reads_every_gpu_or_says_why_it_cannot() -> None:
    """With NVIDIA's driver this reads the machine's GPUs; without one (CI), NVML's own
    error comes back as NvmlUnavailable."""
    collector = NvmlCollector(host="h", fetch=import_pynvml)
    try:
        collector.open()
    except NvmlUnavailable as error:
        message = str(error)
    else:
        message = ""
    if message:
        assert message.startswith("NVML cannot be initialised: ")
        return
    try:
        samples = collector.collect()
    finally:
        collector.close()
    utilization = [s for s in samples if s["name"] == names.GPU_UTILIZATION_PCT]
    assert len(utilization) == collector.num_gpus > 0
    assert all(0 <= s["value"] <= 100 for s in utilization)
    totals = [s["value"] for s in samples if s["name"] == names.GPU_MEMORY_TOTAL_MB]
    assert all(total > 1024 for total in totals)
