"""Staff accounts: the login flow (OAuth2 password grant), the authorizer's check, user
management, logout and key rotation, over the users store and the signing keys in Secrets
Manager.

The rules themselves (bcrypt, JWT claims, token versions, key rings, lockout) are pure, in
:mod:`crimecast.domain.auth`.

Revocation: each user record holds a ``token_version`` that every token of the user
carries; :func:`verify_bearer` (the authorizer) refuses a token whose version is not the
record's, and takes the roles from the record. Disabling a user, changing the roles,
resetting the password and logging out replace the version (:func:`revoke_tokens`).

Logout replaces the version too, rather than keeping a deny list of token ids: the
authorizer already reads the user record on every check, so this costs no extra read, no
new table or TTL clean-up, and no wider IAM (the authorizer reads only the users table).
The price: logging out ends every session of that user, on every device, not only the
caller's. For a staff tool with 30-minute tokens, that is the safer behaviour anyway.

API Gateway caches the authorizer's answer per token for at most 60 s (template.yaml,
ReauthorizeEvery), so a revoked token may still pass for up to a minute on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import Any

from crimecast import settings
from crimecast.adapters.secrets import get_secret, put_secret
from crimecast.adapters.stores import Stores
from crimecast.domain import auth, passwords
from crimecast.domain.errors import ConflictError, InvalidInputError, NotFoundError


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: int
    roles: tuple[str, ...]


KEY_CACHE_SECONDS = 300
REFETCH_INTERVAL_SECONDS = 30  # an unknown kid fetches the secret again, at most this often
_refetch_lock = threading.Lock()
_last_refetch = [0.0]


def signing_keys(force_fetch: bool = False) -> auth.KeyRing:
    """The HS256 keys (current and previous): from Secrets Manager on AWS and the local
    stack, cached 5 minutes. A plain-string secret is one key, kid ``legacy``."""
    arn = settings.load(settings.UserSettings).jwt_secret_arn
    return auth.KeyRing.parse(get_secret(arn, max_age=KEY_CACHE_SECONDS, force_fetch=force_fetch))


def signing_key() -> str:
    """The current HS256 key."""
    return signing_keys().current.key


def _keys_for(token: str) -> auth.KeyRing:
    """The cached keys, or fresh ones when the token names a kid they lack: another
    container may already sign with a key rotated in after this one's cache was filled.
    Fetched again at most every 30 s, so made-up kids cannot flood Secrets Manager."""
    ring = signing_keys()
    kid = auth.unverified_kid(token)
    if kid is None or kid in ring.by_kid():
        return ring
    with _refetch_lock:
        if time.monotonic() - _last_refetch[0] < REFETCH_INTERVAL_SECONDS:
            return ring
        _last_refetch[0] = time.monotonic()
    return signing_keys(force_fetch=True)


def rotate_keys(force: bool = False, now: float | None = None) -> auth.KeyRing:
    """Make a new current signing key and keep the current one as previous (the one before
    is dropped). Logs nobody out: tokens signed with the old key verify until they expire,
    as long as there is no second rotation within a token's lifetime plus the 5-minute key
    cache; a rotation sooner than that is refused (ConflictError) unless ``force`` (after a
    leak: then tokens signed with the dropped key stop working). Returns the new ring."""
    ring = signing_keys(force_fetch=True)
    now = time.time() if now is None else now
    wait = int(settings.load(settings.UserSettings).token_minutes * 60) + KEY_CACHE_SECONDS
    if not force and ring.previous and now - ring.current.created < wait:
        raise ConflictError(f"the current key {ring.current.kid} is younger than {wait} s: tokens signed with the "
                            f"previous key {ring.previous.kid} may still be in use; rotate later, or with --force")
    ring = ring.rotated(auth.new_signing_key(now))
    put_secret(settings.load(settings.UserSettings).jwt_secret_arn, ring.to_json())
    return ring


def _rounds() -> int:
    return settings.load(settings.PasswordSettings).bcrypt_rounds


def issue_token(identity: auth.Identity, version: str | None = None) -> Token:
    """A token for ``identity`` carrying the user's token ``version`` (the record's
    ``token_version``); signed with the current key, named in its ``kid``."""
    lifetime = int(settings.load(settings.UserSettings).token_minutes * 60)
    token = auth.generate_token(identity.username, identity.roles, key=signing_keys(), lifetime_seconds=lifetime,
                                version=version)
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
    return issue_token(identity, auth.token_version(user or {}))


def verify_bearer(stores: Stores, token: str) -> auth.Identity:
    """The identity of a bearer token, as the user record has it now: the token must be
    signed by the current or previous key (by its kid), and its user must still exist, be
    enabled and hold the token's version; the roles are the record's. AuthError otherwise."""
    claims = auth.read_token(token, key=_keys_for(token))
    return auth.check_against_record(claims, stores.users.get(claims.username))


def revoke_tokens(stores: Stores, username: str) -> None:
    """End every token of the user: a new token version (NotFoundError if no such user)."""
    if not stores.users.update(username, token_version=auth.new_token_version()):
        raise NotFoundError(f"no user {username!r}")


def logout(stores: Stores, username: str) -> None:
    """Log the user out everywhere: every token of the user stops working (see the module's
    docstring for why every session, not only the caller's)."""
    revoke_tokens(stores, username)


def update_user(stores: Stores, username: str, role: str | None = None, disabled: bool | None = None) -> dict[str, Any]:
    """Change a user's role (``viewer`` or ``admin``; every user stays a viewer) and/or
    disable or re-enable the account. Revokes the user's tokens, so the change holds from
    the next request. NotFoundError if there is no such user."""
    changes: dict[str, Any] = {"token_version": auth.new_token_version()}
    if role is not None:
        if role not in auth.ROLES:
            raise InvalidInputError(f"role must be one of {', '.join(auth.ROLES)}")
        changes["roles"] = sorted({role, "viewer"})
    if disabled is not None:
        changes["disabled"] = disabled
    updated = stores.users.update(username, **changes)
    if not updated:
        raise NotFoundError(f"no user {username!r}")
    return {"username": username, "roles": list(updated.get("roles", [])), "disabled": bool(updated.get("disabled"))}


def add_user(stores: Stores, username: str, password: str, role: str = "viewer") -> dict[str, Any]:
    """A new user (ConflictError if the name is taken); every user is a viewer."""
    passwords.check(password)
    roles = sorted({role, "viewer"})
    stores.users.put({"username": username, "password_hash": auth.hash_password(password, _rounds()), "roles": roles,
                      "token_version": auth.new_token_version()}, only_if_new=True)
    return {"username": username, "roles": roles}


def delete_user(stores: Stores, username: str) -> None:
    if not stores.users.delete(username):
        raise NotFoundError(f"no user {username!r}")


def disable_user(stores: Stores, username: str) -> None:
    """Disable the account; its tokens stop working (a new token version)."""
    update_user(stores, username, disabled=True)


def reset_password(stores: Stores, username: str, password: str) -> None:
    """A new password, the lockout counters cleared and every token of the user revoked, in
    one conditional update (a user deleted meanwhile is not re-created)."""
    passwords.check(password)
    stores.users.set_password(username, auth.hash_password(password, _rounds()), auth.new_token_version())


def list_users(stores: Stores) -> list[dict[str, Any]]:
    return [{"username": u["username"], "roles": list(u.get("roles", [])), "disabled": bool(u.get("disabled"))}
            for u in stores.users.list()]
