"""How numbers read in the UI and in the weekly reports: one format per kind of number, so
the same value looks the same on a page and in a report."""

from __future__ import annotations


def format_count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def format_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def format_rate(value: float | None) -> str:
    """A fraction (0.0123) as a percentage (1.23%)."""
    return "-" if value is None else f"{value * 100:.2f}%"


def format_number(value: float | None) -> str:
    """Four significant digits (a statistic, a p-value); ``-`` for none or NaN."""
    if value is None or value != value:
        return "-"
    return f"{float(value):.4g}"
