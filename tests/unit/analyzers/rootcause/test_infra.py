"""analyzers.rootcause.infra: GPU saturation and host health."""

from __future__ import annotations

from analyzers.rootcause import infra, isolate
from tests.unit.analyzers.rootcause import scenarios as sc


def run(check, scenario: sc.Scenario):  # type: ignore[no-untyped-def]
    inputs = sc.build(scenario)
    return check(inputs, isolate.describe_symptom(inputs))


def test_host_metrics_reduce_gpus_to_the_worst_per_host() -> None:
    scenario = sc.healthy()
    metrics = scenario.metrics.copy()
    extra = metrics[(metrics["resource"] == "gpu0") & (metrics["host"] == "gpu-1")].copy()
    extra["resource"] = "gpu1"
    extra.loc[extra["name"] == "gpu_utilization_pct", "mean"] = 99.0

    table = infra.host_metrics(metrics._append(extra)).set_index("host")

    assert table.loc["gpu-1", "gpu_utilization_pct:window"] == 99.0
    assert table.loc["gpu-2", "gpu_utilization_pct:window"] < 60
    assert 0.3 < table.loc["gpu-2", "gpu_memory_share:window"] < 0.4


def test_saturated_gpus_are_a_cause_only_with_a_slowdown() -> None:
    saturated = sc.healthy()
    sc.inject_gpu_saturation(saturated)
    busy_but_fine = sc.healthy()
    busy_but_fine.metrics = sc._metrics(
        busy_but_fine.rng, gpu_utilization_pct=dict.fromkeys(sc.HOSTS, (55.0, 98.0))
    )

    slow = run(infra.check_gpu_saturation, saturated)
    fine = run(infra.check_gpu_saturation, busy_but_fine)

    assert slow.status == "fail"
    # Saturated on every host: one cause for the fleet, naming the hosts.
    (cause,) = slow.causes
    assert cause.scope == {"model": sc.MODEL}
    assert cause.evidence["hosts"] == list(sc.HOSTS)
    assert fine.status == "fail"
    assert fine.causes == ()


def test_gpus_that_were_always_busy_are_not_news() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms *= 2
    scenario.metrics = sc._metrics(
        scenario.rng, gpu_utilization_pct=dict.fromkeys(sc.HOSTS, (96.0, 97.0))
    )

    assert run(infra.check_gpu_saturation, scenario).status == "pass"


def test_a_throttled_hot_host_is_degraded() -> None:
    scenario = sc.healthy()
    sc.inject_host(scenario, "gpu-4")

    result = run(infra.check_host_health, scenario)

    [cause] = result.causes
    assert (cause.kind, cause.scope) == ("host_degradation", {"host": "gpu-4"})
    assert set(cause.evidence["signals"]) == {"temperature", "throttling", "sm_clock"}


def test_without_metrics_infra_checks_are_skipped() -> None:
    scenario = sc.healthy()
    scenario.metrics = scenario.metrics.iloc[0:0]

    assert run(infra.check_gpu_saturation, scenario).status == "skipped"
    assert run(infra.check_host_health, scenario).status == "skipped"


def test_gpu_memory_full_on_one_host_says_drain_that_host() -> None:
    scenario = sc.healthy()
    scenario.window.latency_ms[scenario.window.host == "gpu-2"] *= 2.0
    scenario.metrics = sc._metrics(scenario.rng, gpu_memory_used_mb={"gpu-2": (30_000.0, 80_500.0)})

    result = run(infra.check_gpu_saturation, scenario)

    [cause] = result.causes
    assert cause.scope == {"host": "gpu-2"}
    assert "Drain gpu-2" in cause.action
