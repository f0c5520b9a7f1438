"""`make demo`'s stack, started as a person would start it, then used over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from crimecast.api import API_POLICY
from crimecast.security_headers import policy_for_html, security_headers
from local.aws.embedded import free_port
from local.aws.template import load_template
from tests.conftest import REPO
from tests.integration.conftest import PASSWORD, Stack, running_stack, stack_environment
from tests.integration.conftest import request as _request


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("snapshot")) as started:
        yield started


def test_login_predict_and_admin_over_http(stack) -> None:
    base = stack.base
    assert _request(f"{base}/predict")[0] == 401
    status, token = _request(f"{base}/auth/token", {"grant_type": "password", "username": "admin", "password": PASSWORD})
    assert status == 200
    status, prediction = _request(f"{base}/predict?community_area=Austin&crime_type=ALL&months=6", token=token["access_token"])
    assert status == 200 and prediction["area_name"] == "Austin" and len(prediction["forecast"]) == 6
    status, city = _request(f"{base}/predict?community_area=city", token=token["access_token"])
    assert status == 200 and city["community_area"] is None
    status, runs = _request(f"{base}/runs?kind=retrain", token=token["access_token"])
    assert status == 200 and runs["runs"][0]["status"] == "succeeded"
    assert _request(f"{base}/nope")[0] == 404


def _headers(url: str, method: str = "GET") -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.parametrize(("path", "policy"), [("/", None), ("/app.js", None), ("/style.css", None), ("/predict", None),
                                              ("/nope", None), ("/health", API_POLICY)])
def test_every_answer_carries_the_security_headers(stack, path: str, policy: str | None) -> None:
    """The page and its files (as CloudFront sends them on AWS), the gateway's own 401 and 404,
    and a function's answer, which keeps the API's stricter policy (nothing to load)."""
    status, headers = _headers(f"{stack[0]}{path}", method="HEAD" if path == "/" else "GET")
    assert status in (200, 401, 404)
    for name, value in security_headers(policy).items():
        assert headers.get(name) == value, f"{path}: {name}"
    assert ("script-src 'self';" in headers["Content-Security-Policy"]) is (policy is None)


def test_docs_carry_their_own_csp_with_the_hashes_of_their_inline_blocks(stack) -> None:
    with urllib.request.urlopen(f"{stack[0]}/docs", timeout=30) as response:
        policy, page = response.headers["Content-Security-Policy"], response.read().decode()
    assert response.headers.get_all("Content-Security-Policy") == [policy]  # the docs' own, not the page's as well
    assert policy == policy_for_html(page) and "'sha256-" in policy
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_second_start_says_it_is_running(stack) -> None:
    base = stack[0]
    port = base.rsplit(":", 1)[1]
    second = subprocess.run([sys.executable, "-m", "local.stack"], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CRIMECAST_PORT": port})
    assert second.returncode == 1 and "already running" in second.stderr


def test_ctrl_c_stops_cleanly(stack) -> None:
    base, process, log = stack
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert "stopping" in log.read_text()
    with pytest.raises(OSError):
        _request(f"{base}/health")



def _refused_start(tmp_path: Path, **setting: str) -> str:
    """A start over the fixtures with ``setting`` in its environment, which must end with status 1
    and no traceback: what it said."""
    env = stack_environment(free_port(), tmp_path, setting)
    start = subprocess.run([sys.executable, "-m", "local.stack", "--snapshot", str(REPO / "tests" / "fixtures")], cwd=REPO,
                           capture_output=True, text=True, timeout=120, env=env)
    assert start.returncode == 1 and "Traceback" not in start.stderr, start.stderr
    return start.stderr


@pytest.mark.parametrize(("quota", "minimum"), [("50", "50"), ("140", "100")])
def test_a_quota_too_small_for_the_template_s_reservations_stops_the_start_as_a_deploy_fails(tmp_path: Path, quota: str,
                                                                                            minimum: str) -> None:
    """A new account's quota of 50 leaves no reservation possible; 140 is short of the deploy's 5 + 40 + 100,
    though the stack's own train reservation (bounded by the cores) would fit."""
    said = _refused_start(tmp_path, CRIMECAST_ACCOUNT_CONCURRENCY=quota)
    assert f"below its minimum value of [{minimum}]" in said


@pytest.mark.parametrize(("queue_property", "value", "message"), [
    ("VisibilityTimeout", 60, "IngestFunction: Queue visibility timeout: 60 seconds is less than Function timeout: 900 seconds"),
    ("FifoQueue", True, "AsyncFailureQueue: the local stack does not create queues with FifoQueue"),
])
def test_a_queue_lambda_would_refuse_or_the_stack_cannot_keep_stops_the_start(tmp_path: Path, queue_property: str,
                                                                              value: object, message: str) -> None:
    """The first as Lambda refuses the event source mapping (`sam deploy` fails); the second rather
    than a queue that would behave otherwise here than on AWS."""
    template = load_template(REPO / "template.yaml")
    template["Resources"]["AsyncFailureQueue"]["Properties"][queue_property] = value
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    assert message in _refused_start(tmp_path, CRIMECAST_TEMPLATE=str(path))
