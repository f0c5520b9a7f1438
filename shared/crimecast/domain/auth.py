"""Passwords, tokens and the lockout rule: bcrypt hashes and HS256 JWTs.

Pure: the signing keys and the bcrypt cost are passed in (the login flow that fetches the
keys and stores the users is :mod:`crimecast.jobs.accounts`). Tokens name their user, the
user's token version (``ver``) and, for the page's display only, the roles; their header
names the key that signed them (``kid``).

Revocation: every user record holds a ``token_version``, a random value set when the user
is created and replaced whenever the user is disabled, re-roled, given a new password or
logs out. A token is good only while its ``ver`` equals the record's, so replacing the
value revokes every token of that user at once; a user deleted and re-created with the
same name gets a fresh random value and never revives old tokens. The authorizer reads the
roles from the record too, never from the token, so a demotion takes effect on the next
(uncached) check.

Keys: a :class:`KeyRing` holds the current key (which signs) and the previous one (which
still verifies), each named by a ``kid``. A rotation makes a new current key and keeps the
old one as previous, so tokens signed before it keep working until they expire; a rotation
after a leak keeps no old key at all (``rotated(keep_current=False)``).

Sign-in throttling (per client address and account, not a lock per account) is in
:mod:`crimecast.domain.login_throttle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
import json
import secrets
import time
from typing import Any
import uuid

import bcrypt
import jwt

from crimecast.domain.errors import ConfigurationError, CrimecastError

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


LEGACY_KID = "legacy"  # the kid of a secret that is a plain string: one key, from before rotation
LEGACY_TOKEN_VERSION = "0"  # the version of a user record written before token versions existed
MIN_KEY_LENGTH = 32  # HS256 wants at least 256 bits of key


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: str
    created: int = 0  # epoch seconds; 0 when unknown (a plain-string secret)

    def as_dict(self) -> dict[str, Any]:
        return {"kid": self.kid, "key": self.key, "created": self.created}


@dataclass(frozen=True)
class KeyRing:
    """The keys that verify tokens: ``current`` also signs them; ``previous`` is the key it
    replaced, kept so that tokens signed before the last rotation still verify."""

    current: SigningKey
    previous: SigningKey | None = None

    @classmethod
    def parse(cls, secret: str) -> KeyRing:
        """The secret's keys: JSON ``{"current": {"kid", "key"}, "previous": {...}}``, or a
        plain string, which is one key named :data:`LEGACY_KID` (how the secret starts)."""
        text = secret.strip()
        if not text.startswith("{"):
            return cls(SigningKey(LEGACY_KID, text))
        try:
            data = json.loads(text)
            keys = [None if data.get(slot) is None else
                    SigningKey(str(data[slot]["kid"]), str(data[slot]["key"]), int(data[slot].get("created", 0)))
                    for slot in ("current", "previous")]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ConfigurationError("the signing key secret is not valid JSON of current and previous keys") from None
        current, previous = keys
        if current is None or any(k and (not k.kid or len(k.key) < MIN_KEY_LENGTH) for k in keys):
            raise ConfigurationError("the signing key secret needs a current key of 32 characters or more, each with a kid")
        return cls(current, previous)

    def by_kid(self) -> Mapping[str, str]:
        keys = {self.current.kid: self.current.key}
        if self.previous and self.previous.kid != self.current.kid:
            keys[self.previous.kid] = self.previous.key
        return keys

    def rotated(self, new: SigningKey | None = None, keep_current: bool = True) -> KeyRing:
        """A ring whose current key is ``new`` (a fresh random one by default) and whose
        previous key is this ring's current one; this ring's previous key is dropped. With
        ``keep_current`` False (after a leak) the ring holds ``new`` alone: no token signed
        before verifies."""
        new = new or new_signing_key()
        if new.kid in self.by_kid():
            raise ConfigurationError("the new key's kid is already in use")
        return KeyRing(new, self.current if keep_current else None)

    def to_json(self) -> str:
        return json.dumps({"current": self.current.as_dict(),
                           "previous": self.previous.as_dict() if self.previous else None})


def new_signing_key(now: float | None = None) -> SigningKey:
    """A random 64-character key, named by its creation time and a random suffix."""
    now = time.time() if now is None else now
    return SigningKey(time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(4),
                      secrets.token_urlsafe(48), int(now))


def new_token_version() -> str:
    """A fresh, unguessable user token version: never equal to an earlier one."""
    return secrets.token_hex(8)


def token_version(user: dict[str, Any]) -> str:
    return str(user.get("token_version") or LEGACY_TOKEN_VERSION)


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says: its user, token version, id and signing key."""

    username: str
    roles: tuple[str, ...]  # as the token states them: for display, never for access
    version: str | None
    jti: str | None
    kid: str
    expires: int


