"""API Gateway's TOKEN authorizer: the template's Lambda authorizer asked per token, its answer
cached for the template's TTL (as API Gateway keeps it per identity source)."""

from __future__ import annotations

import threading
import time
from typing import Any

from local.aws.lambda_runtime import Functions, IntegrationTimeout
from local.aws.template import Authorizer

METHOD_ARN = "arn:aws:execute-api:us-east-1:000000000000:local/local/*/*"
CACHE_LIMIT = 10_000  # tokens cached before the lapsed entries are dropped


class AuthorizerFailure(Exception):
    """The authorizer failed otherwise than by saying "Unauthorized" (it crashed, e.g. AccessDenied
    reading the signing key): API Gateway answers 500 (AUTHORIZER_FAILURE), not 401."""


class TokenAuthorizer:
    def __init__(self, spec: Authorizer, functions: Functions, timeout: float | None, name: str | None = None) -> None:
        self.spec = spec
        self.functions = functions
        self.timeout = timeout
        self.name = name  # the function's deployed name: its executions are counted under it
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def authorize(self, token: str | None, give_up_at: float | None = None) -> dict[str, Any] | None:
        """The authorizer's context for this token, from the cache while its TTL lasts, or None for a 401.
        AuthorizerFailure when it fails otherwise; IntegrationTimeout past ``give_up_at``."""
        if not token:
            return None  # API Gateway answers 401 without calling the authorizer
        now = time.monotonic()
        if (cached := self._cached(token, now)) is not None:
            return cached
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": METHOD_ARN}
        try:
            policy = self.functions.invoke(self.spec.codeuri, self.spec.handler, event, self.timeout, give_up_at,
                                           name=self.name)
        except IntegrationTimeout:
            raise
        except Exception as exc:
            if str(exc) == "Unauthorized":  # the authorizer's way to say 401
                return None
            raise AuthorizerFailure(f"{type(exc).__name__}: {exc}") from exc  # any other error: a 500
        context = {"principalId": policy["principalId"], **policy.get("context", {})}
        self._keep(token, now, context)
        return context

    def _cached(self, token: str, now: float) -> dict[str, Any] | None:
        if self.spec.ttl <= 0:
            return None
        with self._lock:
            cached = self._cache.get(token)
        return cached[1] if cached and cached[0] > now else None

    def _keep(self, token: str, now: float, context: dict[str, Any]) -> None:
        if self.spec.ttl <= 0:
            return
        with self._lock:
            if len(self._cache) > CACHE_LIMIT:  # tokens expire: drop the lapsed entries
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[token] = (now + self.spec.ttl, context)
