"""Passwords, tokens and the lockout rule: bcrypt hashes and HS256 JWTs.

Pure: the signing key and the bcrypt cost are passed in (the login flow that fetches the
key and stores the users is :mod:`crimecast.jobs.accounts`). Tokens name their user and
roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
import time
from typing import Any
import uuid

import bcrypt
import jwt

from crimecast.domain.errors import CrimecastError

ISSUER = "crimecast"
AUDIENCE = "crimecast-api"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 10
DEFAULT_LIFETIME_SECONDS = 30 * 60
ROLES = ("viewer", "admin")
MAX_FIELD_LENGTH = 128


DEFAULT_ROUNDS = 12  # bcrypt cost: about 0.25 s a hash here


@cache
def _dummy_hash(rounds: int) -> str:
    """Checked when the user does not exist, so an unknown name costs the same time as a
    wrong password. Made on first use: a bcrypt hash takes ~0.25 s, too long for import."""
    return bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(rounds=rounds)).decode()


class AuthError(CrimecastError):
    """Credentials or token refused; the message is safe to show, and never says which part was wrong."""


@dataclass(frozen=True)
class Identity:
    username: str
    roles: tuple[str, ...]


def hash_password(plain: str, rounds: int = DEFAULT_ROUNDS) -> str:
    return bcrypt.hashpw(plain.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def verify_password(plain: str, hashed: str) -> bool:
    """True when ``plain`` matches the bcrypt ``hashed`` (constant-time inside bcrypt)."""
    try:
        return bcrypt.checkpw(plain.encode(), hashed.encode())
    except ValueError:  # not a bcrypt hash
        return False


def generate_token(username: str, roles: tuple[str, ...] | list[str] = ("viewer",), *, key: str,
                   lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": username, "roles": list(roles), "iat": now, "nbf": now,
              "exp": now + lifetime_seconds, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_token(token: str, *, key: str) -> Identity:
    """The token's identity; algorithm, issuer and audience pinned, expiry enforced."""
    if not token or len(token) > 4096:
        raise AuthError("invalid token")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER, audience=AUDIENCE,
                            leeway=LEEWAY_SECONDS, options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]})
    except jwt.PyJWTError:
        raise AuthError("invalid token") from None
    roles = tuple(r for r in claims.get("roles", []) if r in ROLES)
    return Identity(str(claims["sub"]), roles)


@dataclass(frozen=True)
class LockoutPolicy:
    """After ``attempts`` failures in a row an account is locked for ``seconds``."""

    attempts: int = 5
    seconds: int = 900


def usable(user: dict[str, Any] | None) -> bool:
    return bool(user) and not user.get("disabled")  # type: ignore[union-attr]


def is_locked(user: dict[str, Any] | None, now: float) -> bool:
    """True while the user's lock runs (``locked_until`` in epoch seconds, after ``now``)."""
    return bool(user) and float(user.get("locked_until", 0)) > now  # type: ignore[union-attr]


def locks_now(failures: int, policy: LockoutPolicy) -> bool:
    """True when ``failures`` in a row (counted atomically by the store) reach the limit."""
    return failures >= policy.attempts


def lock_end(policy: LockoutPolicy, now: float) -> int:
    """When a lock set at ``now`` ends (whole epoch seconds, as stored)."""
    return int(now + policy.seconds)


def authenticate(user: dict[str, Any] | None, password: str, now: float | None = None,
                 rounds: int = DEFAULT_ROUNDS) -> Identity:
    """Check a password against a user record. An unknown user, a disabled or locked one and
    a wrong password all get the same answer, after the same bcrypt work."""
    now = time.time() if now is None else now
    if len(password) > MAX_FIELD_LENGTH:
        raise AuthError("invalid username or password")
    hashed = str(user["password_hash"]) if usable(user) else _dummy_hash(rounds)
    matches = verify_password(password, hashed)
    if not matches or not usable(user) or is_locked(user, now):
        raise AuthError("invalid username or password")
    return Identity(str(user["username"]), tuple(str(r) for r in user.get("roles", ["viewer"])))  # type: ignore[index, union-attr]


def after_failure(user: dict[str, Any], policy: LockoutPolicy, now: float | None = None) -> dict[str, Any]:
    """The user record after one more failed login: counted, and locked at the limit. The
    rule on a record; the login flow applies it in the store with conditional updates
    (:meth:`crimecast.adapters.user_store.UserStore.record_failure`), never by writing a
    record back."""
    now = time.time() if now is None else now
    failures = int(user.get("failed_attempts", 0)) + 1
    updated = {**user, "failed_attempts": failures}
    if locks_now(failures, policy):
        updated.update(failed_attempts=0, locked_until=lock_end(policy, now))
    return updated

