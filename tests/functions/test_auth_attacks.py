"""Attacks on the auth: each refused with 401 or 403, never a 500, never a leak."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import io
import json
import time

from aws_lambda_powertools.utilities import parameters
import bcrypt
import jwt
import pytest

from crimecast.domain import auth
from crimecast.tools.cli import main
from tests.functions.conftest import FakeContext, body, invoke, load_event, load_function
from tests.functions.test_auth import _authorize, _login

KEY = "k" * 64  # the secret the aws fixture stores


@pytest.fixture
def users(aws, monkeypatch):
    parameters.clear_caches()
    monkeypatch.setenv("CRIMECAST_LOCKOUT_ATTEMPTS", "3")
    monkeypatch.setenv("CRIMECAST_LOCKOUT_SECONDS", "600")
    aws.users.put({"username": "alice", "password_hash": auth.hash_password("wonderland", rounds=4), "roles": ["viewer"]})
    yield aws
    parameters.clear_caches()


def _claims(**changes) -> dict:
    now = int(time.time())
    claims = {"iss": auth.ISSUER, "aud": auth.AUDIENCE, "sub": "alice", "roles": ["admin"], "iat": now, "nbf": now,
              "exp": now + 600, "jti": "x"}
    return {k: v for k, v in {**claims, **changes}.items() if v is not None}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hmac_signed(header: dict, claims: dict) -> str:
    """A token whose header claims RS256 but which is HMAC-signed with the server's key."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    signature = hmac.new(KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


FORGED = {
    "alg none": lambda: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
    "HS/RS confusion": lambda: _hmac_signed({"alg": "RS256", "typ": "JWT"}, _claims()),
    "HS512 with the right key": lambda: jwt.encode(_claims(), KEY, algorithm="HS512"),
    "tampered payload": lambda: ".".join([(t := jwt.encode(_claims(), KEY, algorithm="HS256")).split(".")[0],
                                          _b64(_claims(sub="root")), t.split(".")[2]]),
    "expired": lambda: jwt.encode(_claims(exp=int(time.time()) - 60), KEY, algorithm="HS256"),
    "not yet valid": lambda: jwt.encode(_claims(nbf=int(time.time()) + 600), KEY, algorithm="HS256"),
    "wrong issuer": lambda: jwt.encode(_claims(iss="someone-else"), KEY, algorithm="HS256"),
    "wrong audience": lambda: jwt.encode(_claims(aud="another-api"), KEY, algorithm="HS256"),
    "no expiry": lambda: jwt.encode(_claims(exp=None), KEY, algorithm="HS256"),
    "other key": lambda: jwt.encode(_claims(), "x" * 64, algorithm="HS256"),
}


@pytest.mark.parametrize("name", FORGED)
def test_forged_tokens_are_unauthorized(users, name: str) -> None:
    with pytest.raises(Exception, match="^Unauthorized$"):
        _authorize(f"Bearer {FORGED[name]()}")


@pytest.mark.parametrize("header", ["Bearer " + "a" * 10_000, "bearer", "Bearer a.b", "Token abc", "Bearer  \t"])
def test_malformed_or_huge_headers_are_unauthorized(users, header: str) -> None:
    with pytest.raises(Exception, match="^Unauthorized$"):
        _authorize(header)


def test_tokens_of_disabled_or_deleted_users_stop_working(users, monkeypatch) -> None:
    token = body(_login("alice", "wonderland"))["access_token"]
    assert _authorize(f"Bearer {token}")["principalId"] == "alice"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["users", "disable", "alice"]) == 0
    with pytest.raises(Exception, match="^Unauthorized$"):
        _authorize(f"Bearer {token}")
    assert users.users.delete("alice")
    with pytest.raises(Exception, match="^Unauthorized$"):
        _authorize(f"Bearer {token}")


def test_brute_force_locks_the_account_until_reset(users, monkeypatch) -> None:
    for _ in range(3):
        assert _login("alice", "guess")["statusCode"] == 401
    locked = _login("alice", "wonderland")
    assert locked["statusCode"] == 401 and body(locked)["error"] == "invalid_grant"  # the right password, but locked
    monkeypatch.setattr("sys.stdin", io.StringIO("a-brand-new-password\n"))
    assert main(["users", "reset-password", "alice"]) == 0
    assert _login("alice", "a-brand-new-password")["statusCode"] == 200


def test_unknown_user_and_wrong_password_do_the_same_work(users, mocker) -> None:
    checks = mocker.spy(bcrypt, "checkpw")
    unknown, wrong = _login("nobody", "wonderland"), _login("alice", "not-it")
    assert body(unknown) == body(wrong) and unknown["statusCode"] == wrong["statusCode"] == 401
    assert checks.call_count == 2  # one bcrypt check each: no shortcut for unknown names


