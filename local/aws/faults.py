"""Fault injection on AWS calls: a share of DynamoDB, S3 and Lambda calls fail as AWS fails them.

``CRIMECAST_FAULTS="dynamodb:0.1,s3:0.1,lambda:0.05"`` (``CRIMECAST_FAULTS_SEED``, default 0)
on the local stack, or ``install(...)`` in a test. Each call to a named service fails with that
probability, before it reaches the service, with one of the errors AWS answers under load:
throttling (DynamoDB's ``ProvisionedThroughputExceededException`` and ``ThrottlingException``,
S3's ``503 SlowDown``, Lambda's ``429 TooManyRequestsException``) or a 5xx (``InternalServerError``,
``InternalError``, ``ServiceException``). The failure is botocore's ``before-send`` event answering
in place of the service, so botocore's own retries and the code's see exactly what they would
see from AWS. Every client made in this process after ``install`` has it: the functions', and
those of moto's Step Functions interpreter (its Lambda tasks then fail with
``Lambda.TooManyRequestsException`` or ``Lambda.ServiceException``, which the definition's Retry covers).

Spared: the calls moto's Step Functions interpreter makes to S3 for a Distributed Map (its
ItemReader and ResultWriter; Step Functions retries its own, where moto's client does not).
Not reproduced: a call that the service applied but whose answer was lost (a timeout after
the write): a failure here always means the call did nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import io
import json
import os
import random
import threading
from typing import Any
import uuid

ENV = "CRIMECAST_FAULTS"
_STEP_FUNCTIONS_KEY = "Credential=ak/"  # the access key of moto's interpreter's clients (boto_client_for)
SEED_ENV = "CRIMECAST_FAULTS_SEED"

# Per service: (status, error code, protocol) of the errors it answers under load.
ERRORS: dict[str, list[tuple[int, str]]] = {
    "dynamodb": [(400, "ProvisionedThroughputExceededException"), (400, "ThrottlingException"), (500, "InternalServerError")],
    "s3": [(503, "SlowDown"), (500, "InternalError")],
    "lambda": [(429, "TooManyRequestsException"), (500, "ServiceException")],
}


class _Raw(io.BytesIO):
    def stream(self, **_kwargs: Any) -> Any:
        contents = self.read()
        while contents:
            yield contents
            contents = self.read()


def _response(service: str, url: str, status: int, code: str) -> Any:
    from botocore.awsrequest import AWSResponse

    message = f"injected fault ({ENV})"
    if service == "s3":
        body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        headers = {"Content-Type": "application/xml"}
    elif service == "dynamodb":
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
        headers = {"Content-Type": "application/x-amz-json-1.0"}
    else:
        body = json.dumps({"Type": "Service" if status >= 500 else "User", "message": message})
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    request_id = str(uuid.uuid4())  # every AWS answer carries one (Step Functions' error cause quotes it)
    headers |= {"x-amzn-RequestId": request_id, "x-amz-request-id": request_id}
    return AWSResponse(url, status, headers, _Raw(body.encode()))


@dataclass
class Faults:
    """The shares of calls to fail, per service, and what failed so far (``injected``)."""

    shares: dict[str, float]
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    enabled: bool = True
    # One stream per service: which calls of a service fail does not depend on how its calls
    # interleave with other services' (threads), so a seed reproduces the same faults.
    _randoms: dict[str, random.Random] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        unknown = set(self.shares) - set(ERRORS)
        if unknown:
            raise ValueError(f"{ENV}: no faults for {sorted(unknown)} (only {sorted(ERRORS)})")
        self._randoms = {service: random.Random(f"{self.seed}:{service}") for service in self.shares}

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Faults:
        """``"dynamodb:0.1,s3:0.1,lambda:0.05"``."""
        shares = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            service, _, share = part.partition(":")
            value = float(share)
            if not 0 <= value < 1:
                raise ValueError(f"{ENV}: {part!r}: the share must be in [0, 1)")
            shares[service.strip().lower()] = value
        return cls(shares, seed)

    def __call__(self, request: Any = None, event_name: str = "", **_kwargs: Any) -> Any:
        """botocore's ``before-send``: None lets the call go; an AWSResponse answers in its place."""
        if not self.enabled:
            return None
        parts = event_name.split(".")
        service = parts[1] if len(parts) > 1 else ""
        share = self.shares.get(service)
        if not share or (service == "s3" and _STEP_FUNCTIONS_KEY in str(getattr(request, "headers", {}).get("Authorization", ""))):
            return None
        with self._lock:
            self.calls[service] += 1
            stream = self._randoms[service]
            if stream.random() >= share:
                return None
            status, code = stream.choice(ERRORS[service])
            self.injected[f"{service}:{code}"] += 1
        return _response(service, getattr(request, "url", ""), status, code)


_active: Faults | None = None


def _own_lock_after_fork() -> None:
    """A forked child (a Lambda sandbox) gets a lock of its own: a thread of the parent may hold
    the parent's. Its streams go on from where the parent's were at the fork, so each sandbox
    fails the same calls of its own for a seed; its counts are its own."""
    if _active is not None:
        _active._lock = threading.Lock()


os.register_at_fork(after_in_child=_own_lock_after_fork)


def _dispatch(**kwargs: Any) -> Any:
    return _active(**kwargs) if _active is not None else None


def install(faults: Faults | None) -> Faults | None:
    """Make ``faults`` the active injector (None: none) for every client made from now on; the
    clients made earlier (boto3's default session, the functions' cached clients) are dropped."""
    global _active
    import boto3
    from botocore import handlers

    entry = ("before-send", _dispatch, handlers.REGISTER_FIRST)
    if entry not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append(entry)
    _active = faults
    boto3.DEFAULT_SESSION = None
    from crimecast.adapters.aws import reset_clients

    reset_clients()
    return faults


def from_environment() -> Faults | None:
    """The injector ``CRIMECAST_FAULTS`` asks for, installed; None when it is unset."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    return install(Faults.parse(text, int(os.environ.get(SEED_ENV, "0"))))
