"""Query parameters shared by read routes: times, windows, buckets, tag filters."""

from __future__ import annotations

import datetime as dt
import re

from observe.api.errors import ApiError
from observe.schemas.common import MIN_TIMESTAMP, parse_timestamp

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_SECONDS = dt.timedelta.max.days * 86_400
#: How the `start` and `end` query parameters of read routes may be written.
WINDOW_DOC = "RFC 3339, epoch seconds, or a duration before now such as -24h"


def parse_time(value: str | None, name: str) -> dt.datetime | None:
    """RFC 3339 or epoch seconds, or a duration before now such as ``-24h`` or ``-7d``."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.startswith("-") and _DURATION.match(text[1:]):
        return _before_now(parse_duration(text[1:], name), name)
    try:
        number = float(text)
    except ValueError:
        number = None
    try:
        return parse_timestamp(number if number is not None else text)
    except ValueError as error:
        raise ApiError(422, f"{name}: {error}") from None


def _before_now(seconds: int, name: str) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    if seconds > (now - MIN_TIMESTAMP).total_seconds():
        raise ApiError(422, f"{name}: timestamp is before 1970-01-01")
    return now - dt.timedelta(seconds=seconds)


def parse_duration(value: str, name: str) -> int:
    """Seconds from ``90``, ``90s``, ``5m``, ``1h``, ``1d``, ``1w``."""
    match = _DURATION.match(value)
    if not match:
        raise ApiError(422, f"{name}: {value!r} is not a duration such as 60s, 5m, 1h or 1d")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION_SECONDS:  # also inf, from hundreds of digits
        raise ApiError(422, f"{name}: {value!r} is longer than {dt.timedelta.max.days} days")
    return int(seconds)


def resolve_window(
    start: str | None, end: str | None, *, default_seconds: int = 86_400
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end): end defaults to now, start to `default_seconds` before end."""
    end_at = parse_time(end, "end") or dt.datetime.now(dt.UTC)
    start_at = parse_time(start, "start") or end_at - dt.timedelta(seconds=default_seconds)
    if start_at >= end_at:
        raise ApiError(422, "start must be before end")
    return start_at, end_at


def parse_pairs(
    values: list[str] | None,
    name: str,
    *,
    separators: tuple[str, str] = (":", "="),
    form: str = "key:value",
) -> dict[str, str]:
    """``key:value`` (or ``key=value``) pairs into a dict.

    An item holding both separators is split at the first of `separators`. `form` is what the
    error message says an item must look like.
    """
    first, second = separators
    pairs = {}
    for item in values or []:
        key, sep, value = item.partition(first) if first in item else item.partition(second)
        if not sep or not key or not value:
            raise ApiError(422, f"{name}: {item!r} must look like {form}")
        pairs[key] = value
    return pairs


def parse_open_window(
    start: str | None, end: str | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start, end) where either end may be left open (None); refuses start >= end."""
    start_at, end_at = parse_time(start, "start"), parse_time(end, "end")
    if start_at is not None and end_at is not None and start_at >= end_at:
        raise ApiError(422, "start must be before end")
    return start_at, end_at


def parse_tag_filters(values: list[str] | None) -> dict[str, str]:
    """``key:value`` (or ``key=value``) pairs into a dict."""
    return parse_pairs(values, "tag")


def parse_feature_options(
    values: list[str] | None, name: str, *, form: str = "feature:value"
) -> dict[str, str]:
    """``feature:value`` (or ``feature=value``) pairs, such as the tests of drift and skew."""
    return parse_pairs(values, name, separators=("=", ":"), form=form)


def parse_thresholds(
    values: list[str] | None, name: str = "threshold", *, form: str = "feature:value"
) -> dict[str, float]:
    """``feature:threshold`` pairs; each threshold a finite number >= 0."""
    thresholds = {}
    for key, value in parse_feature_options(values, name, form=form).items():
        try:
            number = float(value)
        except ValueError:
            raise ApiError(422, f"{name}: {value!r} for {key} is not a number") from None
        if not 0 <= number < float("inf"):
            raise ApiError(422, f"{name}: {key} must be a finite number >= 0")
        thresholds[key] = number
    return thresholds
