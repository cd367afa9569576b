"""Query parameters shared by read routes: times, windows, buckets, tag filters."""

from __future__ import annotations

import datetime as dt
import re

from observe.api.errors import ApiError
from observe.schemas.common import MIN_TIMESTAMP, parse_timestamp

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_SECONDS = dt.timedelta.max.days * 86_400


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


def parse_tag_filters(values: list[str] | None) -> dict[str, str]:
    """``key:value`` (or ``key=value``) pairs into a dict."""
    tags = {}
    for item in values or []:
        key, sep, value = item.partition(":") if ":" in item else item.partition("=")
        if not sep or not key or not value:
            raise ApiError(422, f"tag: {item!r} must look like key:value")
        tags[key] = value
    return tags
