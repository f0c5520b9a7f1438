"""The sign-in throttle under attack, through the real token endpoint on moto: each attempt is
admitted by one conditional write per (client address, account) before its password is
judged, so no burst is judged against a stale read; a stranger's failures hold the
stranger's address, not the user; guessing spread over many addresses is bounded per
account without stopping the user at an address they signed in from."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
import threading
import time
from typing import Any

from aws_lambda_powertools.utilities import parameters
import bcrypt
import boto3
import pytest

from crimecast.adapters.login_attempt_store import LoginAttemptStore
from crimecast.adapters.stores import Stores, get_stores, use_stores
from crimecast.adapters.user_store import UserStore
from crimecast.domain import auth
from crimecast.domain.login_throttle import ACCOUNT_WIDE, AddressRecord
from crimecast.jobs import accounts
from tests.functions.conftest import body
from tests.functions.test_auth import _login

PASSWORD = "wonderland-garden"
STRANGER = "203.0.113.9"  # documentation addresses (RFC 5737)
HOME = "198.51.100.7"


@pytest.fixture
def alice(aws, monkeypatch):
    parameters.clear_caches()
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "5")
    monkeypatch.setenv("CRIMECAST_LOCKOUT_FIRST_SECONDS", "60")
    monkeypatch.setenv("CRIMECAST_LOCKOUT_SECONDS", "600")
    aws.users.put({"username": "alice", "password_hash": auth.hash_password(PASSWORD, rounds=4), "roles": ["viewer"],
                   "token_version": auth.new_token_version()})
    yield aws
    parameters.clear_caches()


def _raw_items(table: str) -> list[dict[str, Any]]:
    """Every item of a table, read straight from DynamoDB."""
    return boto3.resource("dynamodb").Table(table).scan(ConsistentRead=True)["Items"]


def _record(stores: Stores, address: str, username: str = "alice") -> AddressRecord | None:
    return stores.login_attempts.get(username, address)


class _OneRequestAtATime:
    """A boto3 Table whose requests run one at a time. DynamoDB applies each request to an
    item atomically; moto in-process does not (a condition and its write can interleave with
    another thread's), so the burst tests serialise each request, never a whole login: a
    read-then-write still races."""

    lock = threading.Lock()

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if not callable(attribute):
            return attribute

        def request(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return attribute(*args, **kwargs)
        return request


@dataclass(frozen=True)
class AtomicUserStore(UserStore):
    @property
    def _table(self) -> Any:
        return _OneRequestAtATime(super()._table)


@dataclass(frozen=True)
class AtomicAttemptStore(LoginAttemptStore):
    after_read: Callable[[], None] = lambda: None  # runs on the login's thread after each read of its record

    @property
    def _table(self) -> Any:
        return _OneRequestAtATime(super()._table)

    def get(self, username: str, address: str) -> AddressRecord | None:
        record = super().get(username, address)
        self.after_read()
        return record


@dataclass(frozen=True)
class AtomicStores(Stores):
    after_read: Callable[[], None] = lambda: None

    @property
    def users(self) -> UserStore:
        return AtomicUserStore(self.user_table)  # type: ignore[arg-type]

    @property
    def login_attempts(self) -> LoginAttemptStore:
        return AtomicAttemptStore(self.login_attempts_table, self.after_read)  # type: ignore[arg-type]


def _atomic(stores: Stores, after_read: Callable[[], None] = lambda: None) -> AtomicStores:
    return AtomicStores(**{f.name: getattr(stores, f.name) for f in fields(Stores)}, after_read=after_read)


def _burst(passwords: list[str], address: str = STRANGER) -> list[int]:
    """One login per password, all at once on as many threads, from ``address``, through the
    handler's call; the status each would answer (200 with a token, 401 without)."""
    stores = get_stores()
    use_stores(stores if isinstance(stores, AtomicStores) else _atomic(stores))

    def attempt(password: str) -> int:
        try:
            accounts.login(get_stores(), "alice", password, address)
        except auth.AuthError:
            return 401
        return 200

    try:
        with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
            return list(pool.map(attempt, passwords))
    finally:
        use_stores(stores)


def test_a_burst_of_50_wrong_logins_has_only_the_free_attempts_judged(alice, mocker) -> None:
    checks = mocker.spy(bcrypt, "checkpw")
    before = int(time.time())
    assert _burst(["not-the-password"] * 50) == [401] * 50
    assert checks.call_count == 5  # five admitted and judged; 45 refused unjudged, not against a stale read
    record = _record(alice, STRANGER)
    assert record.failures == 5 and before + 60 <= record.held_until <= time.time() + 60


def test_once_held_a_burst_of_50_with_the_right_password_gives_no_token(alice, mocker) -> None:
    assert _burst(["not-the-password"] * 5) == [401] * 5  # the address is held now
    checks = mocker.spy(bcrypt, "checkpw")
    statuses = _burst(["not-the-password"] * 25 + [PASSWORD] + ["not-the-password"] * 24)
    assert statuses == [401] * 50 and checks.call_count == 0


def test_a_right_password_read_before_the_hold_is_refused_after_it(alice) -> None:
    """The right password reads the address's record while it has no failures at all (no
    record yet), then waits while 49 wrong ones get the address held: its admission is the
    conditional write, which fails on the changed record; the fresh read says held."""
    wrong_done = threading.Event()
    right_thread: list[threading.Thread] = []
    reads = [0]

    def after_read() -> None:
        if threading.current_thread() in right_thread:
            reads[0] += 1
            if reads[0] == 1:  # its first, stale read: let the burst land first
                assert wrong_done.wait(30)

    stores = get_stores()
    use_stores(_atomic(stores, after_read))
    outcome: list[int] = []

    def right() -> None:
        try:
            accounts.login(get_stores(), "alice", PASSWORD, STRANGER)
            outcome.append(200)
        except auth.AuthError:
            outcome.append(401)

    right_thread.append(threading.Thread(target=right))
    right_thread[0].start()
    try:
        while reads[0] == 0:  # until its read of the still empty record
            time.sleep(0.01)
        assert _record(alice, STRANGER) is None
        assert _burst(["not-the-password"] * 49) == [401] * 49
    finally:
        wrong_done.set()
        right_thread[0].join(30)
        use_stores(stores)
    assert outcome == [401] and reads[0] >= 2  # no token: it read again, and the record said held
    assert _record(alice, STRANGER).failures == 5


def test_a_strangers_failures_do_not_stop_the_user(alice) -> None:
    for _ in range(20):
        assert _login("alice", "guess", source_ip=STRANGER)["statusCode"] == 401
    assert _login("alice", PASSWORD, source_ip=STRANGER)["statusCode"] == 401  # the stranger's address is held
    assert _login("alice", PASSWORD, source_ip=HOME)["statusCode"] == 200  # the user, from another address, is not
    assert _record(alice, STRANGER).failures == 5  # held attempts neither counted nor extend the hold
    assert _login("alice", PASSWORD, source_ip="2001:db8:1:2::1")["statusCode"] == 200


def test_an_ipv6_client_is_held_as_its_64_network(alice) -> None:
    for n in range(5):  # a fresh address of one /64 for every guess
        assert _login("alice", "guess", source_ip=f"2001:db8:1:2::{n + 1:x}")["statusCode"] == 401
    assert _login("alice", PASSWORD, source_ip="2001:db8:1:2:ffff::9")["statusCode"] == 401  # the /64 is held
    assert _login("alice", PASSWORD, source_ip="2001:db8:1:3::1")["statusCode"] == 200  # the next /64 is not


def test_holds_grow_per_failure_and_end(alice, monkeypatch) -> None:
    clock = [time.time()]
    monkeypatch.setattr(accounts, "_now", lambda: int(clock[0]))
    for _ in range(5):
        assert _login("alice", "guess", source_ip=STRANGER)["statusCode"] == 401
    holds = []
    for _ in range(4):
        record = _record(alice, STRANGER)
        holds.append(record.held_until - int(clock[0]))
        clock[0] += holds[-1] - 1
        assert _login("alice", PASSWORD, source_ip=STRANGER)["statusCode"] == 401  # a second early: still held
        clock[0] += 1
        assert _login("alice", "guess", source_ip=STRANGER)["statusCode"] == 401  # admitted, wrong: the hold doubles
    assert holds == [60, 120, 240, 480]
    assert _record(alice, STRANGER).held_until - int(clock[0]) == 600  # at most CRIMECAST_LOCKOUT_SECONDS
    clock[0] += 600
    assert _login("alice", PASSWORD, source_ip=STRANGER)["statusCode"] == 200
    assert _record(alice, STRANGER).failures == 0  # a right password clears the address's count


def test_guessing_spread_over_addresses_is_bounded_without_stopping_the_user_where_they_signed_in(
        alice, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_NEW_ADDRESS_ATTEMPTS_PER_HOUR", "10")
    clock = [float(3600 * 500_000 + 60)]  # a minute into an hour
    monkeypatch.setattr(accounts, "_now", lambda: int(clock[0]))
    assert _login("alice", PASSWORD, source_ip=HOME)["statusCode"] == 200  # trusted from now on (1 of 10 this hour)
    for n in range(9):
        assert _login("alice", "guess", source_ip=f"192.0.2.{n + 1}")["statusCode"] == 401
    assert _login("alice", PASSWORD, source_ip="192.0.2.200")["statusCode"] == 401  # a new address: over the bound
    assert _login("alice", PASSWORD, source_ip=HOME)["statusCode"] == 200  # where the user signed in: not bounded
    clock[0] += 3600
    assert _login("alice", PASSWORD, source_ip="192.0.2.200")["statusCode"] == 200  # a new hour


def test_unknown_and_disabled_users_are_throttled_alike_and_their_records_untouched(alice) -> None:
    accounts.add_user(alice, "bob", "a-long-enough-password")
    accounts.disable_user(alice, "bob")
    users_before = _raw_items(alice.user_table)
    for name in ("nobody", "bob", "alice"):
        for _ in range(5):
            assert _login(name, "guess", source_ip=STRANGER)["statusCode"] == 401
        assert _record(alice, STRANGER, name).failures == 5  # the same record whether the name exists or not
    assert _raw_items(alice.user_table) == users_before
    assert {item["address"] for item in _raw_items(alice.login_attempts_table)} == {STRANGER, ACCOUNT_WIDE}


def test_an_admin_unlock_and_a_password_reset_forget_the_holds(alice, monkeypatch, capsys) -> None:
    import io

    from crimecast.tools.cli import main

    for _ in range(5):
        _login("alice", "guess", source_ip=STRANGER)
    assert _login("alice", PASSWORD, source_ip=STRANGER)["statusCode"] == 401
    assert main(["users", "unlock", "alice"]) == 0
    assert "2 sign-in throttle records forgotten" in capsys.readouterr().out  # the address's and the account's
    assert _login("alice", PASSWORD, source_ip=STRANGER)["statusCode"] == 200
    for _ in range(5):
        _login("alice", "guess", source_ip=STRANGER)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-brand-new-password\n"))
    assert main(["users", "reset-password", "alice"]) == 0
    assert _login("alice", "a-brand-new-password", source_ip=STRANGER)["statusCode"] == 200


@dataclass(frozen=True)
class RacingUserStore(UserStore):
    """A users store whose ``get`` lets another admin act right after the read, i.e.
    between a login's read (and bcrypt check) and its confirming write."""

    meanwhile: Callable[[], None] = lambda: None

    def get(self, username: str) -> dict[str, Any] | None:
        user = super().get(username)
        self.meanwhile()
        return user


@dataclass(frozen=True)
class RacingStores(Stores):
    meanwhile: Callable[[], None] = lambda: None

    @property
    def users(self) -> UserStore:
        return RacingUserStore(self.user_table, self.meanwhile)  # type: ignore[arg-type]


def _racing(stores: Stores, meanwhile: Callable[[], None]) -> None:
    """Serve stores whose users store runs ``meanwhile`` once, after the login's read."""
    done: list[bool] = []

    def once() -> None:
        if not done:
            done.append(True)
            meanwhile()

    use_stores(RacingStores(**{f.name: getattr(stores, f.name) for f in fields(stores)}, meanwhile=once))


@pytest.mark.parametrize("change", ["delete", "disable", "reset", "role"])
@pytest.mark.parametrize("password", ["not-the-password", PASSWORD])
def test_a_change_made_during_a_login_is_not_undone(alice, change: str, password: str) -> None:
    plain = UserStore(alice.user_table)
    actions = {"delete": lambda: plain.delete("alice"),
               "disable": lambda: plain.update("alice", disabled=True, token_version=auth.new_token_version()),
               "reset": lambda: plain.set_password("alice", auth.hash_password("a-new-long-password", rounds=4),
                                                   auth.new_token_version()),
               "role": lambda: plain.update("alice", roles=["admin", "viewer"], token_version=auth.new_token_version())}
    after_change: list[Any] = []
    _racing(alice, lambda: (actions[change](), after_change.append(plain.get("alice"))))
    response = _login("alice", password)
    assert response["statusCode"] == 401 and body(response)["error"] == "invalid_grant"  # no token for a stale user
    user = plain.get("alice")
    assert after_change == [user]  # the login wrote nothing over the change
    if change == "delete":
        assert user is None  # not re-created
    elif change == "disable":
        assert user["disabled"] is True
    elif change == "reset":
        assert auth.verify_password("a-new-long-password", user["password_hash"])


def test_a_record_from_before_token_versions_signs_in_and_loses_the_old_lock_counters(alice) -> None:
    alice.users.put({"username": "old", "password_hash": auth.hash_password(PASSWORD, rounds=4), "roles": ["viewer"],
                     "failed_attempts": 3, "locked_until": int(time.time()) + 900})  # the former lock per account
    assert _login("old", PASSWORD)["statusCode"] == 200  # that lock no longer applies
    user = alice.users.get("old")
    assert "failed_attempts" not in user and "locked_until" not in user
