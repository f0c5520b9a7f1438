"""Secrets from Secrets Manager, through Powertools Parameters (cached per container)."""

from __future__ import annotations

from functools import cache
import os
import sys
from typing import Any


@cache
def _provider(client: Any) -> Any:
    """A secrets provider (and its cache) over a role's client, where functions share a process
    (the local stack, tests: ``crimecast.adapters.aws.use_credentials``)."""
    from aws_lambda_powertools.utilities import parameters

    return parameters.SecretsProvider(boto3_client=client)


def get_secret(arn: str, max_age: int = 300, force_fetch: bool = False) -> str:
    """The secret's string, fetched at most once per ``max_age`` seconds (now, with ``force_fetch``)."""
    from aws_lambda_powertools.utilities import parameters

    from crimecast.adapters import aws

    if aws.current_credentials() is None:  # on AWS: Powertools' own provider, the role's keys from the environment
        return str(parameters.get_secret(arn, max_age=max_age, force_fetch=force_fetch))
    return str(_provider(aws.client("secretsmanager")).get(arn, max_age=max_age, force_fetch=force_fetch))


def put_secret(arn: str, value: str) -> None:
    """Store a new value as the secret's current version (AWSCURRENT); the old value stays
    readable as AWSPREVIOUS in Secrets Manager, and this process's cache is cleared."""
    from crimecast.adapters.aws import client

    client("secretsmanager").put_secret_value(SecretId=arn, SecretString=value)
    clear_cache()


def clear_cache() -> None:
    """Fetch again on next use (tests; after a rotation)."""
    from aws_lambda_powertools.utilities import parameters

    _provider.cache_clear()  # the roles' providers, and the values they cache
    parameters.clear_caches()


def _start_cold() -> None:
    """A forked child (the local stack's Lambda sandboxes) fetches its secrets anew, as a new
    execution environment does (Powertools' caches cleared only where they are loaded)."""
    _provider.cache_clear()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()


os.register_at_fork(after_in_child=_start_cold)
