"""Metric samples from a Prometheus text endpoint: NVIDIA's dcgm-exporter and node-exporter.

`PrometheusCollector` is a pull collector: it receives the scrape (`fetch=`, by default an HTTP
GET of the URL) and its clock (`now=`). `parse_exposition` reads the text format; the known
metric names (DCGM_GPU_METRICS, NODE_METRICS below, and the README's tables) become
observe's metric samples (DESIGN 3.1):

- dcgm-exporter series carry a ``gpu`` label: the resource is ``gpu<N>`` (``gpu<N>-mig<I>``
  for a MIG instance, whose ``GPU_I_ID`` label names it). The exporter's labels are kept as
  tags (empty ones dropped); ``Hostname`` gives the host. ``gpu_memory_total_mb`` is derived
  as FB used + free + reserved (reserved where the exporter sends it).
- node-exporter's ``node_cpu_seconds_total`` counters become ``cpu_utilization_pct`` of the
  whole host, a rate between two scrapes (none on the first scrape); memory comes from
  ``node_memory_MemTotal_bytes`` and ``node_memory_MemAvailable_bytes``.
- DCGM reports a field it cannot read as a "blank" sentinel: 0x7ffffffffffffff0 and up (near
  2^63) for 64-bit integers, 0x7ffffff0 and up for 32-bit ones, 2^47 and the next few values
  for doubles. Those, NaN and infinities are missing values: the sample is left out.
- Metrics not in the tables are skipped, unless `keep_unknown` is set: then each is kept under
  its own name, with resource ``gpu<N>`` where it has a ``gpu`` label, else its labels
  (``mountpoint=/,device=/dev/sda1``) or ``host``.

The host of a sample is, in order: the `host` given, the series' ``Hostname`` label, the
scrape target's host name (this machine's name when the target is on loopback).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
import re
import socket
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from collectors import metric_names as names

Clock = Callable[[], dt.datetime]

INT64_BLANK = 0x7FFFFFFFFFFFFFF0
INT32_BLANK = 0x7FFFFFF0
INT32_MAX = 0x7FFFFFFF
FP64_BLANK = 2.0**47
#: Blank codes are BLANK + 0..15 (blank, not found, not supported, not permissioned, ...).
NUM_BLANK_CODES = 16
#: Values this close below 2^63 are sentinels too: as doubles they cannot be told apart.
INT64_BLANK_FLOAT = 2.0**63 - 2.0**12

ACCEPT = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
MAX_TAG_KEY_LENGTH = 100
MAX_NAME_LENGTH = 200


class ScrapeError(RuntimeError):
    """The endpoint could not be scraped or its answer is not Prometheus text."""


@dataclass(frozen=True)
class MetricMapping:
    """How a known series becomes a sample: its name, and a factor for the unit."""

    name: str
    scale: float = 1.0


#: dcgm-exporter fields (DCGM_FI_*, see NVIDIA's etc/default-counters.csv and the DCGM field
#: reference) and the samples they become. Ratios (0..1) of the profiling fields become %.
DCGM_GPU_METRICS: dict[str, MetricMapping] = {
    "DCGM_FI_DEV_GPU_UTIL": MetricMapping(names.GPU_UTILIZATION_PCT),
    "DCGM_FI_DEV_MEM_COPY_UTIL": MetricMapping(names.GPU_MEMORY_UTILIZATION_PCT),
    "DCGM_FI_DEV_ENC_UTIL": MetricMapping("gpu_encoder_utilization_pct"),
    "DCGM_FI_DEV_DEC_UTIL": MetricMapping("gpu_decoder_utilization_pct"),
    "DCGM_FI_DEV_FB_USED": MetricMapping(names.GPU_MEMORY_USED_MB),
    "DCGM_FI_DEV_FB_FREE": MetricMapping(names.GPU_MEMORY_FREE_MB),
    "DCGM_FI_DEV_FB_RESERVED": MetricMapping("gpu_memory_reserved_mb"),
    "DCGM_FI_DEV_GPU_TEMP": MetricMapping(names.GPU_TEMPERATURE_C),
    "DCGM_FI_DEV_MEMORY_TEMP": MetricMapping(names.GPU_MEMORY_TEMPERATURE_C),
    "DCGM_FI_DEV_POWER_USAGE": MetricMapping(names.GPU_POWER_W),
    "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": MetricMapping(names.GPU_POWER_LIMIT_W),
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": MetricMapping(names.GPU_POWER_LIMIT_W),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": MetricMapping("gpu_energy_consumed_j", 0.001),
    "DCGM_FI_DEV_SM_CLOCK": MetricMapping(names.GPU_SM_CLOCK_MHZ),
    "DCGM_FI_DEV_MEM_CLOCK": MetricMapping(names.GPU_MEMORY_CLOCK_MHZ),
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": MetricMapping("gpu_pcie_replays"),
    "DCGM_FI_DEV_XID_ERRORS": MetricMapping("gpu_last_xid"),
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": MetricMapping("gpu_nvlink_bandwidth_total"),
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": MetricMapping("gpu_remapped_rows_uncorrectable"),
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": MetricMapping("gpu_remapped_rows_correctable"),
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": MetricMapping("gpu_row_remap_failure"),
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": MetricMapping("gpu_graphics_engine_active_pct", 100.0),
    "DCGM_FI_PROF_SM_ACTIVE": MetricMapping("gpu_sm_active_pct", 100.0),
    "DCGM_FI_PROF_SM_OCCUPANCY": MetricMapping("gpu_sm_occupancy_pct", 100.0),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": MetricMapping("gpu_tensor_active_pct", 100.0),
    "DCGM_FI_PROF_DRAM_ACTIVE": MetricMapping("gpu_dram_active_pct", 100.0),
    "DCGM_FI_PROF_PIPE_FP64_ACTIVE": MetricMapping("gpu_fp64_active_pct", 100.0),
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE": MetricMapping("gpu_fp32_active_pct", 100.0),
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE": MetricMapping("gpu_fp16_active_pct", 100.0),
    "DCGM_FI_PROF_PCIE_TX_BYTES": MetricMapping("gpu_pcie_tx_bytes_per_s"),
    "DCGM_FI_PROF_PCIE_RX_BYTES": MetricMapping("gpu_pcie_rx_bytes_per_s"),
    "DCGM_FI_PROF_NVLINK_TX_BYTES": MetricMapping("gpu_nvlink_tx_bytes_per_s"),
    "DCGM_FI_PROF_NVLINK_RX_BYTES": MetricMapping("gpu_nvlink_rx_bytes_per_s"),
}
#: Clock-event reason bitmasks: gpu_throttle_reasons and gpu_throttled (collectors.metric_names).
DCGM_THROTTLE_FIELDS = frozenset(
    {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"}
)
#: Throttling-time counters (ns): their rate between scrapes is the share of time throttled.
DCGM_VIOLATION_COUNTERS: dict[str, str] = {
    "DCGM_FI_DEV_POWER_VIOLATION": "gpu_power_throttled_pct",
    "DCGM_FI_DEV_THERMAL_VIOLATION": "gpu_thermal_throttled_pct",
}
#: The parts of a GPU's memory: used + free + reserved = total.
FRAMEBUFFER_FIELDS = ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED")
#: dcgm-exporter fields deliberately not mapped: licensing state, not performance.
DCGM_SKIPPED = frozenset({"DCGM_FI_DEV_VGPU_LICENSE_STATUS"})

#: node-exporter gauges that map one to one (resource, sample name, factor).
NODE_METRICS: dict[str, tuple[str, MetricMapping]] = {
    "node_load1": ("cpu", MetricMapping("cpu_load_1m")),
    "node_load5": ("cpu", MetricMapping("cpu_load_5m")),
    "node_load15": ("cpu", MetricMapping("cpu_load_15m")),
    "node_memory_MemTotal_bytes": ("memory", MetricMapping(names.MEMORY_TOTAL_MB, 1 / names.MIB)),
}
NODE_CPU_SECONDS = "node_cpu_seconds_total"
NODE_MEMORY_FIELDS = {
    "node_memory_MemTotal_bytes": "total",
    "node_memory_MemAvailable_bytes": "available",
    "node_memory_MemFree_bytes": "free",
    "node_memory_Buffers_bytes": "buffers",
    "node_memory_Cached_bytes": "cached",
}
#: Labels that say where a series comes from rather than what it is.
HOST_LABELS = ("Hostname",)
SCRAPE_LABELS = frozenset({"Hostname", "instance", "job"})


def is_blank(value: float) -> bool:
    """Whether a scraped value is a DCGM blank sentinel, NaN or infinite: a missing value.

    The 32-bit integer sentinels are only looked for in values written as integers: DCGM
    writes doubles with a decimal point, and a rate of 2147483640.0 bytes/s is a real value.
    """
    if not math.isfinite(value):
        return True
    if value >= INT64_BLANK_FLOAT:
        return True
    if isinstance(value, int) and INT32_BLANK <= value <= INT32_MAX:
        return True
    return FP64_BLANK <= value < FP64_BLANK + NUM_BLANK_CODES


@dataclass(frozen=True)
class Series:
    """One sample of the scrape with its source labels."""

    name: str
    labels: dict[str, str]
    value: float
    timestamp: dt.datetime


def parse_exposition(text: str, *, scraped_at: dt.datetime) -> Iterator[Series]:
    """Samples of a Prometheus text exposition (format 0.0.4), blank sentinels and NaN left out.

    Metric names are kept exactly as the exporter wrote them. (prometheus_client's parser
    appends ``_total`` to every sample of a counter family that lacks it, so DCGM's counters,
    named without the suffix, would not come back under their own names;
    benchmarks/prometheus_parse.py compares the two.)

    Args:
        text: the scrape body.
        scraped_at: the time of samples that carry no timestamp of their own.

    Raises:
        ScrapeError: a line is not a comment, a blank line or a well-formed sample.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        series = _parse_sample(stripped, number, scraped_at)
        if not is_blank(series.value):
            yield series


