"""Staff accounts: the login flow (OAuth2 password grant), the authorizer's check, and
user management, over the users store and the signing key in Secrets Manager.

The rules themselves (bcrypt, JWT claims, lockout) are pure, in :mod:`crimecast.domain.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any

from crimecast import settings
from crimecast.adapters.secrets import get_secret
from crimecast.adapters.stores import Stores
from crimecast.domain import auth, passwords
from crimecast.domain.errors import NotFoundError


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: int
    roles: tuple[str, ...]


def signing_key() -> str:
    """The HS256 key: from Secrets Manager on AWS and the local stack, cached 5 minutes."""
    return get_secret(settings.load(settings.UserSettings).jwt_secret_arn, max_age=300)


def _rounds() -> int:
    return settings.load(settings.PasswordSettings).bcrypt_rounds


def issue_token(identity: auth.Identity) -> Token:
    lifetime = int(settings.load(settings.UserSettings).token_minutes * 60)
    token = auth.generate_token(identity.username, identity.roles, key=signing_key(), lifetime_seconds=lifetime)
    return Token(token, lifetime, identity.roles)


def _policy() -> auth.LockoutPolicy:
    config = settings.load(settings.UserSettings)
    return auth.LockoutPolicy(config.lockout_attempts, config.lockout_seconds)


def login(stores: Stores, username: str, password: str) -> Token:
    """A token for the right password; AuthError (the same for every cause) otherwise, with
    the failure counted towards the account's lockout.

    The user is read once; afterwards only the counters are written, by conditional
    updates that hold only while the user still has the password hash just checked (see
    ``UserStore.record_failure``): never a write-back of the record, so a delete, disable
    or password reset made meanwhile stands. An unknown or disabled user costs the same
    bcrypt check and writes nothing."""
    now = time.time()
    user = stores.users.get(username)
    try:
        identity = auth.authenticate(user, password, now=now, rounds=_rounds())
    except auth.AuthError:
        if auth.usable(user):
            policy = _policy()
            stores.users.record_failure(username, str(user["password_hash"]), attempts=policy.attempts,  # type: ignore[index]
                                        lock_until=auth.lock_end(policy, now), now=int(now))
        raise
    if ("failed_attempts" in user or "locked_until" in user) and not stores.users.clear_failures(  # type: ignore[operator]
            username, str(user["password_hash"]), now=int(now)):  # type: ignore[index]
        raise auth.AuthError("invalid username or password")  # changed since read: deleted, disabled, reset or locked
    return issue_token(identity)


def verify_bearer(stores: Stores, token: str) -> auth.Identity:
    """The identity of a bearer token whose user still exists and is enabled; AuthError otherwise."""
    identity = auth.verify_token(token, key=signing_key())
    if not auth.usable(stores.users.get(identity.username)):  # deleted or disabled since the token was issued
        raise auth.AuthError("invalid token")
    return identity


def add_user(stores: Stores, username: str, password: str, role: str = "viewer") -> dict[str, Any]:
    """A new user (ConflictError if the name is taken); every user is a viewer."""
    passwords.check(password)
    roles = sorted({role, "viewer"})
    stores.users.put({"username": username, "password_hash": auth.hash_password(password, _rounds()), "roles": roles},
                     only_if_new=True)
    return {"username": username, "roles": roles}


def existing_user(stores: Stores, username: str) -> dict[str, Any]:
    user = stores.users.get(username)
    if not user:
        raise NotFoundError(f"no user {username!r}")
    return user


def delete_user(stores: Stores, username: str) -> None:
    if not stores.users.delete(username):
        raise NotFoundError(f"no user {username!r}")


def disable_user(stores: Stores, username: str) -> None:
    stores.users.disable(username)


def reset_password(stores: Stores, username: str, password: str) -> None:
    """A new password, and the lockout counters cleared (one conditional update: a user
    deleted meanwhile is not re-created)."""
    passwords.check(password)
    stores.users.set_password(username, auth.hash_password(password, _rounds()))


def list_users(stores: Stores) -> list[dict[str, Any]]:
    return [{"username": u["username"], "roles": list(u.get("roles", [])), "disabled": bool(u.get("disabled"))}
            for u in stores.users.list()]
