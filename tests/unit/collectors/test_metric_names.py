from __future__ import annotations

import pytest

from collectors import metric_names as names


def test_cpu_busy_pct_is_work_over_all_time_between_readings() -> None:
    before = {"user": 100.0, "system": 50.0, "idle": 800.0, "iowait": 50.0, "irq": 0.0}
    after = {"user": 130.0, "system": 60.0, "idle": 850.0, "iowait": 60.0, "irq": 0.0}
    # 40 s of work (user 30 + system 10) in 100 s (idle 50 and iowait 10 are not work)

    assert names.cpu_busy_pct(before, after) == pytest.approx(40.0)


def test_cpu_busy_pct_leaves_guest_time_out_of_the_total() -> None:
    # guest time is already inside user time on Linux; counting it again would inflate both
    before = {"user": 0.0, "idle": 0.0, "guest": 0.0, "guest_nice": 0.0}
    after = {"user": 10.0, "idle": 10.0, "guest": 10.0, "guest_nice": 5.0}

    assert names.cpu_busy_pct(before, after) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"user": 10.0, "idle": 10.0}, {"user": 10.0, "idle": 10.0}),  # no time passed
        ({"user": 10.0, "idle": 10.0}, {"user": 5.0, "idle": 30.0}),  # a counter went back
    ],
)
def test_cpu_busy_pct_is_none_without_a_rate(
    before: dict[str, float], after: dict[str, float]
) -> None:
    assert names.cpu_busy_pct(before, after) is None


@pytest.mark.parametrize(
    ("reasons", "throttled"),
    [
        (0, 0.0),
        (names.REASON_GPU_IDLE, 0.0),
        (names.REASON_GPU_IDLE | names.REASON_APPLICATIONS_CLOCKS_SETTING, 0.0),
        (names.REASON_SYNC_BOOST | names.REASON_DISPLAY_CLOCK_SETTING, 0.0),
        (names.REASON_SW_POWER_CAP, 1.0),
        (names.REASON_HW_SLOWDOWN, 1.0),
        (names.REASON_SW_THERMAL_SLOWDOWN | names.REASON_GPU_IDLE, 1.0),
        (names.REASON_HW_THERMAL_SLOWDOWN, 1.0),
        (names.REASON_HW_POWER_BRAKE_SLOWDOWN, 1.0),
    ],
)
def test_throttled_means_a_slowdown_reason_not_idle_or_clock_settings(
    reasons: int, throttled: float
) -> None:
    assert names.throttle_values(reasons) == {
        "gpu_throttle_reasons": float(reasons),
        "gpu_throttled": throttled,
    }


@pytest.mark.parametrize(
    ("ours", "nvml_name"),
    [
        (names.REASON_GPU_IDLE, "nvmlClocksEventReasonGpuIdle"),
        (
            names.REASON_APPLICATIONS_CLOCKS_SETTING,
            "nvmlClocksEventReasonApplicationsClocksSetting",
        ),
        (names.REASON_SW_POWER_CAP, "nvmlClocksEventReasonSwPowerCap"),
        (names.REASON_HW_SLOWDOWN, "nvmlClocksEventReasonHwSlowdown"),
        (names.REASON_SYNC_BOOST, "nvmlClocksEventReasonSyncBoost"),
        (names.REASON_SW_THERMAL_SLOWDOWN, "nvmlClocksEventReasonSwThermalSlowdown"),
        (names.REASON_HW_THERMAL_SLOWDOWN, "nvmlClocksEventReasonHwThermalSlowdown"),
        (names.REASON_HW_POWER_BRAKE_SLOWDOWN, "nvmlClocksEventReasonHwPowerBrakeSlowdown"),
        (names.REASON_DISPLAY_CLOCK_SETTING, "nvmlClocksEventReasonDisplayClockSetting"),
    ],
)
def test_reason_bits_are_nvmls(ours: int, nvml_name: str) -> None:
    pynvml = pytest.importorskip("pynvml")

    assert getattr(pynvml, nvml_name) == ours