_SAMPLE = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)[ \t]*(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*"
)
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}
_INTEGER = re.compile(r"[+-]?\d+")


def _parse_sample(line: str, number: int, scraped_at: dt.datetime) -> Series:
    match = _SAMPLE.fullmatch(line)
    if match is None:
        raise ScrapeError(f"line {number} is not a Prometheus sample: {line[:200]!r}")
    name, label_text, value_text, timestamp_ms = match.groups()
    labels = _parse_labels(label_text or "", number)
    try:
        value: float = int(value_text) if _INTEGER.fullmatch(value_text) else float(value_text)
    except ValueError:
        raise ScrapeError(f"line {number}: {value_text[:50]!r} is not a number") from None
    when = scraped_at
    if timestamp_ms is not None:
        when = dt.datetime.fromtimestamp(int(timestamp_ms) / 1000.0, tz=dt.UTC)
    return Series(name, labels, value, when)


def _parse_labels(text: str, number: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text) and text[position:].strip():
        match = _LABEL.match(text, position)
        if match is None:
            raise ScrapeError(f"line {number}: malformed labels {{{text[:200]}}}")
        labels[match.group(1)] = _ESCAPE.sub(
            lambda m: _ESCAPES.get(m.group(1), m.group(0)), match.group(2)
        )
        position = match.end()
    return labels


