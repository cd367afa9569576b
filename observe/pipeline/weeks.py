"""ISO weeks: names such as 2026-W47, their bounds in UTC, and the weeks a cron schedule has made
due.

A week runs from Monday 00:00 UTC to the next Monday (ISO 8601 numbering: week 1 holds the
year's first Thursday). Reports compare a week with the one before it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from croniter import croniter

WEEK_NAME = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True, order=True)
class Week:
    """An ISO week."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        """``2026-W47`` (or ``2026W47``) as a week.

        Raises:
            ValueError: not a week name, or a week number the year does not have.
        """
        match = WEEK_NAME.match(text)
        if not match:
            raise ValueError(f"{text!r} is not an ISO week such as 2026-W47")
        year, number = int(match.group(1)), int(match.group(2))
        try:
            dt.date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ValueError(f"{year} has no week {number}") from None
        return cls(year, number)

    @classmethod
    def containing(cls, moment: dt.datetime) -> Week:
        """The week `moment` (aware) falls in, in UTC."""
        iso = moment.astimezone(dt.UTC).isocalendar()
        return cls(iso.year, iso.week)

    @property
    def name(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def start(self) -> dt.datetime:
        """Monday 00:00 UTC."""
        monday = dt.date.fromisocalendar(self.year, self.number, 1)
        return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The next Monday 00:00 UTC (exclusive)."""
        return self.start + WEEK

    def previous(self) -> Week:
        return Week.containing(self.start - WEEK)

    def next(self) -> Week:
        return Week.containing(self.end)

    def __str__(self) -> str:
        return self.name


def last_complete_week(now: dt.datetime) -> Week:
    """The latest week that has ended at `now`."""
    return Week.containing(now).previous()


def latest_fire(cron: str, now: dt.datetime) -> dt.datetime:
    """The latest time at or before `now` (to the second) that the cron expression (UTC) fires."""
    moment = now.astimezone(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    fired: dt.datetime = croniter(cron, moment).get_prev(dt.datetime)
    return fired.astimezone(dt.UTC)


def due_weeks(cron: str, now: dt.datetime, *, catch_up_weeks: int) -> list[Week]:
    """The weeks whose report the schedule has made due by `now`, oldest first: the last week
    complete when the schedule last fired, and the `catch_up_weeks - 1` weeks before it."""
    if catch_up_weeks < 1:
        raise ValueError("catch_up_weeks must be at least 1")
    latest = last_complete_week(latest_fire(cron, now))
    weeks = [latest]
    while len(weeks) < catch_up_weeks:
        weeks.append(weeks[-1].previous())
    return weeks[::-1]
