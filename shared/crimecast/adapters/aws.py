"""boto3 clients, made lazily once per process (a warm Lambda container).

The same code runs on moto in tests, on the local stack and on AWS: boto3 picks up
``AWS_ENDPOINT_URL`` by itself. Importing this module costs nothing and needs no
credentials: boto3 itself is imported on first use.

On AWS every client signs with the function's role (Lambda puts its credentials in the
environment). The local stack and the tests run several functions in one process: there
``use_credentials`` makes the calls of one invocation (its thread, and the threads it
starts with its context) sign with that function's own role, so that IAM is enforced
per function as on AWS. Outside it, nothing changes: the default credential chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
import logging
from typing import Any, NamedTuple

from crimecast.adapters.limits import check_item
from crimecast.domain.errors import ConflictError

logger = logging.getLogger(__name__)


class Credentials(NamedTuple):
    """Keys of one role's session (STS AssumeRole's answer)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


_credentials: ContextVar[Credentials | None] = ContextVar("crimecast_aws_credentials", default=None)


@contextmanager
def use_credentials(credentials: Credentials | None) -> Iterator[None]:
    """Sign the AWS calls made in this context with ``credentials`` (None: the default chain)."""
    token = _credentials.set(credentials)
    try:
        yield
    finally:
        _credentials.reset(token)


def current_credentials() -> Credentials | None:
    """The credentials ``use_credentials`` set for this context; None: the default chain (on AWS)."""
    return _credentials.get()


def _session(credentials: Credentials | None) -> Any:
    import boto3

    if credentials is None:
        return boto3.session.Session()
    return boto3.session.Session(aws_access_key_id=credentials.access_key_id,
                                 aws_secret_access_key=credentials.secret_access_key,
                                 aws_session_token=credentials.session_token)


# What AWS answers a call the caller's policies do not allow (S3, and the JSON services).
DENIED = ("AccessDenied", "AccessDeniedException")
# Refusals the caller answers itself: S3 refuses a missing key to who may not list the bucket,
# and BlobStore then lists the key's prefix (logging the refusal if it stands).
_TOLD_BY_CALLER = {("s3", "GetObject"), ("s3", "HeadObject")}


def _log_refusals(client: Any) -> Any:
    """Every refused call of ``client`` logged as an error naming the call and the caller, whatever
    the code does with the exception: a missing grant never passes unseen."""
    service = client.meta.service_model.service_name

    def after_call(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        error = (parsed or {}).get("Error") or {}
        if error.get("Code") in DENIED and (service, model.name) not in _TOLD_BY_CALLER:
            logger.error("%s %s refused to %s: %s", service, model.name, caller(), error.get("Message", ""))

    client.meta.events.register(f"after-call.{client.meta.service_model.service_id.hyphenize()}", after_call)
    return client


@cache
def _client(service: str, credentials: Credentials | None) -> Any:
    return _log_refusals(_session(credentials).client(service))


@cache
def _resource(service: str, credentials: Credentials | None) -> Any:
    resource = _session(credentials).resource(service)
    _log_refusals(resource.meta.client)
    return resource


@cache
def _table(name: str, credentials: Credentials | None) -> Any:
    return _resource("dynamodb", credentials).Table(name)


def client(service: str) -> Any:
    """The boto3 client of ``service``, made once per process (and per role, see use_credentials)."""
    return _client(service, _credentials.get())


def table(name: str) -> Any:
    """A DynamoDB Table resource (building one costs milliseconds: once per name)."""
    return _table(name, _credentials.get())


def caller() -> str:
    """Who the calls of this context are made as (STS's ARN of the role session), for an error
    message where AWS's own does not say; GetCallerIdentity needs no grant."""
    try:
        return str(client("sts").get_caller_identity()["Arn"])
    except Exception as exc:  # noqa: BLE001 - only a message depends on it
        return f"an unknown caller ({type(exc).__name__})"


def reset_clients() -> None:
    """Forget cached clients: a test pointed boto3 elsewhere, or a forked worker must not
    share its parent's connections."""
    _client.cache_clear()
    _resource.cache_clear()
    _table.cache_clear()


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

    def _items(self, operation: str, limit: int | None = None, **arguments: Any) -> list[dict[str, Any]]:
        """Every item a ``query`` or ``scan`` finds, across its pages (DynamoDB returns at most 1 MB
        a page, so a ``Limit`` alone may return fewer), or its first ``limit``."""
        items: list[dict[str, Any]] = []
        start = None
        while True:
            if limit is not None:
                arguments["Limit"] = limit - len(items)
            page = getattr(self._table, operation)(**arguments, **({"ExclusiveStartKey": start} if start else {}))
            items.extend(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and len(items) >= limit):
                return items

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
