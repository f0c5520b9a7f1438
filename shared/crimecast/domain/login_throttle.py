"""The sign-in throttle: a growing delay per client address and account, and a bound per
account on the attempts from addresses it has never signed in from.

Why not a lock per account: anyone could keep a known account (``admin``) locked with a
few wrong passwords every quarter of an hour. The OWASP Authentication Cheat Sheet's
alternative is to key the limit on the client and the account together, so a stranger's
failures slow the stranger, not the user. Pure: the store that holds the records and makes
each decision with one conditional write is :mod:`crimecast.adapters.login_attempt_store`,
the login flow that calls it :mod:`crimecast.jobs.accounts`.

The rule, per (client address, account):

- Every attempt is counted as a failure *when it is admitted*, before its password is
  checked, by one conditional write of the record it was admitted on (see ``admit``); a
  right password then resets the count. So parallel attempts cannot all be judged against
  one stale read: each must win its own write, and once the record holds the address no
  attempt is judged at all, whatever its password.
- The first ``free_attempts`` in a row are admitted at once; after the n-th failure in a
  row (n >= ``free_attempts``) the address waits ``first_hold_seconds * 2**(n -
  free_attempts)`` seconds, at most ``max_hold_seconds``, before its next attempt is
  admitted: with the defaults 5 free tries, then 30 s, 1, 2, 4, 8 min, then one try per
  15 min (under 100 guesses a day from one address).
- A record untouched for ``forget_seconds`` (a day) starts again from zero.
- An IPv6 client counts as its /64 network: one subscriber usually holds a whole /64, and
  could otherwise pick a fresh address for every guess.

The bound per account, against guessing spread over many addresses: at most
``new_address_attempts_per_hour`` admitted attempts per clock hour from addresses that
have not signed in to the account within ``trust_seconds`` (30 days). Addresses the user
signed in from are exempt, so a distributed attack cannot lock the user out of the places
they use; during one (hundreds of admitted guesses an hour) a first sign-in from a new
address waits for the next hour. A hold never refuses more than the pair or the new
addresses it applies to, and nothing an attacker does extends a hold of another address.

Held attempts are refused before any bcrypt work and without reading the user, so unknown
and known names are throttled alike: the throttle tells nobody whether a name exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import ipaddress

ACCOUNT_WIDE = "*"  # the address of an account's own record: its new-address attempts this hour
UNKNOWN_ADDRESS = "unknown"  # a request whose client address is missing or malformed
HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class ThrottleRule:
    free_attempts: int = 5
    first_hold_seconds: int = 30
    max_hold_seconds: int = 900
    new_address_attempts_per_hour: int = 100
    trust_seconds: int = 30 * DAY
    forget_seconds: int = DAY

    def hold(self, failures: int) -> int:
        """Seconds an address waits after ``failures`` in a row (0 while they are free)."""
        if failures < self.free_attempts:
            return 0
        doublings = min(failures - self.free_attempts, 32)  # 2**32 s is past any maximum
        return min(self.first_hold_seconds * 2 ** doublings, self.max_hold_seconds)


@dataclass(frozen=True)
class AddressRecord:
    """What the throttle keeps for one (address, account): ``failures`` in a row (each
    attempt counted when admitted), the time before which no attempt is admitted, until
    when the address is trusted (it signed in), and ``seq``, which every write of the
    record increments (0: no record yet), for the conditional write."""

    failures: int = 0
    held_until: int = 0
    trusted_until: int = 0
    last_attempt: int = 0
    seq: int = 0

    def trusted(self, now: int) -> bool:
        return self.trusted_until > now

    def expires_at(self, rule: ThrottleRule) -> int:
        """When the store may drop the record (DynamoDB TTL): nothing of it matters after."""
        return max(self.last_attempt + rule.forget_seconds, self.held_until, self.trusted_until) + HOUR


def admit(record: AddressRecord | None, now: int, rule: ThrottleRule) -> AddressRecord | None:
    """The record after admitting one more attempt (counted as a failure until its password
    proves right), or None while the address is held."""
    record = record or AddressRecord()
    if now < record.held_until:
        return None
    failures = 0 if now - record.last_attempt >= rule.forget_seconds else record.failures
    failures += 1
    return replace(record, failures=failures, held_until=now + rule.hold(failures), last_attempt=now,
                   seq=record.seq + 1)


def signed_in(record: AddressRecord, now: int, rule: ThrottleRule) -> AddressRecord:
    """The record after a right password: no failures, no hold, the address trusted."""
    return replace(record, failures=0, held_until=0, trusted_until=now + rule.trust_seconds, last_attempt=now,
                   seq=record.seq + 1)


def hour_window(now: int) -> int:
    """The clock hour ``now`` falls in (its first second): the account-wide bound's window."""
    return now - now % HOUR


def address_key(source_ip: str | None) -> str:
    """The address a client is throttled under: an IPv4 address as it is, an IPv6 one as its
    /64 network (an IPv4-mapped one as its IPv4 address), :data:`UNKNOWN_ADDRESS` for a
    missing or malformed one."""
    try:
        address = ipaddress.ip_address((source_ip or "").strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
