"""Community area lookup: the 77 facts, the portal's spellings, and clear errors."""

from __future__ import annotations

import pytest

from crimecast.domain.areas import AREAS, CommunityArea, area_name, find_area
from crimecast.domain.errors import InvalidInputError


def test_there_are_77_areas_numbered_1_to_77_in_order() -> None:
    assert len(AREAS) == 77
    assert [area.number for area in AREAS] == list(range(1, 78))
    assert all(isinstance(area, CommunityArea) for area in AREAS)


def test_names_are_unique() -> None:
    names = [area.name for area in AREAS]
    assert len(set(names)) == 77
    assert len({name.casefold() for name in names}) == 77


@pytest.mark.parametrize(
    ("number", "name"),
    [
        (1, "Rogers Park"),
        (6, "Lake View"),
        (8, "Near North Side"),
        (25, "Austin"),
        (32, "Loop"),
        (59, "McKinley Park"),
        (76, "O'Hare"),
        (77, "Edgewater"),
    ],
)
def test_known_facts(number: int, name: str) -> None:
    assert AREAS[number - 1] == CommunityArea(number, name)
    assert area_name(number) == name


def test_every_official_name_and_number_finds_its_area() -> None:
    for area in AREAS:
        assert find_area(area.number) is area
        assert find_area(area.name) is area
        assert find_area(area.name.upper()) is area
        assert find_area(str(area.number)) is area


@pytest.mark.parametrize("value", [25, "25", " 25 ", "25.0", "025", 25.0])
def test_numeric_forms_find_the_area(value: int | str) -> None:
    assert find_area(value) == CommunityArea(25, "Austin")


@pytest.mark.parametrize(
    ("alias", "official"),
    [
        ("Lakeview", "Lake View"),
        ("LAKEVIEW", "Lake View"),
        ("OHARE", "O'Hare"),
        ("Ohare", "O'Hare"),
        ("o'hare", "O'Hare"),
        ("Montclaire", "Montclare"),
        ("MONTCLAIRE", "Montclare"),
        ("Washington Height", "Washington Heights"),
        ("Mckinley Park", "McKinley Park"),
        ("Humboldt park", "Humboldt Park"),
        ("  near   north  side ", "Near North Side"),
        ("Near-West Side.", "Near West Side"),
    ],
)
def test_portal_spellings_find_the_official_area(alias: str, official: str) -> None:
    assert find_area(alias).name == official


@pytest.mark.parametrize("number", [0, 78, -1, "0", "78", "78.0"])
def test_number_out_of_range_says_valid_range(number: int | str) -> None:
    with pytest.raises(InvalidInputError, match=r"1\.\.77") as caught:
        find_area(number)
    assert str(number).strip() in str(caught.value)


def test_fractional_number_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="25.5"):
        find_area("25.5")


def test_unknown_name_suggests_close_official_names() -> None:
    # Given a typo of an official name
    with pytest.raises(InvalidInputError) as caught:
        find_area("Austn")
    # Then the error names the value and suggests the real one
    assert "Austn" in str(caught.value)
    assert "Austin" in caught.value.suggestions
    assert "did you mean" in str(caught.value)


def test_unrelated_name_still_raises_with_suggestions() -> None:
    with pytest.raises(InvalidInputError, match="Gotham") as caught:
        find_area("Gotham")
    assert caught.value.suggestions
    assert set(caught.value.suggestions) <= {area.name for area in AREAS}


@pytest.mark.parametrize("value", ["", "   ", None, float("nan"), True, 25.5])
def test_empty_or_non_area_values_raise(value: object) -> None:
    with pytest.raises(InvalidInputError):
        find_area(value)  # type: ignore[arg-type]


def test_error_is_a_value_error_for_callers_that_catch_that() -> None:
    with pytest.raises(ValueError):
        find_area("Gotham")


def test_area_name_rejects_unknown_number() -> None:
    with pytest.raises(InvalidInputError, match="78"):
        area_name(78)