@dataclass
class _Scrape:
    """Samples of one scrape being assembled, and the aggregates that need all of it."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    framebuffer: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cpu_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_at: dict[str, dt.datetime] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    memory_at: dict[str, dt.datetime] = field(default_factory=dict)


class PrometheusDecoder:
    """Turns scrapes into metric samples; remembers counters, so rates need two scrapes.

    Args:
        default_host: the host of series without a ``Hostname`` label.
        host: if given, the host of every sample.
        keep_unknown: keep metrics not in the tables under their own name.
    """

    def __init__(
        self, *, default_host: str, host: str | None = None, keep_unknown: bool = False
    ) -> None:
        self._default_host = default_host
        self._host = host
        self._keep_unknown = keep_unknown
        self._counters: dict[tuple[str, str, str], tuple[float, dt.datetime]] = {}
        self._cpu: dict[str, tuple[dict[str, float], dt.datetime]] = {}

    def decode(self, text: str, *, scraped_at: dt.datetime) -> list[dict[str, Any]]:
        """Samples of one scrape (rates against the previous scrape given to this decoder).

        Raises:
            ScrapeError: the text is not Prometheus exposition format.
        """
        scrape = _Scrape()
        for series in parse_exposition(text, scraped_at=scraped_at):
            self._add(scrape, series)
        self._add_framebuffer_totals(scrape)
        self._add_cpu_utilization(scrape)
        self._add_memory_used(scrape)
        return scrape.samples

    # --- one series ---------------------------------------------------------------------------

    def _add(self, scrape: _Scrape, series: Series) -> None:
        name = series.name
        if "gpu" in series.labels and (
            name in DCGM_GPU_METRICS
            or name in DCGM_THROTTLE_FIELDS
            or name in DCGM_VIOLATION_COUNTERS
        ):
            self._add_gpu(scrape, series)
        elif name == NODE_CPU_SECONDS and "mode" in series.labels:
            host = self._host_of(series)
            modes = scrape.cpu_seconds.setdefault(host, defaultdict(float))
            modes[series.labels["mode"]] += series.value
            scrape.cpu_at[host] = series.timestamp
        elif name in NODE_METRICS or name in NODE_MEMORY_FIELDS:
            self._add_node(scrape, series)
        elif self._keep_unknown and name not in DCGM_SKIPPED:
            self._emit(scrape, series, _unknown_resource(series.labels), name, series.value)

    def _add_gpu(self, scrape: _Scrape, series: Series) -> None:
        resource = _gpu_resource(series.labels)
        name = series.name
        if name in DCGM_THROTTLE_FIELDS:
            for sample_name, value in names.throttle_values(int(series.value)).items():
                self._emit(scrape, series, resource, sample_name, value)
        elif name in DCGM_VIOLATION_COUNTERS:
            self._add_violation_rate(scrape, series, resource, DCGM_VIOLATION_COUNTERS[name])
        else:
            mapping = DCGM_GPU_METRICS[name]
            self._emit(scrape, series, resource, mapping.name, series.value * mapping.scale)
            if name in FRAMEBUFFER_FIELDS:
                key = (self._host_of(series), resource)
                parts = scrape.framebuffer.setdefault(key, {"series": series})
                parts[name] = series.value

    def _add_violation_rate(
        self, scrape: _Scrape, series: Series, resource: str, sample_name: str
    ) -> None:
        key = (self._host_of(series), resource, series.name)
        previous = self._counters.get(key)
        self._counters[key] = (series.value, series.timestamp)
        if previous is None:
            return
        seconds = (series.timestamp - previous[1]).total_seconds()
        delta_ns = series.value - previous[0]
        if seconds > 0 and delta_ns >= 0:
            share_pct = min(100.0, 100.0 * delta_ns / (seconds * 1e9))
            self._emit(scrape, series, resource, sample_name, share_pct)

    def _add_node(self, scrape: _Scrape, series: Series) -> None:
        host = self._host_of(series)
        if series.name in NODE_MEMORY_FIELDS:
            scrape.memory.setdefault(host, {})[NODE_MEMORY_FIELDS[series.name]] = series.value
            scrape.memory_at[host] = series.timestamp
        if series.name in NODE_METRICS:
            resource, mapping = NODE_METRICS[series.name]
            self._emit(scrape, series, resource, mapping.name, series.value * mapping.scale)

    def _emit(
        self, scrape: _Scrape, series: Series, resource: str, name: str, value: float
    ) -> None:
        scrape.samples.append(
            names.sample(
                timestamp=series.timestamp,
                host=self._host_of(series),
                resource=resource,
                name=name,
                value=value,
                tags=_tags(series.labels),
            )
        )

    def _host_of(self, series: Series) -> str:
        if self._host:
            return self._host
        for label in HOST_LABELS:
            if series.labels.get(label):
                return series.labels[label][:MAX_NAME_LENGTH]
        return self._default_host

    # --- aggregates of the whole scrape --------------------------------------------------------

    def _add_framebuffer_totals(self, scrape: _Scrape) -> None:
        for (_host, resource), parts in scrape.framebuffer.items():
            if "DCGM_FI_DEV_FB_USED" in parts and "DCGM_FI_DEV_FB_FREE" in parts:
                total = sum(parts.get(part, 0.0) for part in FRAMEBUFFER_FIELDS)
                self._emit(scrape, parts["series"], resource, names.GPU_MEMORY_TOTAL_MB, total)

    def _add_cpu_utilization(self, scrape: _Scrape) -> None:
        for host, modes in scrape.cpu_seconds.items():
            at = scrape.cpu_at[host]
            previous = self._cpu.get(host)
            self._cpu[host] = (dict(modes), at)
            if previous is None:
                continue
            busy = names.cpu_busy_pct(previous[0], modes)
            if busy is not None:
                scrape.samples.append(
                    names.sample(
                        timestamp=at,
                        host=host,
                        resource="cpu",
                        name=names.CPU_UTILIZATION_PCT,
                        value=busy,
                    )
                )

    def _add_memory_used(self, scrape: _Scrape) -> None:
        for host, fields in scrape.memory.items():
            used = _memory_used_bytes(fields)
            if used is not None:
                scrape.samples.append(
                    names.sample(
                        timestamp=scrape.memory_at[host],
                        host=host,
                        resource="memory",
                        name=names.MEMORY_USED_MB,
                        value=used / names.MIB,
                    )
                )


def _memory_used_bytes(fields: dict[str, float]) -> float | None:
    """MemTotal - MemAvailable; on kernels without MemAvailable (before 3.14), free, buffers
    and page cache count as available."""
    if "total" not in fields:
        return None
    if "available" in fields:
        return max(0.0, fields["total"] - fields["available"])
    if {"free", "buffers", "cached"} <= fields.keys():
        return max(0.0, fields["total"] - fields["free"] - fields["buffers"] - fields["cached"])
    return None


def _gpu_resource(labels: dict[str, str]) -> str:
    resource = f"gpu{labels['gpu']}"
    instance = labels.get("GPU_I_ID")
    return f"{resource}-mig{instance}" if instance else resource


def _unknown_resource(labels: dict[str, str]) -> str:
    if labels.get("gpu"):
        return _gpu_resource(labels)
    identifying = sorted((k, v) for k, v in labels.items() if k not in SCRAPE_LABELS and v)
    if not identifying:
        return "host"
    text = ",".join(f"{key}={value}" for key, value in identifying)
    if len(text) <= MAX_NAME_LENGTH:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: MAX_NAME_LENGTH - 17]}~{digest}"


def _tags(labels: dict[str, str]) -> dict[str, str]:
    """The exporter's labels as tags: not the host label, nothing empty or over-long."""
    return {
        key: value
        for key, value in labels.items()
        if key not in HOST_LABELS
        and value
        and len(key) <= MAX_TAG_KEY_LENGTH
        and len(value) <= MAX_NAME_LENGTH
        and "\x00" not in value
    }


