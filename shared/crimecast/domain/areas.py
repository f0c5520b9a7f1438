"""Chicago's 77 community areas, kept as facts in code.

The list has been fixed at 77 since Edgewater was split from Uptown in 1980, so a
table in code is more reliable than fetching it at run time, and it lets every
input (API parameter, CSV column, portal export) be checked against one authority.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from crimecast.domain.errors import InvalidInputError, nearest


class CommunityArea(NamedTuple):
    """One official community area: the number the data portal uses and its name."""

    number: int
    name: str


_OFFICIAL_NAMES = (
    "Rogers Park", "West Ridge", "Uptown", "Lincoln Square", "North Center",
    "Lake View", "Lincoln Park", "Near North Side", "Edison Park", "Norwood Park",
    "Jefferson Park", "Forest Glen", "North Park", "Albany Park", "Portage Park",
    "Irving Park", "Dunning", "Montclare", "Belmont Cragin", "Hermosa",
    "Avondale", "Logan Square", "Humboldt Park", "West Town", "Austin",
    "West Garfield Park", "East Garfield Park", "Near West Side", "North Lawndale",
    "South Lawndale", "Lower West Side", "Loop", "Near South Side", "Armour Square",
    "Douglas", "Oakland", "Fuller Park", "Grand Boulevard", "Kenwood",
    "Washington Park", "Hyde Park", "Woodlawn", "South Shore", "Chatham",
    "Avalon Park", "South Chicago", "Burnside", "Calumet Heights", "Roseland",
    "Pullman", "South Deering", "East Side", "West Pullman", "Riverdale",
    "Hegewisch", "Garfield Ridge", "Archer Heights", "Brighton Park",
    "McKinley Park", "Bridgeport", "New City", "West Elsdon", "Gage Park",
    "Clearing", "West Lawn", "Chicago Lawn", "West Englewood", "Englewood",
    "Greater Grand Crossing", "Ashburn", "Auburn Gresham", "Beverly",
    "Washington Heights", "Mount Greenwood", "Morgan Park", "O'Hare", "Edgewater",
)  # fmt: skip

AREAS: tuple[CommunityArea, ...] = tuple(
    CommunityArea(number, name) for number, name in enumerate(_OFFICIAL_NAMES, start=1)
)
"""All 77 areas, ordered by number, so ``AREAS[n - 1].number == n``."""

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def area_key(name: str) -> str:
    """Matching key for a name: case, punctuation and all spacing dropped.

    The one rule for matching area names in Python; the web page's copy is generated
    from this module into ``web/areas.js`` (``PYTHONPATH=shared python -m crimecast.tools.web_facts``).

    Dropping spaces as well as apostrophes makes the portal's variants
    ("Lakeview", "OHARE", "Mckinley Park", "Humboldt park") equal to the
    official names without any alias.
    """
    return _NOT_ALNUM.sub("", name.casefold())


AREA_ALIASES: dict[str, str] = {
    "Montclaire": "Montclare",
    "Washington Height": "Washington Heights",
}
"""Portal spellings that the key alone cannot reconcile (real misspellings) -> official name."""

_ALIASES: dict[str, str] = {area_key(alias): official for alias, official in AREA_ALIASES.items()}

_BY_KEY: dict[str, CommunityArea] = {area_key(area.name): area for area in AREAS}
_BY_KEY.update({alias: _BY_KEY[area_key(official)] for alias, official in _ALIASES.items()})

_NUMBER = re.compile(r"[+-]?\d+(?:\.0*)?")


def _by_number(number: int, shown: object) -> CommunityArea:
    if 1 <= number <= len(AREAS):
        return AREAS[number - 1]
    raise InvalidInputError(
        f"unknown community area number {shown!r}: valid numbers are 1..{len(AREAS)}"
    )


def find_area(value: int | str) -> CommunityArea:
    """The community area for a number, numeric string or name.

    Accepts what the data portal and users actually write: ``25``, ``" 25 "``,
    ``"25.0"`` (the portal sometimes exports floats), and names in any case or
    punctuation, including known portal misspellings. Anything else raises
    ``InvalidInputError`` naming the value, with the nearest official names.
    """
    if isinstance(value, bool):  # bool is an int subclass, but True is no area
        raise InvalidInputError(f"not a community area: {value!r}")
    if isinstance(value, int):
        return _by_number(value, value)
    if isinstance(value, float):  # numeric columns with gaps arrive as floats
        if math.isfinite(value) and value.is_integer():
            return _by_number(int(value), value)
        raise InvalidInputError(
            f"not a community area: {value!r}: valid numbers are 1..{len(AREAS)}"
        )
    if not isinstance(value, str):
        raise InvalidInputError(f"not a community area: {value!r}")

    text = " ".join(value.split())
    if not text:
        raise InvalidInputError(
            f"empty community area {value!r}: give a number 1..{len(AREAS)} or a name"
        )
    if _NUMBER.fullmatch(text):
        return _by_number(int(float(text)), value)
    area = _BY_KEY.get(area_key(text))
    if area is None:
        raise InvalidInputError(
            f"unknown community area {value!r}",
            nearest(text, (a.name for a in AREAS)),
        )
    return area


def area_name(number: int) -> str:
    """The official name for an area number, for labels and messages."""
    return find_area(number).name
