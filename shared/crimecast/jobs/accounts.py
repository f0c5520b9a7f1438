"""Staff accounts: the login flow (OAuth2 password grant), the authorizer's check, and
user management, over the users store and the signing key in Secrets Manager.

The rules themselves (bcrypt, JWT claims, lockout) are pure, in :mod:`crimecast.domain.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crimecast import settings
from crimecast.adapters.secrets import get_secret
from crimecast.adapters.stores import Stores
from crimecast.domain import auth
from crimecast.domain.errors import InvalidInputError, NotFoundError

MIN_PASSWORD_LENGTH = 12


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


def login(stores: Stores, username: str, password: str) -> Token:
    """A token for the right password; AuthError (the same for every cause) otherwise, with
    the failure counted towards the account's lockout."""
    user = stores.users.get(username)
    try:
        identity = auth.authenticate(user, password, rounds=_rounds())
    except auth.AuthError:
        if user:
            config = settings.load(settings.UserSettings)
            policy = auth.LockoutPolicy(config.lockout_attempts, config.lockout_seconds)
            stores.users.put(auth.after_failure(user, policy))
        raise
    if user and ("failed_attempts" in user or "locked_until" in user):
        stores.users.put(auth.after_success(user))
    return issue_token(identity)


def verify_bearer(stores: Stores, token: str) -> auth.Identity:
    """The identity of a bearer token whose user still exists and is enabled; AuthError otherwise."""
    identity = auth.verify_token(token, key=signing_key())
    if not auth.usable(stores.users.get(identity.username)):  # deleted or disabled since the token was issued
        raise auth.AuthError("invalid token")
    return identity


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= auth.MAX_FIELD_LENGTH:
        raise InvalidInputError(f"the password must have {MIN_PASSWORD_LENGTH} to {auth.MAX_FIELD_LENGTH} characters")


def add_user(stores: Stores, username: str, password: str, role: str = "viewer") -> dict[str, Any]:
    """A new user (ConflictError if the name is taken); every user is a viewer."""
    _check_password(password)
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
    stores.users.put({**existing_user(stores, username), "disabled": True})


def reset_password(stores: Stores, username: str, password: str) -> None:
    """A new password, and the lockout counters cleared."""
    _check_password(password)
    user = auth.after_success(existing_user(stores, username))
    stores.users.put({**user, "password_hash": auth.hash_password(password, _rounds())})


def list_users(stores: Stores) -> list[dict[str, Any]]:
    return [{"username": u["username"], "roles": list(u.get("roles", [])), "disabled": bool(u.get("disabled"))}
            for u in stores.users.list()]
