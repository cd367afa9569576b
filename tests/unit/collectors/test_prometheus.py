from __future__ import annotations

import csv
import datetime as dt
import math
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.prometheus import (
    DCGM_GPU_METRICS,
    DCGM_SKIPPED,
    DCGM_THROTTLE_FIELDS,
    DCGM_VIOLATION_COUNTERS,
    PrometheusCollector,
    PrometheusDecoder,
    ScrapeError,
    http_fetch,
    is_blank,
    parse_exposition,
    target_host,
)

DATA = Path(__file__).parents[2] / "data" / "prometheus"
T0 = dt.datetime(2026, 11, 16, 14, 5, tzinfo=dt.UTC)


def text(name: str) -> str:
    return (DATA / name).read_text()


def decode(*names: str, seconds_apart: float = 15.0, **options: Any) -> list[dict[str, Any]]:
    """The samples of the last of several scrapes given to one decoder, `seconds_apart`."""
    decoder = PrometheusDecoder(default_host="scrape-target", **options)
    samples: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        at = T0 + dt.timedelta(seconds=seconds_apart * index)
        samples = decoder.decode(text(name), scraped_at=at)
    return samples


def table(samples: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for sample in samples:
        key = (sample["resource"], sample["name"])
        assert key not in found, f"{key} twice"
        found[key] = sample["value"]
    return found


# --- dcgm-exporter --------------------------------------------------------------------------


def test_every_default_dcgm_exporter_counter_is_mapped_or_deliberately_skipped() -> None:
    with (DATA / "dcgm-default-counters.csv").open() as file:
        rows = [row for row in csv.reader(file) if row and not row[0].lstrip().startswith("#")]
    fields = {row[0].strip(): row[1].strip() for row in rows}
    metrics = {name for name, kind in fields.items() if kind != "label"}
    known = set(DCGM_GPU_METRICS) | DCGM_SKIPPED | DCGM_THROTTLE_FIELDS
    known |= set(DCGM_VIOLATION_COUNTERS)

    assert len(metrics) > 20
    assert sorted(metrics - known) == []


def test_a_default_dcgm_scrape_maps_onto_the_well_known_names() -> None:
    found = table(decode("dcgm-exporter.txt"))

    assert found[("gpu0", "gpu_utilization_pct")] == 87
    assert found[("gpu0", "gpu_memory_used_mb")] == 63_537
    assert found[("gpu0", "gpu_memory_free_mb")] == 17_103
    assert found[("gpu0", "gpu_memory_total_mb")] == 63_537 + 17_103 + 719  # used+free+reserved
    assert found[("gpu0", "gpu_temperature_c")] == 71
    assert found[("gpu0", "gpu_memory_temperature_c")] == 61
    assert found[("gpu0", "gpu_power_w")] == pytest.approx(612.437)
    assert found[("gpu0", "gpu_sm_clock_mhz")] == 1_980
    assert found[("gpu0", "gpu_memory_clock_mhz")] == 2_619
    assert found[("gpu0", "gpu_energy_consumed_j")] == pytest.approx(1_845_123_987.432)
    assert found[("gpu0", "gpu_graphics_engine_active_pct")] == pytest.approx(91.234)
    assert found[("gpu0", "gpu_tensor_active_pct")] == pytest.approx(38.12)
    assert found[("gpu0", "gpu_pcie_rx_bytes_per_s")] == 3_927_712_410
    assert found[("gpu1", "gpu_sm_clock_mhz")] == 345
    assert found[("gpu1", "gpu_memory_total_mb")] == 0 + 80_640 + 719


def test_blank_sentinels_are_missing_not_values() -> None:
    found = table(decode("dcgm-exporter.txt"))

    # GPU 1 reports memory temperature as DCGM_INT64_NOT_SUPPORTED and tensor activity as
    # DCGM_FP64_NOT_SUPPORTED: neither may appear, as a number or as zero
    assert ("gpu1", "gpu_memory_temperature_c") not in found
    assert ("gpu1", "gpu_tensor_active_pct") not in found
    assert all(abs(value) < 1e13 for value in found.values())
    assert ("gpu0", "gpu_memory_temperature_c") in found


def test_dcgm_labels_become_tags_and_hostname_the_host() -> None:
    samples = decode("dcgm-exporter.txt")
    gpu0 = next(s for s in samples if s["resource"] == "gpu0")
    gpu1 = next(s for s in samples if s["resource"] == "gpu1")

    assert {s["host"] for s in samples} == {"gpu-node-3"}
    assert gpu0["tags"] == {
        "gpu": "0",
        "UUID": "GPU-5d3f1b7e-93c4-2a8e-6f0d-41b2c9e87a10",
        "pci_bus_id": "00000000:18:00.0",
        "device": "nvidia0",
        "modelName": "NVIDIA H100 80GB HBM3",
        "DCGM_FI_DRIVER_VERSION": "550.54.15",
        "container": "kserve-container",
        "namespace": "ml-serving",
        "pod": "fraud-scorer-predictor-7d9f8b6c5-x2lqp",
    }
    assert "pod" not in gpu1["tags"]
    assert {s["timestamp"] for s in samples} == {T0}


def test_licensing_state_is_not_a_metric() -> None:
    names = {s["name"] for s in decode("dcgm-exporter.txt", keep_unknown=True)}

    assert not any("license" in name.lower() for name in names)


def test_throttle_reasons_mig_instances_and_violation_rates() -> None:
    first = table(decode("dcgm-exporter-custom-1.txt"))
    second = table(
        decode("dcgm-exporter-custom-1.txt", "dcgm-exporter-custom-2.txt", seconds_apart=30)
    )

    # 0x4 (power cap), then 0x24 (power cap + thermal); GPU 1 idles (0x1): not throttled
    assert (first[("gpu0", "gpu_throttle_reasons")], first[("gpu0", "gpu_throttled")]) == (4, 1)
    assert second[("gpu0", "gpu_throttle_reasons")] == 36
    assert (second[("gpu1", "gpu_throttle_reasons")], second[("gpu1", "gpu_throttled")]) == (1, 0)
    # violation counters are ns of throttling: 16.8 s and 7.5 s within the 30 s between scrapes
    assert ("gpu0", "gpu_power_throttled_pct") not in first
    assert second[("gpu0", "gpu_power_throttled_pct")] == pytest.approx(56.0)
    assert second[("gpu0", "gpu_thermal_throttled_pct")] == pytest.approx(25.0)
    # each MIG instance is a resource of its own
    assert second[("gpu1-mig1", "gpu_memory_used_mb")] == 20_121
    assert second[("gpu1-mig2", "gpu_memory_used_mb")] == 9
    assert second[("gpu1-mig1", "gpu_sm_active_pct")] == pytest.approx(42.1002)
    # NaN is missing
    assert ("gpu0", "gpu_sm_active_pct") in first
    assert ("gpu0", "gpu_sm_active_pct") not in second


def test_mig_instances_keep_their_profile_as_a_tag() -> None:
    samples = decode("dcgm-exporter-custom-1.txt")
    mig = next(s for s in samples if s["resource"] == "gpu1-mig2")

    assert mig["tags"]["GPU_I_PROFILE"] == "3g.40gb"
    assert mig["tags"]["GPU_I_ID"] == "2"
    assert mig["host"] == "dgx-a100-07"


def test_a_counter_that_went_back_gives_no_rate() -> None:
    samples = decode("dcgm-exporter-custom-2.txt", "dcgm-exporter-custom-1.txt", seconds_apart=30)

    assert "gpu_power_throttled_pct" not in {s["name"] for s in samples}


# --- node-exporter ---------------------------------------------------------------------------


def test_node_exporter_cpu_utilization_needs_two_scrapes() -> None:
    first = table(decode("node-exporter-1.txt"))
    second = table(decode("node-exporter-1.txt", "node-exporter-2.txt"))

    assert ("cpu", "cpu_utilization_pct") not in first
    # 4 CPUs x 15 s = 60 s, of which 27.5 s busy (7.5 + 4 + 1.5 + 14.5); idle and iowait not
    assert second[("cpu", "cpu_utilization_pct")] == pytest.approx(27.5 / 60 * 100)


def test_node_exporter_memory_and_load() -> None:
    first = table(decode("node-exporter-1.txt"))

    assert first[("memory", "memory_total_mb")] == 64 * 1024
    assert first[("memory", "memory_used_mb")] == 24 * 1024  # MemTotal - MemAvailable
    assert first[("cpu", "cpu_load_1m")] == pytest.approx(3.41)
    assert first[("cpu", "cpu_load_15m")] == pytest.approx(2.97)


def test_memory_used_without_memavailable_counts_buffers_and_cache_as_free() -> None:
    scrape = "\n".join(
        line for line in text("node-exporter-1.txt").splitlines() if "MemAvailable" not in line
    )
    decoder = PrometheusDecoder(default_host="h")

    found = table(decoder.decode(scrape, scraped_at=T0))

    # 64 GiB - 12 GiB free - 1 GiB buffers - 27 GiB cache
    assert found[("memory", "memory_used_mb")] == pytest.approx(65536 - 12288 - 1024 - 27648)


def test_node_exporter_samples_take_the_targets_host() -> None:
    samples = decode("node-exporter-1.txt")

    assert {s["host"] for s in samples} == {"scrape-target"}
    assert all("tags" not in s for s in samples)


def test_unknown_metrics_are_skipped_unless_asked_for() -> None:
    plain = decode("node-exporter-1.txt")
    kept = table(decode("node-exporter-1.txt", keep_unknown=True))

    assert {s["name"] for s in plain} == {
        "cpu_load_1m",
        "cpu_load_5m",
        "cpu_load_15m",
        "memory_total_mb",
        "memory_used_mb",
    }
    assert kept[
        ("device=/dev/nvme0n1p2,fstype=ext4,mountpoint=/", "node_filesystem_avail_bytes")
    ] == (308_617_158_656)
    assert kept[("quantile=0.5", "go_gc_duration_seconds")] == pytest.approx(4.6972e-05)
    assert kept[("host", "go_goroutines")] == 8
    # known metrics keep their observe names, once
    assert kept[("memory", "memory_total_mb")] == 64 * 1024
    assert ("host", "node_memory_MemTotal_bytes") not in kept


# --- hosts, parsing ----------------------------------------------------------------------------


def test_a_given_host_overrides_labels_and_target() -> None:
    samples = decode("dcgm-exporter.txt", host="rack-7-node-3")

    assert {s["host"] for s in samples} == {"rack-7-node-3"}


def test_a_loopback_target_is_this_machine() -> None:
    assert target_host("http://127.0.0.1:9400/metrics") == socket.gethostname()
    assert target_host("http://localhost:9100/metrics") == socket.gethostname()
    assert target_host("http://[::1]:9100/metrics") == socket.gethostname()
    assert target_host("http://gpu-node-3:9400/metrics") == "gpu-node-3"


@pytest.mark.parametrize(
    "value",
    [
        0x7FFFFFFFFFFFFFF0,  # DCGM_INT64_BLANK
        9_223_372_036_854_775_794,  # DCGM_INT64_NOT_SUPPORTED
        0x7FFFFFFFFFFFFFF3,
        float(2**63),  # the same as a double
        0x7FFFFFF0,  # DCGM_INT32_BLANK
        0x7FFFFFF2,
        140_737_488_355_328.0,  # DCGM_FP64_BLANK
        140_737_488_355_330.0,  # DCGM_FP64_NOT_SUPPORTED
        math.nan,
        math.inf,
        -math.inf,
    ],
)
def test_blank_values(value: float) -> None:
    assert is_blank(value)


@pytest.mark.parametrize(
    "value", [0, 87, 612.437, 1_845_123_987_432, 2_147_483_632.0, 140_737_488_355_000.0, -3.5]
)
def test_real_values(value: float) -> None:
    assert not is_blank(value)


def test_parse_keeps_exact_names_labels_escapes_and_timestamps() -> None:
    exposition = (
        "# HELP odd A metric with escapes.\n"
        "# TYPE odd counter\n"
        'odd{path="C:\\\\temp",quote="say \\"hi\\"",line="a\\nb",brace="}"} 3 1794830400123\n'
        "plain 1.5e+06\n"
        'trailing{a="1",} -Inf\n'
    )

    series = list(parse_exposition(exposition, scraped_at=T0))

    assert len(series) == 2  # -Inf is a missing value
    assert series[0].name == "odd"  # not odd_total
    assert series[0].labels == {
        "path": "C:\\temp",
        "quote": 'say "hi"',
        "line": "a\nb",
        "brace": "}",
    }
    assert series[0].value == 3
    assert series[0].timestamp == dt.datetime(2026, 11, 16, 12, 0, 0, 123000, tzinfo=dt.UTC)
    assert (series[1].name, series[1].value, series[1].timestamp) == ("plain", 1.5e6, T0)


@pytest.mark.parametrize("fixture", ["dcgm-exporter.txt", "node-exporter-2.txt"])
def test_parse_agrees_with_prometheus_client_but_keeps_counter_names(fixture: str) -> None:
    """Values and labels match prometheus_client's parser; names too, except that it appends
    _total to counter samples that lack it (DCGM's counters)."""
    ours = [(s.name, s.labels, s.value) for s in parse_exposition(text(fixture), scraped_at=T0)]
    theirs = [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text(fixture))
        for s in family.samples
        if not is_blank(s.value)
    ]

    assert len(ours) == len(theirs)
    renamed = 0
    for (name, labels, value), (their_name, their_labels, their_value) in zip(
        ours, theirs, strict=True
    ):
        assert (labels, value) == (their_labels, their_value)
        if name != their_name:
            assert their_name == f"{name}_total"
            renamed += 1
    expected_renames = 10 if fixture == "dcgm-exporter.txt" else 0  # 5 counters x 2 GPUs
    assert renamed == expected_renames


