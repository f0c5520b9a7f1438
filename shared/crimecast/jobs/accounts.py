"""Staff accounts: the login flow (OAuth2 password grant), the authorizer's check, user
management, logout and key rotation, over the users store and the signing keys in Secrets
Manager.

The rules themselves are pure: bcrypt, JWT claims, token versions and key rings in
:mod:`crimecast.domain.auth`, the sign-in throttle (per client address and account, with a
bound per account on new addresses) in :mod:`crimecast.domain.login_throttle`.

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
import os
import threading
import time
from typing import Any

from crimecast import settings
from crimecast.adapters.secrets import get_secret, put_secret
from crimecast.adapters.stores import Stores, get_stores
from crimecast.domain import auth, login_throttle, passwords
from crimecast.domain.errors import ConflictError, InvalidInputError, NotFoundError
from crimecast.domain.login_throttle import ThrottleRule


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: int
    roles: tuple[str, ...]


KEY_CACHE_SECONDS = 300
REFETCH_INTERVAL_SECONDS = 30  # an unknown kid fetches the secret again, at most this often
_refetch_lock = threading.Lock()
_last_refetch = [0.0]


def _lock_after_fork() -> None:
    """A forked child's own lock: one a thread of the parent held at the fork would stay held."""
    global _refetch_lock
    _refetch_lock = threading.Lock()


os.register_at_fork(after_in_child=_lock_after_fork)


def signing_keys(force_fetch: bool = False) -> auth.KeyRing:
    """The HS256 keys (current and previous): from Secrets Manager on AWS and the local
    stack, cached 5 minutes. A plain-string secret is one key, kid ``legacy``."""
    arn = settings.load(settings.UserSettings).jwt_secret_arn
    return auth.KeyRing.parse(get_secret(arn, max_age=KEY_CACHE_SECONDS, force_fetch=force_fetch))


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


def rotate_keys(force: bool = False, now: float | None = None, stores: Stores | None = None) -> auth.KeyRing:
    """Make a new current signing key. Returns the new ring.

    Without ``force``: the current key is kept as previous (the one before is dropped) and
    logs nobody out: tokens signed with it verify until they expire. A second rotation
    within a token's lifetime plus the 5-minute key cache would drop a key such tokens may
    still use, so it is refused (ConflictError).

    With ``force`` (after a leak): the ring keeps no old key, and every user's token version
    is replaced (``stores``, default ``get_stores()``), so every token issued before stops
    working at its next check (API Gateway's 60-second authorizer cache aside), even in a
    container whose key cache still holds the leaked key: the authorizer reads the user's
    version on every check. New tokens are signed with the key fetched afresh (see
    ``issue_token``), so no container goes on signing with the leaked one."""
    ring = signing_keys(force_fetch=True)
    now = time.time() if now is None else now
    wait = int(settings.load(settings.UserSettings).token_minutes * 60) + KEY_CACHE_SECONDS
    if not force and ring.previous and now - ring.current.created < wait:
        raise ConflictError(f"the current key {ring.current.kid} is younger than {wait} s: tokens signed with the "
                            f"previous key {ring.previous.kid} may still be in use; rotate later, or with --force")
    ring = ring.rotated(auth.new_signing_key(now), keep_current=not force)
    put_secret(settings.load(settings.UserSettings).jwt_secret_arn, ring.to_json())
    if force:
        stores = stores or get_stores()
        for user in stores.users.list():
            stores.users.update(str(user["username"]), token_version=auth.new_token_version())
    return ring


def _rounds() -> int:
    return settings.load(settings.PasswordSettings).bcrypt_rounds


def issue_token(identity: auth.Identity, version: str | None = None) -> Token:
    """A token for ``identity`` carrying the user's token ``version`` (the record's
    ``token_version``); signed with the current key, named in its ``kid``."""
    lifetime = int(settings.load(settings.UserSettings).token_minutes * 60)
    # The keys fetched afresh: one Secrets Manager call per sign-in (beside a bcrypt check), so
    # that no container signs with a key a forced rotation dropped while its cache still has it.
    token = auth.generate_token(identity.username, identity.roles, key=signing_keys(force_fetch=True),
                                lifetime_seconds=lifetime, version=version)
    return Token(token, lifetime, identity.roles)


