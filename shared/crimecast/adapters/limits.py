"""The AWS service limits the service's artefacts must stay within, and their sizes counted
the way each service counts them.

- A DynamoDB item: at most 400 KB, counted as the UTF-8 bytes of every attribute name
  plus its value (a string's UTF-8 bytes, a number's 1 byte per two significant digits
  plus 1, 3 bytes plus 1 per element for a map or list).
- A Step Functions state's input or output: at most 256 KB of JSON text (UTF-8).
- A synchronous Lambda request or response (every API route, through API Gateway's proxy
  integration): at most 6 MB of JSON text each.
- An asynchronous Lambda invocation's payload (InvocationType Event): at most 256 KB.
- An API Gateway (REST) request: a payload of at most 10 MB, an integration that answers
  within 29 s.
"""

from __future__ import annotations

from decimal import Decimal
import json
from typing import Any

KB = 1024
DYNAMODB_ITEM_BYTES = 400 * KB
STATE_PAYLOAD_BYTES = 256 * KB
LAMBDA_RESPONSE_BYTES = 6 * KB * KB
LAMBDA_REQUEST_BYTES = 6 * KB * KB
LAMBDA_ASYNC_PAYLOAD_BYTES = 256 * KB
API_GATEWAY_PAYLOAD_BYTES = 10 * KB * KB
API_GATEWAY_TIMEOUT_S = 29.0


class PayloadTooLargeError(ValueError):
    """A Lambda payload that the service would refuse (RequestEntityTooLargeException)."""


class ItemTooLargeError(ValueError):
    """An item that DynamoDB would refuse; raised before the write, naming the item."""


def json_bytes(doc: Any) -> int:
    """Bytes of ``doc`` as compact JSON text (UTF-8): how Step Functions and Lambda count a payload."""
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _number_bytes(value: int | float | Decimal) -> int:
    digits = Decimal(str(value)).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return (significant + 1) // 2 + 1


def _value_bytes(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, int | float | Decimal):
        return _number_bytes(value)
    if isinstance(value, dict):
        return 3 + sum(len(str(k).encode()) + _value_bytes(v) + 1 for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 3 + sum(_value_bytes(v) + 1 for v in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it against its 400 KB limit."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def check_item(item: dict[str, Any], keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """``item`` unchanged, or ItemTooLargeError when DynamoDB would refuse it."""
    size = dynamodb_item_bytes(item)
    if size > DYNAMODB_ITEM_BYTES:
        named = ", ".join(f"{k}={item.get(k)!r}" for k in keys) or "an item"
        raise ItemTooLargeError(f"{named} is {size} bytes, over DynamoDB's {DYNAMODB_ITEM_BYTES}-byte item limit")
    return item


def check_async_payload(function_name: str, payload: Any) -> bytes:
    """``payload`` as the JSON an asynchronous invocation sends, or PayloadTooLargeError over 256 KB."""
    body = json.dumps(payload).encode()
    if len(body) > LAMBDA_ASYNC_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"the event for {function_name} is {len(body)} bytes, over Lambda's "
                                   f"{LAMBDA_ASYNC_PAYLOAD_BYTES}-byte limit for an asynchronous invocation")
    return body
