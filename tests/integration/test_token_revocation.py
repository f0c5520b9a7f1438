"""Revocation and key rotation over real HTTP, on `make demo`'s stack: its gateway runs the
template's authorizer on every request (no cache locally), so a revoked token is refused by
the very next request."""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from local.stack import SNAPSHOT_FILES, free_port
from tests.conftest import REPO, seasonal_series, tidy_frame

PASSWORD = "integration-admin-password"


def _call(base: str, method: str, path: str, token: str | None = None, payload: dict | None = None,
          form: dict | None = None) -> tuple[int, dict]:
    data, headers = None, {}
    if payload is not None:
        data, headers["Content-Type"] = json.dumps(payload).encode(), "application/json"
    if form is not None:
        data, headers["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _login(base: str, username: str, password: str) -> str:
    status, answer = _call(base, "POST", "/auth/token", form={"grant_type": "password", "username": username,
                                                               "password": password})
    assert status == 200, answer
    return answer["access_token"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """The stack's URL and the environment under which the CLI reaches its embedded AWS."""
    snapshot = tmp_path_factory.mktemp("snapshot")
    areas, types = (snapshot / name for name in SNAPSHOT_FILES)
    tidy_frame(seasonal_series("2019-01", 60, level=120), 25, "ALL").to_csv(areas, index=False)
    tidy_frame(seasonal_series("2019-01", 60, level=900), None, "ALL").to_csv(types, index=False)
    log = Path(tmp_path_factory.mktemp("log")) / "stack.err"
    port = free_port()
    # PYTHONPATH: this checkout's package, not whichever one the virtualenv has installed.
    env = {**os.environ, "CRIMECAST_PORT": str(port), "CRIMECAST_SNAPSHOT": str(snapshot), "CRIMECAST_ADMIN_PASSWORD": PASSWORD,
           "PYTHONPATH": f"{REPO / 'shared'}:{REPO}"}
    env.pop("AWS_ENDPOINT_URL", None)
    with log.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            try:
                if _call(base, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                pytest.fail(f"the stack exited: {log.read_text()}")
            time.sleep(0.5)
        else:
            pytest.fail("the stack did not become ready in 240 s")
        endpoint = re.search(r"embedded AWS at (\S+)", log.read_text())
        assert endpoint, log.read_text()
        cli_env = {**os.environ, "AWS_ENDPOINT_URL": endpoint[1], "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "PYTHONPATH": f"{REPO / 'shared'}:{REPO}",
                   "USERS_TABLE": "crimecast-local-UsersTable", "JWT_SECRET_ARN": "crimecast-local-JwtSigningKey",
                   "DATA_BUCKET": "crimecast-local-data", "SERIES_TABLE": "crimecast-local-SeriesTable",
                   "RUNS_TABLE": "crimecast-local-RunsTable"}
        yield base, cli_env
    finally:
        process.kill()
        process.wait(timeout=30)


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
