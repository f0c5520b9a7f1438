"""crimecast.domain.months: what counts as a month a caller may ask for, and which months are complete."""

from __future__ import annotations

from datetime import date

import pytest

from crimecast.domain.errors import InvalidInputError
from crimecast.domain.months import complete_counts, parse_month, partial_month


@pytest.mark.parametrize("month", ["2026-05", "2001-01", "0001-12", "9999-12"])
def test_a_real_month_is_returned_as_given(month: str) -> None:
    assert parse_month(month) == month


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "0000-01", "2026-5", "26-05", "2026-05-01", "2026-05\n",
                                   "2026 -05", "\uff12\uff10\uff12\uff16-\uff10\uff15", "\u0662\u0660\u0662\u0666-\u0660\u0665", "", "May"])
def test_anything_else_is_invalid_input_naming_the_parameter(month: str) -> None:
    with pytest.raises(InvalidInputError, match="^since must be a month written YYYY-MM"):
        parse_month(month, "since")


def test_the_message_repeats_only_a_bounded_part_of_the_value() -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_month("x" * 1000)
    assert len(str(refused.value)) < 120


@pytest.mark.parametrize(("last_month", "unreported_from", "partial"), [
    ("2026-05", date(2026, 5, 20), "2026-05"),  # not over yet
    ("2026-05", date(2026, 5, 31), "2026-05"),  # its last day is not in
    ("2026-05", date(2026, 6, 1), None),  # every day of it is in
    ("2026-05", date(2026, 4, 28), "2026-05"),  # the source lags behind the month's start
    ("2026-04", date(2026, 6, 3), None),
])
def test_the_last_month_is_partial_until_its_last_day_is_reported(last_month: str, unreported_from: date,
                                                                   partial: str | None) -> None:
    assert partial_month(last_month, unreported_from) == partial


def test_complete_counts_leave_the_partial_month_out() -> None:
    history = [{"month": "2026-03", "count": 10, "partial": False}, {"month": "2026-04", "count": 12},
               {"month": "2026-05", "count": 3, "partial": True}]
    assert complete_counts(history) == {"2026-03": 10.0, "2026-04": 12.0}
    assert complete_counts([]) == {}
