"""The seed's auth tests (section 4), through the real token endpoint and authorizer."""

from __future__ import annotations

import copy
import json
from urllib.parse import urlencode

from aws_lambda_powertools.utilities import parameters
import jwt
import pytest

from crimecast.domain import auth
from tests.functions.conftest import FakeContext, body, invoke, load_event, load_function

SEED_HASH = "$2b$12$EixZaYVK1fsbw1ZfbX3OXePaWxn96p36WQoeG6Lruj3vjPGga31lW"  # bcrypt of "secret"


@pytest.fixture
def users(aws):
    parameters.clear_caches()
    aws.users.put({"username": "alice", "password_hash": auth.hash_password("wonderland", rounds=4), "roles": ["viewer"]})
    aws.users.put({"username": "root", "password_hash": auth.hash_password("s3cret-admin", rounds=4), "roles": ["admin", "viewer"]})
    yield aws
    parameters.clear_caches()


def _login(username: str, password: str, grant_type: str = "password", source_ip: str = "127.0.0.1") -> dict:
    """POST /auth/token as API Gateway passes it, from the client address ``source_ip``."""
    event = copy.deepcopy(load_event("ingest-api"))
    event.update(path="/auth/token", resource="/auth/token", httpMethod="POST",
                 body=urlencode({"grant_type": grant_type, "username": username, "password": password}))
    event["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    event["requestContext"].pop("authorizer")
    event["requestContext"]["identity"]["sourceIp"] = source_ip
    return invoke("auth", event)


def _authorize(header: str) -> dict:
    event = {"type": "TOKEN", "authorizationToken": header,
             "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/dev/GET/auth/me"}
    return load_function("auth").authorizer_handler(event, FakeContext())


def test_verify_password() -> None:
    assert auth.verify_password("secret", SEED_HASH) is True
    assert auth.verify_password("wrong", SEED_HASH) is False


def test_generate_token() -> None:
    token = auth.generate_token("fakeuser", key="k" * 64)
    assert isinstance(token, str) and token


def test_login_success(users) -> None:
    response = _login("alice", "wonderland")
    assert response["statusCode"] == 200
    result = body(response)
    assert result["access_token"] and result["token_type"] == "bearer" and result["expires_in"] == 1800
    claims = jwt.decode(result["access_token"], "k" * 64, algorithms=["HS256"], audience=auth.AUDIENCE)
    assert claims["sub"] == "alice" and claims["roles"] == ["viewer"] and claims["iss"] == auth.ISSUER


def test_login_failure(users) -> None:
    for username, password in (("alice", "nope"), ("nobody", "wonderland")):
        response = _login(username, password)
        assert response["statusCode"] == 401
        assert "access_token" not in body(response) and body(response)["error"] == "invalid_grant"


def test_unsupported_grant_and_missing_fields(users) -> None:
    assert body(_login("alice", "wonderland", grant_type="client_credentials"))["error"] == "unsupported_grant_type"
    assert _login("", "")["statusCode"] == 400


def test_secure_data_with_token(users) -> None:
    token = body(_login("root", "s3cret-admin"))["access_token"]
    policy = _authorize(f"Bearer {token}")
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    event = copy.deepcopy(load_event("predict-health"))
    event.update(path="/auth/me", resource="/auth/me")
    event["requestContext"]["authorizer"] = {"principalId": policy["principalId"], **policy["context"]}
    response = invoke("auth", event)
    assert response["statusCode"] == 200 and body(response) == {"username": "root", "roles": ["admin", "viewer"]}


@pytest.mark.parametrize("header", ["", "Bearer", "Basic YWxpY2U6d29uZGVybGFuZA==", "Bearer not.a.jwt"])
def test_secure_data_without_a_valid_token_is_unauthorized(users, header: str) -> None:
    with pytest.raises(Exception, match="^Unauthorized$"):
        _authorize(header)


def test_tampered_expired_and_none_tokens_are_refused(users) -> None:
    good = auth.generate_token("alice", key="k" * 64)
    expired = auth.generate_token("alice", key="k" * 64, lifetime_seconds=-60)
    unsigned = jwt.encode({"sub": "alice", "iss": auth.ISSUER, "aud": auth.AUDIENCE, "roles": ["admin"]}, None, algorithm="none")
    other_key = auth.generate_token("alice", ("admin",), key="x" * 64)
    for token in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"), expired, unsigned, other_key):
        with pytest.raises(auth.AuthError):
            auth.read_token(token, key="k" * 64)


def test_sample_authorizer_event_without_a_real_token_is_unauthorized(users) -> None:
    with pytest.raises(Exception, match="^Unauthorized$"):
        load_function("auth").authorizer_handler(load_event("auth-authorizer"), FakeContext())


def test_cli_adds_a_user_who_can_log_in(users, monkeypatch, capsys) -> None:
    import io

    from crimecast.tools.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    assert main(["users", "add", "carol", "--role", "admin"]) == 0
    assert "carol added with roles admin, viewer" in capsys.readouterr().out
    assert _login("carol", "a-long-enough-password")["statusCode"] == 200
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    assert main(["users", "add", "carol"]) == 2
    assert "already exists" in capsys.readouterr().err


def _admin_call(method: str, path: str, payload: dict | None = None, roles: str = "admin") -> dict:
    event = copy.deepcopy(load_event("auth-me"))
    event.update(httpMethod=method, path=path, resource=path, body=None if payload is None else json.dumps(payload))
    event["headers"]["Content-Type"] = "application/json"
    event["requestContext"]["authorizer"] = {"principalId": "root", "username": "root", "roles": roles}
    return invoke("auth", event)


def test_admin_manages_users_over_the_api(users) -> None:
    created = _admin_call("POST", "/auth/users", {"username": "dave", "password": "twelve-chars-ok", "role": "viewer"})
    assert created["statusCode"] == 201 and body(created) == {"username": "dave", "roles": ["viewer"]}
    assert _login("dave", "twelve-chars-ok")["statusCode"] == 200
    again = _admin_call("POST", "/auth/users", {"username": "dave", "password": "twelve-chars-ok"})
    assert again["statusCode"] == 409
    assert _admin_call("DELETE", "/auth/users/dave")["statusCode"] == 204
    assert _login("dave", "twelve-chars-ok")["statusCode"] == 401
    assert _admin_call("DELETE", "/auth/users/dave")["statusCode"] == 404


@pytest.mark.parametrize(
    ("payload", "roles", "status"),
    [
        ({"username": "eve", "password": "short", "role": "viewer"}, "admin", 400),
        ({"username": "eve", "password": "twelve-chars-ok", "role": "root"}, "admin", 422),
        ({"username": "e v e", "password": "twelve-chars-ok"}, "admin", 422),
        ({"username": "eve", "password": "twelve-chars-ok"}, "viewer", 403),
    ],
)
def test_bad_user_requests_are_refused(users, payload: dict, roles: str, status: int) -> None:
    assert _admin_call("POST", "/auth/users", payload, roles)["statusCode"] == status