def _now() -> int:
    """The throttle's clock: epoch seconds."""
    return int(time.time())


def _rule() -> ThrottleRule:
    return settings.load(settings.LoginSettings).rule()


ADMISSION_TRIES = 5  # conditional writes lost to parallel attempts before this one is refused


def _admit(stores: Stores, username: str, address: str, now: int, rule: ThrottleRule) -> bool:
    """Admit one attempt of ``address`` at ``username``, counted in advance as a failure: True
    when the throttle's conditional writes let it through (see
    :mod:`crimecast.domain.login_throttle`). A read only proposes; the write decides."""
    attempts = stores.login_attempts
    for _ in range(ADMISSION_TRIES):
        record = attempts.get(username, address)
        admitted = login_throttle.admit(record, now, rule)
        if admitted is None:
            return False  # held
        if attempts.replace(username, address, admitted, read_seq=record.seq if record else 0, rule=rule):
            break
    else:
        return False  # a burst from this address kept winning the record: refused, as a held one
    return admitted.trusted(now) or attempts.count_new_address_attempt(
        username, login_throttle.hour_window(now), rule.new_address_attempts_per_hour)


def login(stores: Stores, username: str, password: str, source_ip: str | None = None) -> Token:
    """A token for the right password; AuthError (the same for every cause) otherwise.

    ``source_ip`` is the client's address (API Gateway's ``requestContext.identity.sourceIp``):
    the throttle admits the attempt first, counting it as a failure of that address at that
    account (:mod:`crimecast.domain.login_throttle`), so a held address gets no bcrypt check
    and no verdict, whatever its password, and a stranger's failures never hold the user's
    own address. An admitted attempt reads the user and checks the password (an unknown or
    disabled user against a dummy hash of the same cost); a right one is confirmed by a
    conditional write that holds only while the user is still the one checked (so a delete,
    disable, reset or role change made meanwhile is not answered with a token), which also
    stores the password at the current bcrypt cost when its hash was made with a lower one.
    Then the address's failures are cleared and the address is trusted."""
    now = _now()
    rule = _rule()
    address = login_throttle.address_key(source_ip)
    if not _admit(stores, username, address, now, rule):
        raise auth.AuthError("invalid username or password")
    user = stores.users.get(username)
    rounds = _rounds()
    identity = auth.authenticate(user, password, rounds=rounds)  # a failure was counted on admission
    hashed = str(user["password_hash"])  # type: ignore[index]
    new_hash = auth.hash_password(password, rounds) if auth.needs_rehash(hashed, rounds) else None
    version = str(user["token_version"]) if "token_version" in user else None  # type: ignore[operator, index]
    if not stores.users.confirm_sign_in(username, hashed, version, new_hash=new_hash):
        raise auth.AuthError("invalid username or password")  # changed since read: deleted, disabled, reset, re-roled
    stores.login_attempts.record_sign_in(username, address, now, rule)
    return issue_token(identity, auth.token_version(user or {}))


def unlock(stores: Stores, username: str) -> int:
    """Forget every throttle record of the account: its addresses' failures and holds, its
    new-address count this hour, and which addresses it trusts. How many records there were."""
    return stores.login_attempts.forget(username)


def verify_bearer(stores: Stores, token: str) -> auth.Identity:
    """The identity of a bearer token, as the user record has it now: the token must be
    signed by the current or previous key (by its kid), and its user must still exist, be
    enabled and hold the token's version; the roles are the record's. AuthError otherwise."""
    claims = auth.read_token(token, key=_keys_for(token))
    return auth.check_against_record(claims, stores.users.get_identity(claims.username))


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
    """A new password and every token of the user revoked, in one conditional update (a user
    deleted meanwhile is not re-created); then the user is unlocked (:func:`unlock`)."""
    passwords.check(password)
    stores.users.set_password(username, auth.hash_password(password, _rounds()), auth.new_token_version())
    unlock(stores, username)


def list_users(stores: Stores) -> list[dict[str, Any]]:
    return [{"username": u["username"], "roles": list(u.get("roles", [])), "disabled": bool(u.get("disabled"))}
            for u in stores.users.list()]
