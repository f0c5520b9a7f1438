"""Month arithmetic on ``YYYY-MM`` strings, the form months take in files, keys and JSON."""

from __future__ import annotations

from datetime import date


def month_of(moment: date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def add_months(month: str, n: int) -> str:
    """``month`` moved by ``n`` months (negative: back)."""
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included (empty when last < first)."""
    months, month = [], first
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months
