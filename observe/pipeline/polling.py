"""Running a pull collector until stopped: poll every interval, hand the samples to a sink.

`observe collect gpu|prometheus` wire a collector (collectors.nvml, collectors.host,
collectors.prometheus) to the SDK client here. The client buffers, batches and retries with
backoff, so a server that is down only delays delivery: samples polled meanwhile wait in its
bounded buffer and go out once the server answers again.

A poll that fails (an exporter that does not answer, a GPU that stops responding) is logged
and skipped; the next poll tries again. Rates (CPU utilization, throttled time) need a baseline,
so `once` takes a first reading, waits `warmup_seconds`, and hands on only the second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

Samples = list[dict[str, Any]]


class Collector(Protocol):
    def open(self) -> None: ...

    def collect(self) -> Samples: ...

    def close(self) -> None: ...


class PollFailed(RuntimeError):
    """A poll raised; in `once` mode this ends the run."""


@dataclass
class PollStats:
    """What a run did: polls made, polls that failed, samples handed to the sink."""

    num_polls: int = 0
    num_failed_polls: int = 0
    num_samples: int = 0
    last_error: str | None = None


def poll_until_stopped(
    collectors: Sequence[Collector],
    send: Callable[[Samples], None],
    *,
    interval_seconds: float,
    stop: threading.Event,
    once: bool = False,
    warmup_seconds: float = 1.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> PollStats:
    """Poll every collector each `interval_seconds` until `stop` is set (or once).

    Args:
        collectors: opened pull collectors; their samples of one poll go to `send` together.
        send: receives each poll's samples (e.g. queues them in the SDK client).
        interval_seconds: time from the start of one poll to the start of the next.
        stop: set it (e.g. from a signal handler) to end the run after the current poll.
        once: take one reading (after a warm-up reading) and return.
        warmup_seconds: in `once` mode, the wait between the warm-up reading and the real one.
        monotonic: the clock that paces polls.

    Raises:
        PollFailed: in `once` mode, when the reading fails.
    """
    stats = PollStats()
    if once:
        _poll(collectors, stats, strict=True)  # the baseline of rates, not sent
        stats.num_polls = 0
        stop.wait(warmup_seconds)
        send_samples(send, _poll(collectors, stats, strict=True), stats)
        return stats
    next_at = monotonic()
    while not stop.is_set():
        send_samples(send, _poll(collectors, stats, strict=False), stats)
        next_at += interval_seconds
        # A poll slower than the interval starts the next one at once, without catching up.
        next_at = max(next_at, monotonic())
        stop.wait(max(0.0, next_at - monotonic()))
    return stats


def send_samples(send: Callable[[Samples], None], samples: Samples, stats: PollStats) -> None:
    if samples:
        send(samples)
        stats.num_samples += len(samples)


def _poll(collectors: Sequence[Collector], stats: PollStats, *, strict: bool) -> Samples:
    stats.num_polls += 1
    samples: Samples = []
    for collector in collectors:
        try:
            samples.extend(collector.collect())
        except Exception as error:
            stats.num_failed_polls += 1
            stats.last_error = f"{type(error).__name__}: {error}"
            if strict:
                raise PollFailed(str(error)) from error
            log.warning("poll of %s failed: %s", type(collector).__name__, stats.last_error)
    return samples


def client_sink(client: Any) -> Callable[[Samples], None]:
    """`send` for `poll_until_stopped` that queues samples in an `observe.client.Client`;
    samples of one resource and time go in one `log_metrics` call."""

    def send(samples: Samples) -> None:
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for item in samples:
            tags = item.get("tags") or {}
            key = (item["host"], item["resource"], item["timestamp"], _frozen(tags))
            group = groups.setdefault(key, {"tags": tags, "values": {}})
            group["values"][item["name"]] = item["value"]
        for (host, resource, timestamp, _), group in groups.items():
            client.log_metrics(
                host=host,
                resource=resource,
                values=group["values"],
                tags=group["tags"] or None,
                timestamp=timestamp,
            )

    return send


def _frozen(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(tags.items()))
