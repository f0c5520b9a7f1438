"""Revocable tokens and key rotation, through the real token endpoint, authorizer and routes:
after a disable, delete, demotion, password reset, logout or a second key rotation, the old
token is refused by the very next check."""

from __future__ import annotations

import copy
import io
import json
import time

from aws_lambda_powertools.utilities import parameters
import boto3
import jwt
import pytest

from crimecast.domain import auth
from crimecast.domain.errors import ConfigurationError
from crimecast.jobs import accounts
from crimecast.tools.cli import main
from tests.functions.conftest import body, invoke, load_event
from tests.functions.test_auth import _authorize, _login

KEY = "k" * 64  # the plain-string secret the aws fixture stores: one key, kid "legacy"


@pytest.fixture
def users(aws):
    parameters.clear_caches()
    accounts._last_refetch[0] = 0.0
    accounts.add_user(aws, "alice", "wonderland-12", "viewer")
    accounts.add_user(aws, "root", "s3cret-admin-pw", "admin")
    yield aws
    parameters.clear_caches()


def _token(username: str, password: str) -> str:
    response = _login(username, password)
    assert response["statusCode"] == 200, response["body"]
    return body(response)["access_token"]


def _refused(token: str) -> bool:
    try:
        _authorize(f"Bearer {token}")
    except Exception as exc:  # the authorizer's 401
        assert str(exc) == "Unauthorized"
        return True
    return False


def _call(method: str, path: str, token: str, payload: dict | None = None) -> dict:
    """A request as API Gateway makes it: the authorizer first (401 when it refuses), then the route."""
    try:
        policy = _authorize(f"Bearer {token}")
    except Exception:
        return {"statusCode": 401, "body": json.dumps({"message": "Unauthorized"})}
    event = copy.deepcopy(load_event("auth-me"))
    event.update(httpMethod=method, path=path, resource=path, body=None if payload is None else json.dumps(payload))
    event["headers"]["Content-Type"] = "application/json"
    event["requestContext"]["authorizer"] = {"principalId": policy["principalId"], **policy["context"]}
    return invoke("auth", event)


def test_tokens_carry_a_kid_and_the_users_token_version(users) -> None:
    token = _token("alice", "wonderland-12")
    assert jwt.get_unverified_header(token)["kid"] == auth.LEGACY_KID
    claims = jwt.decode(token, KEY, algorithms=["HS256"], audience=auth.AUDIENCE)
    assert claims["ver"] == users.users.get("alice")["token_version"] and claims["jti"]


def test_disable_over_the_api_refuses_the_old_token(users) -> None:
    admin, token = _token("root", "s3cret-admin-pw"), _token("alice", "wonderland-12")
    assert _call("GET", "/auth/me", token)["statusCode"] == 200
    changed = _call("PATCH", "/auth/users/alice", admin, {"disabled": True})
    assert changed["statusCode"] == 200 and body(changed) == {"username": "alice", "roles": ["viewer"], "disabled": True}
    assert _call("GET", "/auth/me", token)["statusCode"] == 401
    assert _login("alice", "wonderland-12")["statusCode"] == 401
    assert _call("PATCH", "/auth/users/alice", admin, {"disabled": False})["statusCode"] == 200
    assert _refused(token)  # re-enabling does not revive old tokens
    assert _call("GET", "/auth/me", _token("alice", "wonderland-12"))["statusCode"] == 200


def test_a_deleted_then_recreated_user_does_not_revive_old_tokens(users) -> None:
    admin, token = _token("root", "s3cret-admin-pw"), _token("alice", "wonderland-12")
    assert _call("DELETE", "/auth/users/alice", admin)["statusCode"] == 204
    assert _call("GET", "/auth/me", token)["statusCode"] == 401
    created = _call("POST", "/auth/users", admin, {"username": "alice", "password": "wonderland-12", "role": "admin"})
    assert created["statusCode"] == 201
    assert _refused(token)
    me = _call("GET", "/auth/me", _token("alice", "wonderland-12"))
    assert body(me) == {"username": "alice", "roles": ["admin", "viewer"]}


def test_a_demoted_admin_loses_admin_at_the_next_request(users) -> None:
    accounts.add_user(users, "boss", "another-admin-pw", "admin")
    boss, root = _token("boss", "another-admin-pw"), _token("root", "s3cret-admin-pw")
    new_user = {"username": "frank", "password": "twelve-chars-ok"}
    assert _call("POST", "/auth/users", root, new_user)["statusCode"] == 201
    demoted = _call("PATCH", "/auth/users/root", boss, {"role": "viewer"})
    assert demoted["statusCode"] == 200 and body(demoted)["roles"] == ["viewer"]
    assert _call("DELETE", "/auth/users/frank", root)["statusCode"] == 401  # the old admin token: refused
    fresh = _token("root", "s3cret-admin-pw")
    assert body(_call("GET", "/auth/me", fresh))["roles"] == ["viewer"]
    assert _call("DELETE", "/auth/users/frank", fresh)["statusCode"] == 403  # a viewer now
    assert _call("PATCH", "/auth/users/alice", fresh, {"role": "admin"})["statusCode"] == 403


