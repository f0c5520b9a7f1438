"""Do a request once, however often it is delivered (Powertools idempotency on DynamoDB).

EventBridge delivers a scheduled event at least once, Lambda retries an asynchronous
invocation that failed, and a client may repeat a POST whose answer it never got. Each
such request carries a key (the event id, the run and leg, an ``Idempotency-Key``
header); the first delivery does the work and records its answer in
``IDEMPOTENCY_TABLE``, later ones get that answer back without doing it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crimecast.adapters import aws
from crimecast.adapters.stores import Stores
from crimecast.domain.errors import ConfigurationError, ConflictError

EXPIRES_AFTER_S = 3600  # a repeat within the hour gets the first answer


def run_once(stores: Stores, operation: str, key: dict[str, Any], action: Callable[[], dict[str, Any]],
             context: Any = None, expires_after_s: int = EXPIRES_AFTER_S) -> dict[str, Any]:
    """``action()`` the first time ``(operation, key)`` is seen; its recorded answer after.

    A failed action leaves no record (a retry does the work); a repeat that arrives while
    the first is still being handled is refused with ConflictError.
    """
    table = stores.idempotency_table
    if not table:
        raise ConfigurationError("environment variable IDEMPOTENCY_TABLE is not set")
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=aws.client("dynamodb"))
    config = IdempotencyConfig(expires_after_seconds=expires_after_s)
    if hasattr(context, "get_remaining_time_in_millis"):  # an in-progress record lapses if the invocation dies
        config.register_lambda_context(context)

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config,
                         key_prefix=f"crimecast#{operation}")
    def once(request: dict[str, Any]) -> dict[str, Any]:
        return action()

    try:
        return once(request=key)
    except IdempotencyAlreadyInProgressError:
        raise ConflictError("the same request is already being handled; ask again in a moment") from None
