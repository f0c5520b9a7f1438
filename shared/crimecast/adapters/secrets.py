"""Secrets from Secrets Manager, through Powertools Parameters (cached per container)."""

from __future__ import annotations


def get_secret(arn: str, max_age: int = 300, force_fetch: bool = False) -> str:
    """The secret's string, fetched at most once per ``max_age`` seconds (now, with ``force_fetch``)."""
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(arn, max_age=max_age, force_fetch=force_fetch))


def put_secret(arn: str, value: str) -> None:
    """Store a new value as the secret's current version (AWSCURRENT); the old value stays
    readable as AWSPREVIOUS in Secrets Manager, and this process's cache is cleared."""
    from crimecast.adapters.aws import client

    client("secretsmanager").put_secret_value(SecretId=arn, SecretString=value)
    clear_cache()


def clear_cache() -> None:
    """Fetch again on next use (tests; after a rotation)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