def test_roles_come_from_the_user_record_not_the_token(users) -> None:
    version = users.users.get("alice")["token_version"]
    claims_admin = auth.generate_token("alice", ("admin", "viewer"), key=KEY, version=version)  # signed, but says admin
    policy = _authorize(f"Bearer {claims_admin}")
    assert policy["context"]["roles"] == "viewer"


def test_a_password_reset_refuses_the_old_token(users, monkeypatch) -> None:
    token = _token("alice", "wonderland-12")
    monkeypatch.setattr("sys.stdin", io.StringIO("a-brand-new-password\n"))
    assert main(["users", "reset-password", "alice"]) == 0
    assert _refused(token)
    assert not _refused(_token("alice", "a-brand-new-password"))


def test_logout_ends_every_session_of_the_caller_only(users) -> None:
    first, second, other = _token("alice", "wonderland-12"), _token("alice", "wonderland-12"), _token("root", "s3cret-admin-pw")
    out = _call("POST", "/auth/logout", first)
    assert out["statusCode"] == 200 and body(out)["username"] == "alice"
    assert _call("GET", "/auth/me", first)["statusCode"] == 401
    assert _refused(second)  # every session of alice: the version is per user
    assert _call("GET", "/auth/me", other)["statusCode"] == 200
    assert _call("POST", "/auth/logout", first)["statusCode"] == 401


