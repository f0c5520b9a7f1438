"""The password rule (12 to 72 UTF-8 bytes, not common, not a keyboard run): one rule in
the domain, refused with a clear 4xx by the API and an error by the CLI, never a 500."""

from __future__ import annotations

import gzip
import io

from aws_lambda_powertools.utilities import parameters
import pytest

from crimecast.domain import auth, passwords
from crimecast.domain.errors import InvalidInputError
from crimecast.jobs import accounts
from crimecast.tools.cli import main
from tests.functions.conftest import body
from tests.functions.test_auth import _admin_call, _login

GOOD = "plum-orbit-velvet-42"
LONGEST = "ünïcödé-plüm-órbït-ünïcödé-plüm-órbït-ünïcödé-plüm-ó"  # 52 characters, 72 bytes: bcrypt's most
TOO_LONG = LONGEST + "x"  # 53 characters, 73 bytes: bcrypt 5 raises on it
REFUSED = {
    "too short": "short-pass",
    "too long in bytes": TOO_LONG,
    "common": "password1234",
    "common, other case": "PassWord1234",
    "common, top ten thousand": "1qaz2wsx3edc",
    "keyboard run": "qwertyuiopasdf",
    "keyboard run backwards": "lkjhgfdsapoiuytrewq",
    "alphabet run": "abcdefghijklmn",
    "digits": "123456789012",
    "a few characters repeated": "abababababab",
    "lone surrogate": "\ud800" + "x" * 12,
}


@pytest.fixture
def users(aws):
    parameters.clear_caches()
    yield aws
    parameters.clear_caches()


def test_the_shipped_list_is_the_one_documented() -> None:
    words = gzip.decompress(passwords.COMMON_PASSWORDS.read_bytes()).decode().splitlines()
    assert len(words) == len(set(words)) == 30_000 and words[:3] == ["123456", "password", "12345678"]
    assert all(w == w.lower() for w in words)
    assert passwords.COMMON_PASSWORDS.with_name("common_passwords.LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize("password", REFUSED.values(), ids=REFUSED.keys())
def test_the_rule_refuses(password: str) -> None:
    assert passwords.problem(password)
    with pytest.raises(InvalidInputError):
        passwords.check(password)


@pytest.mark.parametrize("password", [GOOD, LONGEST, "Correct Horse Battery Staple", "ünïcödé-pässwörd", "Zq8!" * 18])
def test_the_rule_accepts(password: str) -> None:
    assert passwords.problem(password) is None and passwords.check(password) == password


def test_bytes_are_counted_not_characters() -> None:
    assert len(TOO_LONG) == 53 and len(TOO_LONG.encode()) == 73
    assert "72 bytes" in passwords.problem(TOO_LONG) and "73" in passwords.problem(TOO_LONG)
    assert "(this one is 11;" in passwords.problem("ünïcödé")  # 7 characters, 11 bytes
    assert passwords.problem("ünïcödé-x") is None  # 9 characters, 13 bytes: long enough


@pytest.mark.parametrize("password", REFUSED.values(), ids=REFUSED.keys())
def test_the_api_refuses_with_a_message(users, password: str) -> None:
    response = _admin_call("POST", "/auth/users", {"username": "eve", "password": password})
    assert response["statusCode"] == 400, response
    error = body(response)["error"]
    assert error["code"] == "invalid_request" and error["message"].startswith("the password ")
    assert users.users.get("eve") is None


def test_the_api_names_the_byte_limit(users) -> None:
    response = _admin_call("POST", "/auth/users", {"username": "eve", "password": TOO_LONG})
    assert "72 bytes" in body(response)["error"]["message"]
    response = _admin_call("POST", "/auth/users", {"username": "eve", "password": "password1234"})
    assert "most common passwords" in body(response)["error"]["message"]


def test_the_api_accepts_a_good_multibyte_password(users) -> None:
    password = LONGEST
    assert _admin_call("POST", "/auth/users", {"username": "eve", "password": password})["statusCode"] == 201
    assert _login("eve", password)["statusCode"] == 200
    assert _login("eve", password + "x")["statusCode"] == 401  # past bcrypt's limit: refused, not a 500


@pytest.mark.parametrize("command", [["users", "add", "eve"], ["users", "reset-password", "eve"]])
@pytest.mark.parametrize("password", [TOO_LONG, "password1234", "qwertyuiopasdf"])
def test_the_cli_refuses_with_an_error(users, monkeypatch, capsys, command: list[str], password: str) -> None:
    if command[1] == "reset-password":
        accounts.add_user(users, "eve", GOOD)
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(command) != 0
    assert "password" in capsys.readouterr().err
    user = users.users.get("eve")
    assert user is None if command[1] == "add" else auth.verify_password(GOOD, user["password_hash"])


def test_the_cli_resets_to_a_good_password_and_unlocks(users, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "1")
    monkeypatch.setenv("CRIMECAST_LOCKOUT_FIRST_SECONDS", "900")
    accounts.add_user(users, "eve", GOOD)
    assert _login("eve", "not-her-password")["statusCode"] == 401
    assert _login("eve", GOOD)["statusCode"] == 401  # this address is held for 15 minutes
    monkeypatch.setattr("sys.stdin", io.StringIO("another-good-one-77\n"))
    assert main(["users", "reset-password", "eve"]) == 0
    assert _login("eve", "another-good-one-77")["statusCode"] == 200
    with pytest.raises(InvalidInputError, match="no user"):
        accounts.reset_password(users, "nobody", "another-good-one-77")  # not created by a reset
    assert users.users.get("nobody") is None


def test_the_bcrypt_cost_may_not_be_set_below_the_minimum() -> None:
    from crimecast import settings
    from crimecast.domain.errors import ConfigurationError

    assert settings.read(settings.PasswordSettings, {}) == settings.PasswordSettings(12, 10)
    with pytest.raises(ConfigurationError, match="CRIMECAST_BCRYPT_ROUNDS=8 must be at least CRIMECAST_BCRYPT_MIN_ROUNDS=10"):
        settings.read(settings.PasswordSettings, {"CRIMECAST_BCRYPT_ROUNDS": "8"})
    with pytest.raises(ConfigurationError, match="itself 4 or more"):
        settings.read(settings.PasswordSettings, {"CRIMECAST_BCRYPT_ROUNDS": "4", "CRIMECAST_BCRYPT_MIN_ROUNDS": "3"})


def test_a_sign_in_rehashes_a_hash_below_the_current_cost(users, monkeypatch) -> None:
    from tests.functions.test_auth import _authorize

    users.users.put({"username": "old", "password_hash": auth.hash_password(GOOD, rounds=4), "roles": ["viewer"],
                     "token_version": "v1"})
    monkeypatch.setenv("CRIMECAST_BCRYPT_ROUNDS", "5")
    assert _login("old", "not-the-password")["statusCode"] == 401
    assert auth.hash_cost(users.users.get("old")["password_hash"]) == 4  # a wrong password changes nothing
    token = body(_login("old", GOOD))["access_token"]
    user = users.users.get("old")
    assert auth.hash_cost(user["password_hash"]) == 5 and auth.verify_password(GOOD, user["password_hash"])
    assert user["token_version"] == "v1" and _authorize(f"Bearer {token}")["principalId"] == "old"  # nobody logged out
    assert _login("old", GOOD)["statusCode"] == 200
    accounts.add_user(users, "new", GOOD)
    assert auth.hash_cost(users.users.get("new")["password_hash"]) == 5  # new hashes at the configured cost
