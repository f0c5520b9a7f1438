"""Domain errors: every bad input becomes one of these, never a traceback."""

from __future__ import annotations

from collections.abc import Iterable
import difflib
from typing import ClassVar


class CrimecastError(Exception):
    """Base of every error the domain raises on purpose. Its message is written to be shown
    to any caller; ``code`` is a short stable identifier of its kind (run records keep it)."""

    code: ClassVar[str] = "failed"


class InvalidInputError(CrimecastError, ValueError):
    """The caller gave something we cannot use; the message names it and, where
    possible, the nearest valid values."""

    code = "invalid_input"

    def __init__(self, message: str, suggestions: Iterable[str] = ()) -> None:
        self.suggestions = list(suggestions)
        if self.suggestions:
            message = f"{message} (did you mean: {', '.join(self.suggestions)}?)"
        super().__init__(message)


def nearest(value: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices closest to ``value``, for 'did you mean' messages."""
    options = list(choices)
    close = difflib.get_close_matches(value.upper(), [c.upper() for c in options], n=n, cutoff=0.5)
    by_upper = {c.upper(): c for c in options}
    return [by_upper[c] for c in close] or options[:n]


class NotFoundError(InvalidInputError):
    """What was asked for does not exist (an unknown area, type, series or run)."""

    code = "not_found"


class OutOfRangeError(InvalidInputError):
    """A value of the right kind outside what the service can answer (e.g. months=99)."""

    code = "out_of_range"


class ConflictError(CrimecastError):
    """The request clashes with the current state (e.g. a run already in progress);
    ``run_id`` names the run in the way, when there is one (the 409 answer carries it)."""

    code = "conflict"

    def __init__(self, message: str, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class ConfigurationError(CrimecastError):
    """The deployment is missing a setting; a bug in the stack, not in the request."""

    code = "configuration"


class ForbiddenError(CrimecastError):
    """A valid caller without the role the route needs."""

    code = "forbidden"