@pytest.mark.parametrize(
    ("exposition", "message"),
    [
        ("good 1\nbad line here\n", "line 2 is not a Prometheus sample"),
        ('x{a="1" b="2"} 1\n', "line 1: malformed labels"),
        ("x{a=1} 1\n", "line 1: malformed labels"),
        ("x one\n", "line 1: 'one' is not a number"),
        ("<html><body>404</body></html>\n", "line 1 is not a Prometheus sample"),
    ],
)
def test_malformed_text_is_refused_naming_the_line(exposition: str, message: str) -> None:
    with pytest.raises(ScrapeError, match=message):
        PrometheusDecoder(default_host="h").decode(exposition, scraped_at=T0)


# --- the pull collector ----------------------------------------------------------------------


def test_the_collector_scrapes_through_its_fetch_and_clock() -> None:
    scrapes = iter([text("node-exporter-1.txt"), text("node-exporter-2.txt")])
    times = iter([T0, T0 + dt.timedelta(seconds=15)])
    collector = PrometheusCollector(
        "http://gpu-node-3:9100/metrics", fetch=lambda: next(scrapes), now=lambda: next(times)
    )

    first = table(collector.collect())
    second = collector.collect()

    assert ("cpu", "cpu_utilization_pct") not in first
    cpu = next(s for s in second if s["name"] == "cpu_utilization_pct")
    assert cpu["value"] == pytest.approx(45.8333, abs=1e-3)
    assert cpu["host"] == "gpu-node-3"
    assert cpu["timestamp"] == T0 + dt.timedelta(seconds=15)


def test_an_endpoint_that_does_not_answer_is_a_scrape_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed

    with pytest.raises(ScrapeError, match=f"cannot scrape http://127.0.0.1:{port}/metrics"):
        http_fetch(f"http://127.0.0.1:{port}/metrics", timeout_seconds=2.0)()
