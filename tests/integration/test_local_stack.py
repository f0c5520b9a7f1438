"""`make demo`'s stack, started as a person would start it, then used over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.integration.conftest import PASSWORD, running_stack
from tests.integration.conftest import request as _request


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen]]:
    with running_stack(tmp_path_factory.mktemp("snapshot")) as started:
        yield started


def test_login_predict_and_admin_over_http(stack) -> None:
    base, _ = stack
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


def test_a_second_start_says_it_is_running(stack) -> None:
    base = stack[0]
    port = base.rsplit(":", 1)[1]
    second = subprocess.run([sys.executable, "-m", "local.stack"], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CRIMECAST_PORT": port})
    assert second.returncode == 1 and "already running" in second.stderr


def test_ctrl_c_stops_cleanly(stack) -> None:
    base, process = stack
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert "stopping" in process.stderr.read()
    with pytest.raises(OSError):
        _request(f"{base}/health")

