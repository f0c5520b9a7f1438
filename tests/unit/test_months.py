"""crimecast.domain.months.parse_month: what counts as a month a caller may ask for."""

from __future__ import annotations

import pytest

from crimecast.domain.errors import InvalidInputError
from crimecast.domain.months import parse_month


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