def hash_password(plain: str, rounds: int = DEFAULT_ROUNDS) -> str:
    return bcrypt.hashpw(plain.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def verify_password(plain: str, hashed: str) -> bool:
    """True when ``plain`` matches the bcrypt ``hashed`` (constant-time inside bcrypt). A
    password that is not valid Unicode (a lone surrogate, from JSON's "\\ud800") is checked
    as its raw code points: it matches no password that could be set, after the same work."""
    try:
        return bcrypt.checkpw(plain.encode("utf-8", "surrogatepass"), hashed.encode())
    except ValueError:  # not a bcrypt hash, or a password over bcrypt's 72 bytes
        return False


def hash_cost(hashed: str) -> int | None:
    """The cost (log2 rounds) a bcrypt hash was made with (``$2b$12$...``: 12); None when
    ``hashed`` is not a bcrypt hash."""
    parts = hashed.split("$")
    if len(parts) != 4 or parts[1] not in ("2a", "2b", "2y") or not parts[2].isdigit():
        return None
    return int(parts[2])


def needs_rehash(hashed: str, rounds: int) -> bool:
    """True when a hash was made with a lower cost than ``rounds`` (the configured one, never
    below the minimum the settings allow): a sign-in with the right password replaces it."""
    cost = hash_cost(hashed)
    return cost is not None and cost < rounds


def _ring(key: str | SigningKey | KeyRing) -> KeyRing:
    if isinstance(key, KeyRing):
        return key
    return KeyRing(key if isinstance(key, SigningKey) else SigningKey(LEGACY_KID, key))


def generate_token(username: str, roles: tuple[str, ...] | list[str] = ("viewer",), *, key: str | SigningKey | KeyRing,
                   lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS, version: str | None = None) -> str:
    """A token signed with the ring's current key (a plain string key is :data:`LEGACY_KID`),
    carrying the user's token ``version`` when given."""
    signing = _ring(key).current
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": username, "roles": list(roles), "iat": now, "nbf": now,
              "exp": now + lifetime_seconds, "jti": uuid.uuid4().hex}
    if version is not None:
        claims["ver"] = version
    return jwt.encode(claims, signing.key, algorithm=ALGORITHM, headers={"kid": signing.kid})


def unverified_kid(token: str) -> str | None:
    """The ``kid`` a token's header names (unverified: only to choose the key)."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) and kid else None


def read_token(token: str, *, key: str | SigningKey | KeyRing) -> TokenClaims:
    """The verified claims of a token: the key chosen by the header's ``kid`` among the
    ring's current and previous keys (no kid, or an unknown one: refused); algorithm,
    issuer and audience pinned, expiry enforced."""
    if not token or len(token) > 4096:
        raise AuthError("invalid token")
    kid = unverified_kid(token)
    secret = _ring(key).by_kid().get(kid) if kid else None
    if secret is None:
        raise AuthError("invalid token")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER, audience=AUDIENCE,
                            leeway=LEEWAY_SECONDS, options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]})
    except jwt.PyJWTError:
        raise AuthError("invalid token") from None
    version, jti, roles = claims.get("ver"), claims.get("jti"), claims.get("roles")
    return TokenClaims(str(claims["sub"]), tuple(r for r in roles if r in ROLES) if isinstance(roles, list) else (),
                       version if isinstance(version, str) else None, jti if isinstance(jti, str) else None,
                       str(kid), int(claims["exp"]))


def check_against_record(claims: TokenClaims, user: dict[str, Any] | None) -> Identity:
    """The identity a verified token stands for now: its user must exist, be enabled and
    hold the token's version; the roles come from the record, never from the token."""
    if not usable(user) or claims.version is None or not secrets.compare_digest(claims.version, token_version(user)):  # type: ignore[arg-type]
        raise AuthError("invalid token")
    return Identity(claims.username, tuple(r for r in (str(x) for x in user.get("roles", [])) if r in ROLES))  # type: ignore[union-attr]


def usable(user: dict[str, Any] | None) -> bool:
    return bool(user) and not user.get("disabled")  # type: ignore[union-attr]


def authenticate(user: dict[str, Any] | None, password: str, rounds: int = DEFAULT_ROUNDS) -> Identity:
    """Check a password against a user record. An unknown user, a disabled one and a wrong
    password all get the same answer after the same bcrypt work: a user the check cannot use
    is checked against a dummy hash of the configured cost ``rounds``."""
    if len(password) > MAX_FIELD_LENGTH:
        raise AuthError("invalid username or password")
    hashed = str(user["password_hash"]) if usable(user) else _dummy_hash(rounds)  # type: ignore[index]
    if not verify_password(password, hashed) or not usable(user):
        raise AuthError("invalid username or password")
    return Identity(str(user["username"]), tuple(str(r) for r in user.get("roles", ["viewer"])))  # type: ignore[index, union-attr]