def test_unknown_and_disabled_users_are_checked_against_a_dummy_hash_of_the_same_cost(users, mocker, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_BCRYPT_ROUNDS", "5")  # not the cost of any hash in the table: the dummy's own
    users.users.put({"username": "dan", "password_hash": auth.hash_password("wonderland", rounds=5), "roles": ["viewer"],
                     "disabled": True})
    users.users.put({"username": "carl", "password_hash": auth.hash_password("wonderland", rounds=5), "roles": ["viewer"]})
    checks = mocker.spy(bcrypt, "checkpw")
    for name in ("nobody", "dan", "carl"):
        assert _login(name, "not-it")["statusCode"] == 401
    checked = [call.args[1].decode() for call in checks.call_args_list]
    assert len(checked) == 3 and [auth.hash_cost(h) for h in checked] == [5, 5, 5]  # the same work for each
    assert checked[0] == checked[1] != checked[2]  # the unknown and the disabled: the dummy, not dan's hash


def test_the_authorizer_never_reads_a_password_hash(users) -> None:
    import boto3

    from crimecast.adapters import aws

    token = body(_login("alice", "wonderland"))["access_token"]
    requests: list[tuple[str, dict]] = []
    answers: list[dict] = []
    events = aws.table(users.user_table).meta.client.meta.events
    record = lambda params, model, **_: requests.append((model.name, dict(params)))  # noqa: E731
    keep = lambda http_response, parsed, model, **_: answers.append(parsed)  # noqa: E731
    events.register("provide-client-params.dynamodb", record)
    events.register("after-call.dynamodb.GetItem", keep)
    try:
        assert _authorize(f"Bearer {token}")["principalId"] == "alice"
    finally:
        events.unregister("provide-client-params.dynamodb", record)
        events.unregister("after-call.dynamodb.GetItem", keep)
    (name, params), = requests  # one request: a GetItem of the user, by key
    projected = {params["ExpressionAttributeNames"][n.strip()] for n in params["ProjectionExpression"].split(",")}
    assert name == "GetItem" and projected == {"username", "token_version", "roles", "disabled"}
    assert answers and all("password_hash" not in answer.get("Item", {}) for answer in answers)
    assert "password_hash" in boto3.resource("dynamodb").Table(users.user_table).get_item(Key={"username": "alice"})["Item"]


def _token_request(body_text: str, content_type: str, base64_encoded: bool = False) -> dict:
    event = copy.deepcopy(load_event("ingest-api"))
    event.update(path="/auth/token", resource="/auth/token", httpMethod="POST", body=body_text,
                 isBase64Encoded=base64_encoded)
    event["headers"] = {"Content-Type": content_type}
    event["requestContext"].pop("authorizer")
    return invoke("auth", event)


@pytest.mark.parametrize(("body_text", "content_type", "base64_encoded"), [
    ('{"grant_type": "password", "username": "\\ud800alice", "password": "wonderland"}', "application/json", False),
    (base64.b64encode(b"grant_type=password&username=\xff\xfealice&password=wonderland").decode(),
     "application/x-www-form-urlencoded", True),
    ("grant_type=password&username=%FF%FEalice&password=wonderland", "application/x-www-form-urlencoded", False),
    ('{"grant_type": "password", "username": "alice", "password": "\\udfffwonderland"}', "application/json", False),
    ("not base64 at all!", "application/x-www-form-urlencoded", True),
], ids=["json lone surrogate", "base64 body not UTF-8", "form invalid percent-escapes", "password lone surrogate",
        "base64 body not base64"])
def test_a_username_or_body_that_is_not_utf8_is_a_4xx(users, body_text: str, content_type: str,
                                                      base64_encoded: bool) -> None:
    response = _token_request(body_text, content_type, base64_encoded)
    assert response["statusCode"] in (400, 401) and body(response)["error"] in ("invalid_request", "invalid_grant")
    assert "access_token" not in body(response)


def test_a_viewer_cannot_retrain(users) -> None:
    token = body(_login("alice", "wonderland"))["access_token"]
    policy = _authorize(f"Bearer {token}")
    event = copy.deepcopy(load_event("retrain-api"))
    event["requestContext"]["authorizer"] = {"principalId": policy["principalId"], **policy["context"]}
    response = invoke("retrain", event)
    assert response["statusCode"] == 403


@pytest.mark.parametrize("field", ["username", "password"])
def test_oversized_credentials_are_refused_cleanly(users, field: str) -> None:
    values = {"username": "alice", "password": "wonderland", field: "x" * 5000}
    assert _login(values["username"], values["password"])["statusCode"] in (400, 401)


def test_no_password_or_key_reaches_the_logs(users, capsys) -> None:
    _login("alice", "wonderland")
    _login("alice", "Sup3r-Secret-Guess")
    token = body(_login("alice", "wonderland"))["access_token"]
    load_function("auth").authorizer_handler({"type": "TOKEN", "authorizationToken": f"Bearer {token}",
                                              "methodArn": "arn:aws:execute-api:us-east-1:1:a/dev/GET/x"}, FakeContext())
    logs = capsys.readouterr()
    for secret in ("wonderland", "Sup3r-Secret-Guess", KEY, token):
        assert secret not in logs.out + logs.err
