"""observe.pipeline.weeks: ISO week names and bounds, and the weeks a cron schedule makes due."""

from __future__ import annotations

import datetime as dt

import pytest

from observe.pipeline.weeks import Week, due_weeks, last_complete_week, latest_fire

UTC = dt.UTC


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def test_a_week_runs_from_monday_to_monday_in_utc() -> None:
    week = Week.parse("2026-W47")

    assert (week.start, week.end) == (at(2026, 11, 16), at(2026, 11, 23))
    assert week.name == str(week) == "2026-W47"
    assert (week.previous().name, week.next().name) == ("2026-W46", "2026-W48")


def test_weeks_cross_years_as_iso_numbers_them() -> None:
    last = Week.parse("2020-W53")  # 2020 has 53 ISO weeks; its week 1 began in 2019

    assert last.start == at(2020, 12, 28)
    assert last.next() == Week(2021, 1)
    assert Week.parse("2020-W01").start == at(2019, 12, 30)
    assert Week.containing(at(2021, 1, 3, 23, 59)) == last
    assert Week.containing(
        dt.datetime(2026, 11, 23, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ) == Week(2026, 47)


@pytest.mark.parametrize("text", ["2026W47", "2026-w47", " 2026-W7 "])
def test_week_names_are_read_leniently(text: str) -> None:
    assert Week.parse(text).year == 2026


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-47", "not an ISO week such as 2026-W47"),
        ("last week", "not an ISO week"),
        ("2026-W54", "2026 has no week 54"),
        ("2027-W53", "2027 has no week 53"),
        ("2026-W00", "2026 has no week 0"),
    ],
)
def test_bad_week_names_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Week.parse(text)


def test_the_last_complete_week_is_the_one_before_now() -> None:
    assert last_complete_week(at(2026, 11, 23, 0, 0)) == Week(2026, 47)
    assert last_complete_week(at(2026, 11, 22, 23, 59)) == Week(2026, 46)


def test_the_schedule_fires_at_its_time_not_before() -> None:
    cron = "0 6 * * 1"  # Mondays 06:00 UTC

    assert latest_fire(cron, at(2026, 11, 23, 6, 0)) == at(2026, 11, 23, 6, 0)
    assert latest_fire(cron, at(2026, 11, 23, 5, 59, 59)) == at(2026, 11, 16, 6, 0)
    assert due_weeks(cron, at(2026, 11, 23, 5, 59), catch_up_weeks=1) == [Week(2026, 46)]
    assert due_weeks(cron, at(2026, 11, 23, 6, 0), catch_up_weeks=1) == [Week(2026, 47)]


def test_catch_up_covers_the_weeks_before_the_latest_oldest_first() -> None:
    weeks = due_weeks("0 6 * * 1", at(2026, 11, 25, 12, 0), catch_up_weeks=3)

    assert [w.name for w in weeks] == ["2026-W45", "2026-W46", "2026-W47"]


def test_a_daily_schedule_makes_the_last_complete_week_due_every_day() -> None:
    assert due_weeks("30 2 * * *", at(2026, 11, 27, 3, 0), catch_up_weeks=1) == [Week(2026, 47)]
    with pytest.raises(ValueError, match="at least 1"):
        due_weeks("30 2 * * *", at(2026, 11, 27), catch_up_weeks=0)
