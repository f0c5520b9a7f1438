"""Crime type labels, normalised so one type has one spelling across the years.

The data portal's ``Primary Type`` column has varied in spacing and wording over
time (the 2019 rename of "CRIM SEXUAL ASSAULT", several spellings of
"NON-CRIMINAL"); without merging them a type's history splits into two series.
"""

from __future__ import annotations

from crimecast.domain.errors import InvalidInputError

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

