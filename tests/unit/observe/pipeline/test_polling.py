from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from observe.pipeline.polling import PollFailed, client_sink, poll_until_stopped

T0 = dt.datetime(2026, 11, 16, 14, 5, tzinfo=dt.UTC)


class Counting:
    """A collector whose n-th reading is one sample with value n; readings in `failing` raise."""

    def __init__(self, failing: set[int] | None = None) -> None:
        self.num_readings = 0
        self.failing = failing or set()

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def collect(self) -> list[dict[str, Any]]:
        self.num_readings += 1
        if self.num_readings in self.failing:
            raise ConnectionError(f"reading {self.num_readings} failed")
        return [{"host": "h", "resource": "gpu0", "name": "n", "value": self.num_readings}]


def run(collector: Counting, *, polls: int, **options: Any) -> tuple[list[list[Any]], Any]:
    stop = threading.Event()
    sent: list[list[Any]] = []

    def send(samples: list[Any]) -> None:
        sent.append([s["value"] for s in samples])
        if len(sent) == polls:
            stop.set()

    stats = poll_until_stopped([collector], send, interval_seconds=0.001, stop=stop, **options)
    return sent, stats


def test_polls_until_stopped_and_a_failed_poll_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    sent, stats = run(Counting(failing={2}), polls=3)

    assert sent == [[1], [3], [4]]
    assert (stats.num_polls, stats.num_failed_polls, stats.num_samples) == (4, 1, 3)
    assert "reading 2 failed" in caplog.text


def test_once_sends_the_reading_after_a_warm_up_reading() -> None:
    collector = Counting()

    sent, stats = run(collector, polls=1, once=True, warmup_seconds=0.0)

    assert sent == [[2]]  # the first reading is the baseline of rates
    assert (stats.num_polls, stats.num_samples) == (1, 1)


def test_once_fails_when_its_reading_fails() -> None:
    with pytest.raises(PollFailed, match="reading 2 failed"):
        run(Counting(failing={2}), polls=1, once=True, warmup_seconds=0.0)


def test_samples_of_one_resource_and_time_go_to_the_client_together() -> None:
    class Client:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def log_metrics(self, **call: Any) -> bool:
            self.calls.append(call)
            return True

    client = Client()
    tags = {"UUID": "GPU-1"}
    samples = [
        {"timestamp": T0, "host": "h", "resource": "gpu0", "name": "a", "value": 1.0, "tags": tags},
        {"timestamp": T0, "host": "h", "resource": "gpu0", "name": "b", "value": 2.0, "tags": tags},
        {"timestamp": T0, "host": "h", "resource": "cpu", "name": "c", "value": 3.0},
    ]

    client_sink(client)(samples)

    assert client.calls == [
        {
            "host": "h",
            "resource": "gpu0",
            "values": {"a": 1.0, "b": 2.0},
            "tags": tags,
            "timestamp": T0,
        },
        {"host": "h", "resource": "cpu", "values": {"c": 3.0}, "tags": None, "timestamp": T0},
    ]