def target_host(url: str) -> str:
    """The scrape target's host name; this machine's name when the target is on loopback."""
    host = urlsplit(url).hostname or ""
    if not host or host == "localhost" or _is_loopback_address(host):
        return socket.gethostname()
    return host


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_fetch(url: str, *, timeout_seconds: float = 5.0) -> Callable[[], str]:
    """A fetch function: GET the URL, return its text, raise `ScrapeError` on any failure."""

    def fetch() -> str:
        try:
            response = httpx.get(url, headers={"Accept": ACCEPT}, timeout=timeout_seconds)
        except httpx.HTTPError as error:
            raise ScrapeError(f"cannot scrape {url}: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise ScrapeError(f"cannot scrape {url}: HTTP {response.status_code}")
        return response.text

    return fetch


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PrometheusCollector:
    """Scrapes one Prometheus endpoint per `collect()`.

    Args:
        url: the endpoint, e.g. ``http://gpu-node-3:9400/metrics``.
        host: if given, the host of every sample (else ``Hostname`` label, else the target).
        keep_unknown: keep metrics not in the tables under their own name.
        fetch: returns the scrape text (default: an HTTP GET of `url`); raises `ScrapeError`.
        now: the clock that stamps samples without a timestamp of their own.
    """

    def __init__(
        self,
        url: str,
        *,
        host: str | None = None,
        keep_unknown: bool = False,
        fetch: Callable[[], str] | None = None,
        now: Clock = utc_now,
    ) -> None:
        self.url = url
        self._fetch = fetch or http_fetch(url)
        self._now = now
        self._decoder = PrometheusDecoder(
            default_host=target_host(url), host=host, keep_unknown=keep_unknown
        )

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def collect(self) -> list[dict[str, Any]]:
        """Samples of one scrape.

        Raises:
            ScrapeError: the endpoint did not answer or did not answer Prometheus text.
        """
        scraped_at = self._now()
        return self._decoder.decode(self._fetch(), scraped_at=scraped_at)
