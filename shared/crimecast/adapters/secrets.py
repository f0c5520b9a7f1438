"""Secrets from Secrets Manager, through Powertools Parameters (cached per container)."""

from __future__ import annotations


def get_secret(arn: str, max_age: int = 300) -> str:
    """The secret's string, fetched at most once per ``max_age`` seconds."""
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(arn, max_age=max_age))


def clear_cache() -> None:
    """Fetch again on next use (tests; after a rotation)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
