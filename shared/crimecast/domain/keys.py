"""Which series: an area (or the whole city) and a crime type (or ALL).

Kept free of pandas so the predict Lambda can name series without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from crimecast.domain.areas import find_area
from crimecast.domain.crime_types import normalise_type
from crimecast.domain.errors import InvalidInputError

CITY = "city"


@dataclass(frozen=True, order=True)
class SeriesKey:
    """One forecast series: an area number (None for the whole city) and a type (or ALL)."""

    community_area: int | None
    primary_type: str

    @property
    def label(self) -> str:
        area = CITY if self.community_area is None else str(self.community_area)
        return f"{area}:{self.primary_type}"

    @classmethod
    def parse(cls, text: str) -> SeriesKey:
        """Read ``AREA:TYPE`` where AREA is a number, a name or ``city`` and TYPE a type or ALL."""
        area_text, sep, type_text = text.rpartition(":")
        if not sep or not area_text.strip() or not type_text.strip():
            raise InvalidInputError(f"series {text!r} is not AREA:TYPE (e.g. 'Austin:ASSAULT', 'city:ALL')")
        return cls(parse_area(area_text), normalise_type(type_text))

    def sort_key(self) -> tuple[int, str]:
        return (0 if self.community_area is None else self.community_area, self.primary_type)


def parse_area(value: int | str | None) -> int | None:
    """An area number from a number or name; None (the whole city) for ``city`` or None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in (CITY, "citywide", "")):
        return None
    return find_area(value).number
