"""The in-process scheduler: due times on an injected clock, failures, the thread and stop()."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from observe.pipeline.scheduler import Job, Scheduler


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Calls:
    """A job body that records when (on `clock`) it ran."""

    def __init__(self, clock: Clock, *, fail_times: int = 0, takes_seconds: float = 0.0) -> None:
        self.clock = clock
        self.at: list[float] = []
        self.fail_times = fail_times
        self.takes_seconds = takes_seconds

    def __call__(self) -> None:
        self.at.append(self.clock.now)
        self.clock.advance(self.takes_seconds)
        if len(self.at) <= self.fail_times:
            raise RuntimeError(f"attempt {len(self.at)} failed")


def test_run_due_runs_only_jobs_whose_time_has_come() -> None:
    clock = Clock(100.0)
    fast, slow = Calls(clock), Calls(clock)
    scheduler = Scheduler([Job("fast", 10.0, fast), Job("slow", 60.0, slow)], monotonic=clock)
    due = {"fast": 100.0, "slow": 130.0}

    wait = scheduler.run_due(due)

    assert (fast.at, slow.at) == ([100.0], [])
    assert due == {"fast": 110.0, "slow": 130.0}
    assert wait == 10.0


def test_jobs_run_every_interval_on_the_injected_clock() -> None:
    clock = Clock(0.0)
    fast, slow = Calls(clock), Calls(clock)
    scheduler = Scheduler(
        [Job("fast", 10.0, fast), Job("slow", 25.0, slow, first_delay_seconds=5.0)],
        monotonic=clock,
    )
    due = {"fast": 0.0, "slow": 5.0}

    for _ in range(61):
        scheduler.run_due(due)
        clock.advance(1.0)

    assert fast.at == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert slow.at == [5.0, 30.0, 55.0]


def test_run_due_returns_zero_not_a_negative_wait_when_a_job_fell_due_meanwhile() -> None:
    clock = Clock(500.0)
    slow, other = Calls(clock, takes_seconds=20.0), Calls(clock)
    scheduler = Scheduler([Job("slow", 60.0, slow), Job("other", 60.0, other)], monotonic=clock)
    due = {"slow": 500.0, "other": 505.0}

    wait = scheduler.run_due(due)

    assert (slow.at, other.at) == ([500.0], [])
    assert wait == 0.0
    scheduler.run_due(due)
    assert other.at == [520.0]


def test_next_run_counts_from_when_the_job_finished() -> None:
    clock = Clock(0.0)
    slow_job = Calls(clock, takes_seconds=7.0)
    scheduler = Scheduler([Job("slow", 60.0, slow_job)], monotonic=clock)
    due = {"slow": 0.0}

    wait = scheduler.run_due(due)

    assert due == {"slow": 67.0}
    assert wait == 60.0


def test_a_failing_job_is_logged_and_tried_again_next_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock(0.0)
    flaky, steady = Calls(clock, fail_times=1), Calls(clock)
    scheduler = Scheduler(
        [Job("retention", 30.0, flaky), Job("reports", 30.0, steady)], monotonic=clock
    )
    due = {"retention": 0.0, "reports": 0.0}

    with caplog.at_level(logging.ERROR, logger="observe.pipeline.scheduler"):
        wait = scheduler.run_due(due)

    assert steady.at == [0.0]  # the other job still ran
    assert due == {"retention": 30.0, "reports": 30.0}  # not retried in a tight loop
    assert wait == 30.0
    [entry] = caplog.records
    assert entry.getMessage() == "scheduled job retention failed"
    assert entry.exc_info is not None
    assert str(entry.exc_info[1]) == "attempt 1 failed"

    clock.advance(29.0)
    scheduler.run_due(due)
    assert flaky.at == [0.0]
    clock.advance(1.0)
    caplog.clear()
    scheduler.run_due(due)
    assert flaky.at == [0.0, 30.0]
    assert caplog.records == []


def wait_until(condition: threading.Event, seconds: float = 5.0) -> bool:
    return condition.wait(seconds)


def test_started_scheduler_runs_jobs_on_its_thread_after_their_first_delay() -> None:
    clock = Clock(0.0)
    ran = threading.Event()
    threads: list[str] = []
    late: list[float] = []

    def record_thread() -> None:
        threads.append(threading.current_thread().name)
        ran.set()

    scheduler = Scheduler(
        [
            Job("now", 3_600.0, record_thread),
            Job("later", 3_600.0, lambda: late.append(clock.now), first_delay_seconds=600.0),
        ],
        monotonic=clock,
    )
    scheduler.start()
    try:
        assert wait_until(ran)
    finally:
        scheduler.stop()

    assert threads == ["observe-scheduler"]
    assert late == []


def test_stop_wakes_a_waiting_scheduler_promptly() -> None:
    ran = threading.Event()
    threads: list[threading.Thread] = []

    def hourly() -> None:
        threads.append(threading.current_thread())
        ran.set()

    scheduler = Scheduler([Job("hourly", 3_600.0, hourly)])
    scheduler.start()
    assert wait_until(ran)

    started = time.monotonic()
    scheduler.stop(timeout=5.0)

    assert time.monotonic() - started < 2.0
    assert not threads[0].is_alive()


def test_no_job_runs_after_stop() -> None:
    runs: list[float] = []
    first = threading.Event()

    def tick() -> None:
        runs.append(time.monotonic())
        first.set()

    scheduler = Scheduler([Job("tick", 0.01, tick)])
    scheduler.start()
    assert wait_until(first)
    scheduler.stop()
    count = len(runs)

    time.sleep(0.05)

    assert len(runs) == count


def test_a_scheduler_without_jobs_starts_no_thread() -> None:
    before = threading.active_count()
    scheduler = Scheduler([])

    scheduler.start()

    assert threading.active_count() == before
    scheduler.stop()


def test_stop_before_start_is_harmless() -> None:
    Scheduler([Job("never", 1.0, lambda: None)]).stop()
