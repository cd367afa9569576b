"""dashboards.formats: how numbers read on the pages and in the reports."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards import formats


@pytest.mark.parametrize(
    ("function", "value", "text"),
    [
        (formats.format_count, 1234567, "1,234,567"),
        (formats.format_ms, 63.44, "63.4 ms"),
        (formats.format_rate, 0.01234, "1.23%"),
        (formats.format_ms, None, "-"),
        (formats.format_number, 0.000123456, "0.0001235"),
        (formats.format_number, float("nan"), "-"),
    ],
)
def test_number_formats(function: Any, value: Any, text: str) -> None:
    assert function(value) == text
