"""boto3 clients, made lazily once per process (a warm Lambda container).

The same code runs on moto in tests, on the local stack and on AWS: boto3 picks up
``AWS_ENDPOINT_URL`` by itself. Importing this module costs nothing and needs no
credentials: boto3 itself is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from crimecast.adapters.limits import check_item
from crimecast.domain.errors import ConflictError


@cache
def client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


@cache
def _resource(service: str) -> Any:
    import boto3

    return boto3.session.Session().resource(service)


@cache
def table(name: str) -> Any:
    """A DynamoDB Table resource (building one costs milliseconds: once per name)."""
    return _resource("dynamodb").Table(name)


def reset_clients() -> None:
    """Forget cached clients: a test pointed boto3 elsewhere, or a forked worker must not
    share its parent's connections."""
    client.cache_clear()
    _resource.cache_clear()
    table.cache_clear()


def condition_failed(exc: Exception) -> bool:
    """True for DynamoDB's ConditionalCheckFailedException (a refused conditional write)."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class TableStore:
    """A store over one DynamoDB table (the resource comes from the process-wide cache)."""

    table_name: str

    @property
    def _table(self) -> Any:
        return table(self.table_name)

    def _put(self, item: dict[str, Any], unique_key: str | None = None) -> None:
        """Put an item; with ``unique_key``, ConflictError rather than overwrite an existing one."""
        from botocore.exceptions import ClientError

        condition = {"ConditionExpression": f"attribute_not_exists({unique_key})"} if unique_key else {}
        check_item(item, tuple(k for k in ("run_id", "series", "version", "username", "id") if k in item))
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as exc:
            if condition_failed(exc):
                raise ConflictError(f"{item.get(unique_key or '', 'item')!r} already exists") from None
            raise
