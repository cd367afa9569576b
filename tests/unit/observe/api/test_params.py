"""Query parameters of read routes: times, relative times, durations, windows, tag filters."""

from __future__ import annotations

import datetime as dt

import pytest

from observe.api.errors import ApiError
from observe.api.params import parse_duration, parse_tag_filters, parse_time, resolve_window
from tests.factories import T0

UTC = dt.UTC


def refused(function, *args, **kwargs) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as raised:
        function(*args, **kwargs)
    assert raised.value.status_code == 422
    return raised.value


@pytest.mark.parametrize("value", [None, ""])
def test_parse_time_absent(value: str | None) -> None:
    assert parse_time(value, "start") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-16T12:00:00Z", T0),
        ("  2026-11-16T12:00:00Z  ", T0),
        ("2026-11-16T13:00:00+01:00", T0),
        ("2026-11-16T12:00:00", T0),
        ("1794830400", T0),
        ("1794830400.5", T0 + dt.timedelta(milliseconds=500)),
        ("1e3", dt.datetime(1970, 1, 1, 0, 16, 40, tzinfo=UTC)),
        ("0", dt.datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_time_absolute(value: str, expected: dt.datetime) -> None:
    parsed = parse_time(value, "start")

    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("-90", 90), ("-90s", 90), ("-5m", 300), ("-24h", 86_400), ("-1.5h", 5_400), ("-7d", 604_800)],
)
def test_parse_time_relative_to_now(value: str, seconds: int) -> None:
    before = dt.datetime.now(UTC)
    parsed = parse_time(value, "start")
    after = dt.datetime.now(UTC)

    assert parsed is not None
    assert before - dt.timedelta(seconds=seconds) <= parsed <= after - dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "start: Input should be a valid datetime"),
        ("-5x", "start: Input should be a valid datetime"),
        ("nan", "start: Input should be a valid datetime"),
        ("inf", "start: Input should be a valid datetime"),
        ("1969-12-31T23:59:59Z", "start: timestamp is before 1970-01-01"),
        ("-3000w", "start: timestamp is before 1970-01-01"),
        ("-99999999999w", "start: '99999999999w' is longer than 999999999 days"),
        ("9999-12-31T23:00:00-05:00", "start: timestamp is after 9999-12-31 in UTC"),
    ],
)
def test_parse_time_refused_naming_the_parameter(value: str, message: str) -> None:
    error = refused(parse_time, value, "start")

    assert error.detail.startswith(message)


def test_relative_time_of_minus_one_is_a_second_ago_not_an_epoch() -> None:
    parsed = parse_time("-1", "end")

    assert parsed is not None
    assert dt.datetime.now(UTC) - parsed < dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0),
        ("90", 90),
        ("90s", 90),
        ("5m", 300),
        ("1h", 3_600),
        ("1d", 86_400),
        ("1w", 604_800),
        ("1.5h", 5_400),
        (" 2 h ", 7_200),
    ],
)
def test_parse_duration(value: str, seconds: int) -> None:
    assert parse_duration(value, "bucket") == seconds


@pytest.mark.parametrize("value", ["", "h", "1y", "-1h", "1e3", "1H", "1 hour", "1h30m", "one"])
def test_parse_duration_refused_naming_the_parameter(value: str) -> None:
    error = refused(parse_duration, value, "bucket")

    assert error.detail == (f"bucket: {value!r} is not a duration such as 60s, 5m, 1h or 1d")


@pytest.mark.parametrize("value", ["1000000000d", "9" * 400])
def test_parse_duration_refuses_what_no_timedelta_holds(value: str) -> None:
    error = refused(parse_duration, value, "bucket")

    assert error.detail == f"bucket: {value!r} is longer than 999999999 days"


def test_resolve_window_explicit() -> None:
    assert resolve_window("2026-11-16T12:00:00Z", "2026-11-16T13:00:00Z") == (
        T0,
        T0 + dt.timedelta(hours=1),
    )


def test_resolve_window_start_defaults_to_default_seconds_before_end() -> None:
    end = T0 + dt.timedelta(hours=5)

    assert resolve_window(None, end.isoformat()) == (end - dt.timedelta(days=1), end)
    assert resolve_window("", end.isoformat(), default_seconds=600) == (
        end - dt.timedelta(minutes=10),
        end,
    )


def test_resolve_window_end_defaults_to_now() -> None:
    before = dt.datetime.now(UTC)
    start, end = resolve_window(None, None, default_seconds=3_600)
    after = dt.datetime.now(UTC)

    assert before <= end <= after
    assert end - start == dt.timedelta(hours=1)


def test_resolve_window_relative_start() -> None:
    start, end = resolve_window("-2h", None)

    assert abs(end - start - dt.timedelta(hours=2)) < dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-11-16T12:00:00Z", "2026-11-16T12:00:00Z"), ("2026-11-16T13:00:00Z", "1794830400")],
)
def test_resolve_window_refuses_start_not_before_end(start: str, end: str) -> None:
    assert refused(resolve_window, start, end).detail == "start must be before end"


def test_resolve_window_names_the_bad_bound() -> None:
    assert refused(resolve_window, "2026-11-16", "soon").detail.startswith("end: ")
    assert refused(resolve_window, "soon", None).detail.startswith("start: ")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (None, {}),
        ([], {}),
        (["host:gpu-1"], {"host": "gpu-1"}),
        (["host=gpu-1", "region:eu-west"], {"host": "gpu-1", "region": "eu-west"}),
        (["url:http://x:8080/a"], {"url": "http://x:8080/a"}),
        (["expr=a=b"], {"expr": "a=b"}),
        (["host:gpu-1", "host:gpu-2"], {"host": "gpu-2"}),
    ],
)
def test_parse_tag_filters(values: list[str] | None, expected: dict[str, str]) -> None:
    assert parse_tag_filters(values) == expected


@pytest.mark.parametrize("item", ["host", ":gpu-1", "host:", "=x", "host=", ""])
def test_parse_tag_filters_refused(item: str) -> None:
    error = refused(parse_tag_filters, ["region:eu", item])

    assert error.detail == f"tag: {item!r} must look like key:value"
