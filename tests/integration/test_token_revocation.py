"""Revocation and key rotation over real HTTP, on `make demo`'s stack, its authorizer cache
off (CRIMECAST_AUTHORIZER_TTL=0): the template's authorizer runs on every request, so a
revoked token is refused by the very next request. (With the template's TTL, as on AWS, a
revoked token passes for at most that long: tests/integration/test_gateway_limits.py.)"""

from __future__ import annotations

from collections.abc import Iterator
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.integration.conftest import PASSWORD, request, running_stack


def _call(base: str, method: str, path: str, token: str | None = None, payload: dict | None = None,
          form: dict | None = None) -> tuple[int, dict]:
    return request(base + path, data=form, token=token, method=method, json_body=payload)


def _login(base: str, username: str, password: str) -> str:
    status, answer = _call(base, "POST", "/auth/token", form={"grant_type": "password", "username": username,
                                                               "password": password})
    assert status == 200, answer
    return answer["access_token"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """The stack's URL and the environment under which the CLI reaches its embedded AWS."""
    with running_stack(tmp_path_factory.mktemp("snapshot"), env={"CRIMECAST_AUTHORIZER_TTL": "0"}) as started:
        endpoint = re.search(r"embedded AWS at (\S+)", started.log.read_text())
        assert endpoint, started.log.read_text()
        cli_env = {**os.environ, "AWS_ENDPOINT_URL": endpoint[1], "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "PYTHONPATH": f"{REPO / 'shared'}:{REPO}",
                   "USERS_TABLE": "crimecast-local-UsersTable", "LOGIN_ATTEMPTS_TABLE": "crimecast-local-LoginAttemptsTable",
                   "JWT_SECRET_ARN": "crimecast-local-JwtSigningKey",
                   "DATA_BUCKET": "crimecast-local-data", "SERIES_TABLE": "crimecast-local-SeriesTable",
                   "RUNS_TABLE": "crimecast-local-RunsTable"}
        yield started.base, cli_env


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "crimecast", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_logout_disable_delete_and_demotion_refuse_the_old_token_at_once(stack) -> None:
    base, _ = stack
    admin = _login(base, "admin", PASSWORD)
    for name, role in (("vic", "viewer"), ("ada", "admin"), ("dan", "viewer")):
        status, _ = _call(base, "POST", "/auth/users", admin, {"username": name, "password": "a-password-of-12", "role": role})
        assert status == 201

    token = _login(base, "vic", "a-password-of-12")
    assert _call(base, "GET", "/auth/me", token)[0] == 200
    assert _call(base, "POST", "/auth/logout", token)[0] == 200
    assert _call(base, "GET", "/auth/me", token)[0] == 401

    token = _login(base, "vic", "a-password-of-12")
    status, changed = _call(base, "PATCH", "/auth/users/vic", admin, {"disabled": True})
    assert status == 200 and changed["disabled"] is True
    assert _call(base, "GET", "/auth/me", token)[0] == 401
    assert _call(base, "POST", "/auth/token", form={"grant_type": "password", "username": "vic",
                                                     "password": "a-password-of-12"})[0] == 401

    token = _login(base, "dan", "a-password-of-12")
    assert _call(base, "DELETE", "/auth/users/dan", admin)[0] == 204
    assert _call(base, "GET", "/auth/me", token)[0] == 401
    assert _call(base, "POST", "/auth/users", admin, {"username": "dan", "password": "a-password-of-12"})[0] == 201
    assert _call(base, "GET", "/auth/me", token)[0] == 401  # re-created: the old token stays dead

    token = _login(base, "ada", "a-password-of-12")
    assert _call(base, "GET", "/runs?kind=ingest", token)[0] == 200
    status, changed = _call(base, "PATCH", "/auth/users/ada", admin, {"role": "viewer"})
    assert status == 200 and changed["roles"] == ["viewer"]
    assert _call(base, "POST", "/ingest", token, {})[0] == 401
    demoted = _login(base, "ada", "a-password-of-12")
    assert _call(base, "GET", "/auth/me", demoted)[1]["roles"] == ["viewer"]
    assert _call(base, "POST", "/ingest", demoted, {})[0] == 403
    assert _call(base, "PATCH", "/auth/users/vic", demoted, {"disabled": False})[0] == 403


def test_a_password_reset_refuses_the_old_token(stack) -> None:
    base, env = stack
    admin = _login(base, "admin", PASSWORD)
    assert _call(base, "POST", "/auth/users", admin, {"username": "rita", "password": "a-password-of-12"})[0] == 201
    token = _login(base, "rita", "a-password-of-12")
    _cli(env, "users", "reset-password", "rita", stdin="a-new-password-of-12\n")
    assert _call(base, "GET", "/auth/me", token)[0] == 401
    assert _call(base, "GET", "/auth/me", _login(base, "rita", "a-new-password-of-12"))[0] == 200


def test_a_key_rotation_logs_nobody_out(stack) -> None:
    base, env = stack
    before = _login(base, "admin", PASSWORD)
    assert "new signing key" in _cli(env, "keys", "rotate").stdout
    assert _call(base, "GET", "/auth/me", before)[0] == 200
    assert _call(base, "GET", "/auth/me", _login(base, "admin", PASSWORD))[0] == 200
