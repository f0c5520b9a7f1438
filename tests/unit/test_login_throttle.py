"""The sign-in throttle's rule (pure): free attempts, then a hold that doubles up to a
maximum, counted per client address (an IPv6 client per /64)."""

from __future__ import annotations

import pytest

from crimecast.domain import auth
from crimecast.domain.login_throttle import (
    UNKNOWN_ADDRESS,
    AddressRecord,
    ThrottleRule,
    address_key,
    admit,
    hour_window,
    signed_in,
)

RULE = ThrottleRule(free_attempts=3, first_hold_seconds=30, max_hold_seconds=300)


def test_holds_start_after_the_free_attempts_double_and_stop_growing_at_the_maximum() -> None:
    assert [RULE.hold(n) for n in range(1, 10)] == [0, 0, 30, 60, 120, 240, 300, 300, 300]
    assert RULE.hold(10_000) == 300


def test_each_admitted_attempt_counts_and_a_held_address_is_refused() -> None:
    now, record = 1_000_000, None
    for failures in (1, 2, 3):
        record = admit(record, now, RULE)
        assert record.failures == failures and record.seq == failures
    assert record.held_until == now + 30  # the third failure in a row holds the address
    assert admit(record, now + 29, RULE) is None
    again = admit(record, now + 30, RULE)
    assert again.failures == 4 and again.held_until == now + 30 + 60


def test_a_sign_in_clears_the_count_and_trusts_the_address() -> None:
    record = admit(admit(None, 100, RULE), 100, RULE)
    after = signed_in(record, 200, RULE)
    assert after.failures == 0 and after.held_until == 0 and after.trusted(200) and after.seq == record.seq + 1
    assert not after.trusted(200 + RULE.trust_seconds)


def test_failures_are_forgotten_after_a_quiet_day() -> None:
    record = AddressRecord(failures=7, held_until=500, last_attempt=100, seq=9)
    assert admit(record, 100 + RULE.forget_seconds, RULE).failures == 1
    assert record.expires_at(RULE) >= 100 + RULE.forget_seconds


def test_the_bound_per_account_counts_by_clock_hour() -> None:
    assert hour_window(7200) == hour_window(10_799) == 7200 and hour_window(10_800) == 10_800


@pytest.mark.parametrize(("source_ip", "key"), [
    ("198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::ffff", "2001:db8:1:2::/64"),
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("", UNKNOWN_ADDRESS),
    (None, UNKNOWN_ADDRESS),
    ("not-an-address", UNKNOWN_ADDRESS),
])
def test_clients_are_keyed_by_address_and_ipv6_by_64_network(source_ip: str | None, key: str) -> None:
    assert address_key(source_ip) == key


def test_bcrypt_costs_are_read_from_the_hash() -> None:
    hashed = auth.hash_password("correct-horse-battery", rounds=5)
    assert auth.hash_cost(hashed) == 5 and auth.needs_rehash(hashed, 6) and not auth.needs_rehash(hashed, 5)
    assert auth.hash_cost("not a hash") is None and not auth.needs_rehash("not a hash", 12)
