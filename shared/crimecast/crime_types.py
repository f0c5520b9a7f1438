"""Crime type labels, normalised so one type has one spelling across the years.

The data portal's ``Primary Type`` column has varied in spacing and wording over
time (the 2019 rename of "CRIM SEXUAL ASSAULT", several spellings of
"NON-CRIMINAL"); without merging them a type's history splits into two series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crimecast.errors import InvalidInputError

if TYPE_CHECKING:  # pandas stays off the predict path, which only needs normalise_type
    import pandas as pd

ALL_TYPES = "ALL"
"""The label for all crime types counted together."""

RENAMED_TYPES: dict[str, str] = {
    "CRIM SEXUAL ASSAULT": "CRIMINAL SEXUAL ASSAULT",
    "NON - CRIMINAL": "NON-CRIMINAL",
    "NON-CRIMINAL (SUBJECT SPECIFIED)": "NON-CRIMINAL",
}
"""Old or variant spellings (already upper case, single spaced) -> current name."""


def normalise_type(value: str) -> str:
    """One canonical spelling for a crime type: upper case, single spaced, renames merged.

    Raises ``InvalidInputError`` for a blank or non-text value, because an
    unlabelled row cannot be counted under any type.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"crime type must be text, got {value!r}")
    text = " ".join(value.upper().split())
    if not text:
        raise InvalidInputError(f"empty crime type {value!r}")
    return RENAMED_TYPES.get(text, text)


def normalise_types(values: pd.Series) -> pd.Series:
    """``normalise_type`` over a column, fast enough for the full 8-million-row history.

    The column has only a few dozen distinct values, so each distinct value is
    normalised once and the result is spread back by position.
    """
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if (codes < 0).any():
        missing = int((codes < 0).sum())
        raise InvalidInputError(
            f"empty crime type in {missing} row(s) of {values.name!r}"
        )
    canonical = pd.Index([normalise_type(u) for u in uniques])
    return pd.Series(canonical.take(codes), index=values.index, name=values.name)
