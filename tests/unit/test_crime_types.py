"""Crime type normalisation: one spelling per type, scalar and vectorised alike."""

from __future__ import annotations

import pandas as pd
import pytest

from crimecast.domain.crime_types import (
    ALL_TYPES,
    RENAMED_TYPES,
    normalise_type,
)
from crimecast.domain.errors import InvalidInputError
from crimecast.domain.series import normalise_types


def test_all_types_label() -> None:
    assert ALL_TYPES == "ALL"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("THEFT", "THEFT"),
        ("theft", "THEFT"),
        ("  Theft  ", "THEFT"),
        ("MOTOR  VEHICLE\tTHEFT", "MOTOR VEHICLE THEFT"),
        ("Deceptive Practice", "DECEPTIVE PRACTICE"),
        ("NON-CRIMINAL", "NON-CRIMINAL"),
    ],
)
def test_case_and_whitespace_are_normalised(raw: str, expected: str) -> None:
    assert normalise_type(raw) == expected


@pytest.mark.parametrize(
    ("old", "current"),
    [
        ("CRIM SEXUAL ASSAULT", "CRIMINAL SEXUAL ASSAULT"),
        ("crim  sexual assault ", "CRIMINAL SEXUAL ASSAULT"),
        ("CRIMINAL SEXUAL ASSAULT", "CRIMINAL SEXUAL ASSAULT"),
        ("NON - CRIMINAL", "NON-CRIMINAL"),
        ("non  -  criminal", "NON-CRIMINAL"),
        ("NON-CRIMINAL (SUBJECT SPECIFIED)", "NON-CRIMINAL"),
    ],
)
def test_renamed_types_are_merged(old: str, current: str) -> None:
    assert normalise_type(old) == current


def test_renamed_targets_are_already_canonical() -> None:
    for current in RENAMED_TYPES.values():
        assert normalise_type(current) == current


@pytest.mark.parametrize("value", ["", "   ", "\t\n", None, float("nan")])
def test_blank_or_missing_type_raises(value: object) -> None:
    with pytest.raises(InvalidInputError):
        normalise_type(value)  # type: ignore[arg-type]


RAW = [
    "THEFT",
    " theft",
    "CRIM SEXUAL ASSAULT",
    "CRIMINAL SEXUAL ASSAULT",
    "NON - CRIMINAL",
    "NON-CRIMINAL (SUBJECT SPECIFIED)",
    "Battery",
    "MOTOR  VEHICLE THEFT",
    "THEFT",
]


@pytest.mark.parametrize("dtype", [object, "string", "category"])
def test_vectorised_equals_scalar(dtype: object) -> None:
    # Given a column with duplicates, renames and messy spacing, on a non-default index
    values = pd.Series(
        RAW, index=range(100, 100 + len(RAW)), name="primary_type", dtype=dtype
    )
    # When normalised as a column
    result = normalise_types(values)
    # Then it matches the scalar function row by row and keeps index and name
    assert result.tolist() == [normalise_type(v) for v in RAW]
    assert result.index.equals(values.index)
    assert result.name == "primary_type"


def test_vectorised_handles_empty_series() -> None:
    assert normalise_types(pd.Series([], dtype=object)).tolist() == []


@pytest.mark.parametrize("bad", [None, "  "])
def test_vectorised_rejects_blank_rows(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        normalise_types(pd.Series(["THEFT", bad, "BATTERY"], dtype=object))
