"""Lambda's asynchronous contract (InvocationType ``Event``), as the embedded Lambda keeps it.

As AWS documents it (Lambda developer guide, "How Lambda handles errors and retries with
asynchronous invocation" and "Capturing records of Lambda asynchronous invocations"):

- a function error (the handler raised, or timed out) is retried ``MaximumRetryAttempts``
  times (default 2): the first retry a minute after the first attempt, the second two
  minutes after the second;
- an event older than ``MaximumEventAgeInSeconds`` (default 6 h) when its next attempt
  comes up is dropped (still queued behind other invocations, or waiting for a retry);
- what is dropped either way goes to the ``OnFailure`` destination as an invocation record
  (``invocation_record``), sent with the function's execution role; the ``condition`` says
  why: ``RetriesExhausted`` or ``EventAgeExceeded``. Every attempt has the same request id.

- a throttled attempt (the function's reserved concurrency, or the account's unreserved
  concurrency for a function that reserves none, all in use: ``Throttled``) is not a
  function error: the event goes back to Lambda's queue and is tried again, the wait growing
  from a second to five minutes, until it runs or reaches its age; it uses none of the retries.
  (Lambda's own errors, retried the same way, do not happen here.)

``set_time_scale`` shortens Lambda's clock (the retry waits and the age limit alike) for
tests: two retries take three minutes on AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
import time
from typing import Any
import uuid

from local.aws.template import AsyncInvokeConfig

RETRY_WAITS_S = (60.0, 120.0)  # before the first retry, and before each later one
THROTTLE_FIRST_WAIT_S = 1.0  # a throttled event's wait before it is tried again, doubling each time
THROTTLE_MAX_WAIT_S = 300.0
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
RECORD_VERSION = "1.0"

_time_scale = 1.0


def set_time_scale(scale: float) -> None:
    """Scale Lambda's asynchronous clock: the waits before retries and ``MaximumEventAgeInSeconds``
    (tests: 0.001 makes a minute 60 ms); 1 is AWS's. The template's values are never changed."""
    global _time_scale
    if scale <= 0:
        raise ValueError("the time scale must be positive")
    _time_scale = scale


def time_scale() -> float:
    return _time_scale


class EventExpired(Exception):
    """The event reached its maximum age before its attempt could start (queued behind others)."""


class Throttled(Exception):
    """The function's reserved concurrency, or the account's unreserved pool for a function that
    reserves none, was all in use: Lambda ran nothing (429 TooManyRequestsException, its ``reason``)."""

    def __init__(self, function: str, limit: int, account: bool = False) -> None:
        executions = "of the account's unreserved executions" if account else "reserved executions"
        super().__init__(f"Rate Exceeded. ({function}: {limit} of {limit} {executions} in use)")
        self.reason = "ConcurrentInvocationLimitExceeded" if account else "ReservedFunctionConcurrentInvocationLimitExceeded"


def _timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def invocation_record(function_arn: str, request_id: str, condition: str, attempts: int, event: dict[str, Any],
                      error: dict[str, Any] | None) -> dict[str, Any]:
    """What Lambda sends an OnFailure destination: the request, and the last attempt's response
    (none when the event expired before any attempt: AWS documents no response then)."""
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "timestamp": _timestamp(),
        "requestContext": {"requestId": request_id, "functionArn": f"{function_arn}:$LATEST",
                           "condition": condition, "approximateInvokeCount": attempts},
        "requestPayload": event,
    }
    if error is not None:
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        record["responsePayload"] = error
    return record


def run_attempts(attempt: Callable[[float, str], None], config: AsyncInvokeConfig, function_arn: str,
                 event: dict[str, Any], error_document: Callable[[BaseException], dict[str, Any]],
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Any] | None:
    """Run an accepted event as Lambda would: ``attempt(start_by, request_id)`` runs the handler
    once (raising its error, Throttled if no concurrency was left for it, or EventExpired if it
    could not start by ``start_by``, a ``time.monotonic()``); None once an attempt succeeds, else
    the invocation record to send."""
    accepted = time.monotonic()
    expires = accepted + config.max_event_age_s * _time_scale
    request_id = str(uuid.uuid4())
    attempts, error, throttle_wait = 0, None, THROTTLE_FIRST_WAIT_S
    while True:
        if time.monotonic() > expires:
            return invocation_record(function_arn, request_id, EVENT_AGE_EXCEEDED, attempts, event, error)
        try:
            attempt(expires, request_id)
        except EventExpired:
            return invocation_record(function_arn, request_id, EVENT_AGE_EXCEEDED, attempts, event, error)
        except Throttled:  # back to the queue: not an attempt
            sleep(max(0.0, min(throttle_wait * _time_scale, expires + 0.001 - time.monotonic())))
            throttle_wait = min(2 * throttle_wait, THROTTLE_MAX_WAIT_S)
            continue
        except Exception as exc:  # noqa: BLE001 - a function error: Lambda's to retry
            attempts += 1
            error = error_document(exc)
        else:
            return None
        if attempts > config.max_retry_attempts:
            return invocation_record(function_arn, request_id, RETRIES_EXHAUSTED, attempts, event, error)
        due = time.monotonic() + RETRY_WAITS_S[min(attempts, len(RETRY_WAITS_S)) - 1] * _time_scale
        sleep(max(0.0, min(due, expires + 0.001) - time.monotonic()))  # at its expiry, if that comes first
