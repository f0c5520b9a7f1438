"""Month arithmetic on ``YYYY-MM`` strings, the form months take in files, keys and JSON, and
the one rule of which months are complete."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
import re
from typing import Any

from crimecast.domain.errors import InvalidInputError

MONTH_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}")  # ASCII digits only (\d would take any script's)
MAX_ECHOED = 20  # the most of a bad value a message repeats


def parse_month(text: str, name: str = "month") -> str:
    """``text`` when it is a real month written ``YYYY-MM`` (year 0001-9999, month 01-12);
    otherwise an InvalidInputError (a 400) naming ``name`` and showing a bounded part of it."""
    if not MONTH_FORMAT.fullmatch(text) or int(text[:4]) < 1 or not 1 <= int(text[5:]) <= 12:
        raise InvalidInputError(f"{name} must be a month written YYYY-MM, such as 2026-05; got {text[:MAX_ECHOED]!r}")
    return text


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


def partial_month(last_month: str, unreported_from: date) -> str | None:
    """``last_month`` when it is still being reported, else None (it is complete).

    Reports are in up to, not including, day ``unreported_from`` (today; today less the
    portal's lag; the day after the last report): a month that day falls in, or comes before,
    is not over in the data. A partial month is shown, never trained on or scored, and only
    the trailing month can be one (the data's last month is the one asked about).
    """
    return last_month if last_month >= month_of(unreported_from) else None


def complete_counts(history: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The complete months of stored history rows (``{"month", "count", "partial"}``), month ->
    count, oldest first: the partial month is left out of every total, score and comparison."""
    return {str(r["month"]): float(r["count"]) for r in history if not r.get("partial")}
