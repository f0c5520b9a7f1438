"""The lockout counters under concurrency: counted atomically in the users table, written
only while the user is the one the login checked, never a write-back of the record."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
import threading
import time
from typing import Any

from aws_lambda_powertools.utilities import parameters
import boto3
import pytest

from crimecast.adapters.stores import Stores, get_stores, use_stores
from crimecast.adapters.user_store import UserStore
from crimecast.domain import auth
from crimecast.jobs import accounts
from tests.functions.conftest import body
from tests.functions.test_auth import _login

PASSWORD = "wonderland-garden"


@pytest.fixture
def alice(aws, monkeypatch):
    parameters.clear_caches()
    monkeypatch.setenv("CRIMECAST_LOCKOUT_SECONDS", "600")
    aws.users.put({"username": "alice", "password_hash": auth.hash_password(PASSWORD, rounds=4), "roles": ["viewer"]})
    yield aws
    parameters.clear_caches()


def _raw_table(stores: Stores) -> list[dict[str, Any]]:
    """Every item of the users table, read straight from DynamoDB."""
    return boto3.resource("dynamodb").Table(stores.user_table).scan(ConsistentRead=True)["Items"]


class _OneRequestAtATime:
    """A boto3 Table whose requests run one at a time. DynamoDB applies each request to an
    item atomically; moto in-process does not (parallel ADDs lose counts), so the burst
    tests serialise each request, never a whole login: a read-then-write still races."""

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
class AtomicStores(Stores):
    @property
    def users(self) -> UserStore:
        return AtomicUserStore(self.user_table)  # type: ignore[arg-type]


def _wrong_logins(count: int, username: str = "alice") -> list[bool]:
    """``count`` wrong logins at once, on as many threads; True for each refusal."""
    stores = get_stores()
    use_stores(AtomicStores(**{f.name: getattr(stores, f.name) for f in fields(stores)}))
    def attempt(_: int) -> bool:
        try:
            accounts.login(get_stores(), username, "not-the-password")  # the handler's call
        except auth.AuthError:
            return True
        return False

    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(attempt, range(count)))
    finally:
        use_stores(stores)


def test_a_burst_of_parallel_failures_is_counted_exactly(alice, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "51")
    assert all(_wrong_logins(50))
    user = alice.users.get("alice")
    assert user["failed_attempts"] == 50 and "locked_until" not in user  # none lost, none double-counted


def test_a_burst_reaching_the_limit_locks_the_account_once(alice, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "50")
    before = time.time()
    assert all(_wrong_logins(50))
    user = alice.users.get("alice")
    assert user["failed_attempts"] == 0  # the lock zeroes the counter
    assert before + 600 - 1 <= user["locked_until"] <= time.time() + 600
    with pytest.raises(auth.AuthError):
        accounts.login(get_stores(), "alice", PASSWORD)  # the right password, but locked


def test_failures_while_locked_do_not_extend_the_lock(alice, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "3")
    _wrong_logins(3)
    locked = alice.users.get("alice")
    assert locked["locked_until"] > time.time()
    time.sleep(1.1)  # so that a re-armed lock would end later
    assert all(_wrong_logins(10))
    assert alice.users.get("alice") == locked  # not moved, not counted: nobody keeps an account locked forever
    assert _login("alice", PASSWORD)["statusCode"] == 401


def test_an_expired_lock_counts_afresh_and_a_success_clears_the_counters(alice, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "3")
    boto3.resource("dynamodb").Table(alice.user_table).update_item(
        Key={"username": "alice"}, UpdateExpression="SET locked_until = :past, failed_attempts = :zero",
        ExpressionAttributeValues={":past": int(time.time()) - 1, ":zero": 0})  # as a lock leaves it, ended
    _wrong_logins(2)
    assert alice.users.get("alice")["failed_attempts"] == 2  # the lock ended: counted again from 0
    assert alice.users.get("alice")["locked_until"] < time.time()
    assert _login("alice", PASSWORD)["statusCode"] == 200
    user = alice.users.get("alice")
    assert "failed_attempts" not in user and "locked_until" not in user


def test_an_unknown_user_writes_nothing(alice) -> None:
    before = _raw_table(alice)
    assert all(_wrong_logins(5, username="nobody"))
    assert _login("nobody", PASSWORD)["statusCode"] == 401
    assert _raw_table(alice) == before


def test_a_disabled_user_writes_nothing(alice) -> None:
    accounts.disable_user(alice, "alice")
    before = _raw_table(alice)
    assert all(_wrong_logins(3)) and _login("alice", PASSWORD)["statusCode"] == 401
    assert _raw_table(alice) == before


@dataclass(frozen=True)
class RacingUserStore(UserStore):
    """A users store whose ``get`` lets another admin act right after the read, i.e.
    between a login's read (and bcrypt check) and its counter write."""

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


@pytest.mark.parametrize("change", ["delete", "disable", "reset"])
@pytest.mark.parametrize("password", ["not-the-password", PASSWORD])
def test_a_change_made_during_a_login_is_not_undone(alice, monkeypatch, change: str, password: str) -> None:
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "1")  # a failure would lock: the biggest write
    if password == PASSWORD:  # a success writes only to clear counters: give it some
        alice.users.record_failure("alice", alice.users.get("alice")["password_hash"], attempts=5, lock_until=0, now=0)
    plain = UserStore(alice.user_table)
    actions = {"delete": lambda: plain.delete("alice"),
               "disable": lambda: plain.update("alice", disabled=True, token_version=auth.new_token_version()),
               "reset": lambda: plain.set_password("alice", auth.hash_password("a-new-long-password", rounds=4),
                                                   auth.new_token_version())}
    after_change: list[Any] = []
    _racing(alice, lambda: (actions[change](), after_change.append(plain.get("alice"))))
    response = _login("alice", password)
    assert response["statusCode"] == 401 and body(response)["error"] == "invalid_grant"
    user = plain.get("alice")
    assert after_change == [user]  # the login wrote nothing over the change
    if change == "delete":
        assert user is None  # not re-created
    elif change == "disable":
        assert user["disabled"] is True
    else:
        assert auth.verify_password("a-new-long-password", user["password_hash"])
        assert "failed_attempts" not in user and "locked_until" not in user
