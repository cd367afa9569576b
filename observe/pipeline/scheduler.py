"""A small in-process scheduler for periodic jobs inside `observe serve`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Job:
    """`run` is called every `interval_seconds`, first after `first_delay_seconds`."""

    name: str
    interval_seconds: float
    run: Callable[[], object]
    first_delay_seconds: float = 0.0


class Scheduler:
    """Runs jobs on one background thread; a failing job is logged and tried again next time."""

    def __init__(self, jobs: list[Job], *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._jobs = jobs
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def start(self) -> None:
        if self._jobs:
            self._thread = threading.Thread(
                target=self._loop, name="observe-scheduler", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_due(self, due: dict[str, float]) -> float:
        """Run the jobs whose time has come; returns seconds until the next one is due."""
        now = self._monotonic()
        for job in self._jobs:
            if due[job.name] <= now:
                try:
                    job.run()
                except Exception:
                    log.exception("scheduled job %s failed", job.name)
                due[job.name] = self._monotonic() + job.interval_seconds
        return max(0.0, min(due.values()) - self._monotonic())

    def _loop(self) -> None:
        start = self._monotonic()
        due = {job.name: start + job.first_delay_seconds for job in self._jobs}
        while not self._stop.is_set():
            wait = self.run_due(due)
            self._stop.wait(wait)
