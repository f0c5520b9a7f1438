"""HTTP header names are case-insensitive: one lookup for the headers kept in plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """The value of header ``name`` in ``headers``, whatever its case; None when it is absent."""
    wanted = name.lower()
    return next((str(value) for key, value in (headers or {}).items() if key.lower() == wanted), None)