def test_cli_set_role_and_revoke(users, capsys) -> None:
    token = _token("alice", "wonderland-12")
    assert main(["users", "set-role", "alice", "admin"]) == 0
    assert "roles admin, viewer" in capsys.readouterr().out
    assert _refused(token)
    token = _token("alice", "wonderland-12")
    assert _authorize(f"Bearer {token}")["context"]["roles"] == "admin,viewer"
    assert main(["users", "revoke", "alice"]) == 0
    assert _refused(token)
    assert main(["users", "set-role", "nobody", "viewer"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


@pytest.mark.parametrize(("payload", "roles", "path", "status"), [
    ({"role": "root"}, "admin", "/auth/users/alice", 422),
    ({"disabled": "maybe"}, "admin", "/auth/users/alice", 422),
    ({"role": "admin"}, "admin", "/auth/users/nobody", 404),
    ({"role": "admin"}, "viewer", "/auth/users/alice", 403),
])
def test_bad_user_changes_are_refused(users, payload: dict, roles: str, path: str, status: int) -> None:
    event = copy.deepcopy(load_event("auth-me"))
    event.update(httpMethod="PATCH", path=path, resource=path, body=json.dumps(payload))
    event["headers"]["Content-Type"] = "application/json"
    event["requestContext"]["authorizer"] = {"principalId": "x", "username": "x", "roles": roles}
    assert invoke("auth", event)["statusCode"] == status


def test_records_from_before_token_versions_still_log_in_and_can_be_revoked(users) -> None:
    users.users.put({"username": "old", "password_hash": auth.hash_password("an-old-password", rounds=4), "roles": ["viewer"]})
    token = _token("old", "an-old-password")
    assert _authorize(f"Bearer {token}")["principalId"] == "old"
    accounts.logout(users, "old")
    assert _refused(token)


def test_a_token_without_a_version_is_refused(users) -> None:
    assert _refused(auth.generate_token("alice", key=KEY))  # signed right, but no "ver": issued before versions


# --- key rotation ----------------------------------------------------------------------


def _secret() -> dict:
    return json.loads(boto3.client("secretsmanager").get_secret_value(SecretId="crimecast-jwt")["SecretString"])


def test_rotation_logs_nobody_out_and_a_second_one_drops_the_oldest_key(users, capsys) -> None:
    before = _token("alice", "wonderland-12")  # signed with the plain-string key, kid "legacy"
    assert main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    stored = _secret()
    assert stored["previous"] == {"kid": auth.LEGACY_KID, "key": KEY, "created": 0}
    assert stored["current"]["kid"] in out and len(stored["current"]["key"]) >= 64
    assert not _refused(before)  # still good after the rotation
    after = _token("alice", "wonderland-12")
    assert jwt.get_unverified_header(after)["kid"] == stored["current"]["kid"]
    assert not _refused(after)
    assert main(["keys", "rotate"]) == 2  # too soon: tokens of the previous key may still be in use
    assert "rotate later, or with --force" in capsys.readouterr().err
    assert main(["keys", "rotate", "--force"]) == 0
    assert "every user's tokens are revoked" in capsys.readouterr().out
    assert _refused(before)  # its key is neither current nor previous any more
    assert _refused(after)  # a forced rotation keeps no earlier key: signed with the leaked one, refused
    assert set(_secret()) == {"current", "previous"} and _secret()["previous"] is None
    assert not _refused(_token("alice", "wonderland-12"))  # signing in again works at once


def test_a_forced_rotation_rejects_old_tokens_even_where_the_leaked_key_is_still_cached(users, monkeypatch) -> None:
    accounts.rotate_keys()  # a current key and a previous one, both to be dropped
    old_current, old_previous = accounts.signing_keys().current, accounts.signing_keys().previous
    tokens = {name: _token(name, password) for name, password in (("alice", "wonderland-12"), ("root", "s3cret-admin-pw"))}
    legacy = auth.generate_token("alice", key=auth.KeyRing(old_previous), version=users.users.get("alice")["token_version"])
    assert not any(_refused(t) for t in [*tokens.values(), legacy])  # this container caches both keys now
    # The rotation runs elsewhere (the CLI on an operator's machine): this container's cache
    # is not cleared and still holds the leaked keys for up to 5 minutes.
    from crimecast.adapters import secrets

    with monkeypatch.context() as patched:
        patched.setattr(secrets, "clear_cache", lambda: None)
        ring = accounts.rotate_keys(force=True)
        assert ring.previous is None and {old_current.kid, old_previous.kid}.isdisjoint(ring.by_kid())
        assert accounts.signing_keys().current.kid == old_current.kid  # the stale cache, as another container has it
        assert all(_refused(t) for t in [*tokens.values(), legacy])  # refused at once all the same
    fresh = _token("alice", "wonderland-12")
    assert jwt.get_unverified_header(fresh)["kid"] == ring.current.kid  # not signed with the leaked key
    assert not _refused(fresh)


def test_a_normal_rotation_keeps_the_grace_period(users) -> None:
    token = _token("alice", "wonderland-12")
    ring = accounts.rotate_keys()
    assert ring.previous and ring.previous.kid == auth.LEGACY_KID
    assert not _refused(token)  # signed with the previous key: good until it expires


def test_a_rotation_later_than_a_token_lifetime_needs_no_force(users) -> None:
    accounts.rotate_keys()
    ring = accounts.rotate_keys(now=time.time() + 31 * 60 + 300)
    assert ring.previous and ring.previous.kid != auth.LEGACY_KID


def test_a_container_with_stale_keys_fetches_them_again_for_a_new_kid(users) -> None:
    token = _token("alice", "wonderland-12")  # this container now caches the plain-string key
    new = auth.KeyRing(auth.SigningKey(auth.LEGACY_KID, KEY)).rotated()
    boto3.client("secretsmanager").put_secret_value(SecretId="crimecast-jwt", SecretString=new.to_json())  # another machine rotated
    signed_elsewhere = auth.generate_token("alice", ("viewer",), key=new, version=users.users.get("alice")["token_version"])
    assert not _refused(signed_elsewhere)
    assert not _refused(token)


def test_made_up_kids_fetch_the_keys_again_at_most_every_30_seconds(users, mocker) -> None:
    _token("alice", "wonderland-12")
    fetches = mocker.spy(accounts, "get_secret")
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert _refused(jwt.encode({"sub": "alice"}, KEY, algorithm="HS256", headers={"kid": kid}))
    assert [c.kwargs["force_fetch"] for c in fetches.call_args_list].count(True) == 1


def test_unknown_missing_or_mismatched_kids_are_refused(users) -> None:
    version = users.users.get("alice")["token_version"]
    accounts.rotate_keys()
    current = accounts.signing_keys().current
    good = auth.generate_token("alice", key=accounts.signing_keys(), version=version)
    assert not _refused(good)

    def forged(headers: dict, key: str) -> str:
        now = int(time.time())
        claims = {"iss": auth.ISSUER, "aud": auth.AUDIENCE, "sub": "alice", "iat": now, "nbf": now, "exp": now + 600,
                  "ver": version}
        return jwt.encode(claims, key, algorithm=headers.pop("alg", "HS256"), headers=headers)

    assert _refused(forged({"kid": "made-up"}, current.key))  # the right key, an unknown kid
    assert _refused(forged({}, current.key))  # the right key, no kid
    assert _refused(forged({}, KEY))  # the previous (legacy) key, no kid
    assert _refused(forged({"kid": current.kid}, KEY))  # kid of one key, signed with the other
    assert _refused(forged({"kid": current.kid, "alg": "HS512"}, current.key))  # HS256 pinned
    assert _refused(forged({"kid": "x" * 5000}, current.key))


@pytest.mark.parametrize("secret", ['{"current": {"kid": "a"}}', '{"current": {"kid": "a", "key": "short"}}', "{not json",
                                    '{"previous": {"kid": "a", "key": "' + "k" * 64 + '"}}'])
def test_a_malformed_key_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        auth.KeyRing.parse(secret)


def test_a_key_ring_round_trips_and_keeps_one_previous_key() -> None:
    ring = auth.KeyRing.parse(KEY)
    assert ring.current.kid == auth.LEGACY_KID and ring.previous is None
    twice = ring.rotated().rotated()
    assert auth.KeyRing.parse(twice.to_json()) == twice
    assert auth.LEGACY_KID not in twice.by_kid() and len(twice.by_kid()) == 2
